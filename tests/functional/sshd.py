"""A real OpenSSH server on 127.0.0.1 for the fleet tests: own host key, config file and free port.

sshd runs as a child process (`sshd -D -e -f CONFIG`) and is stopped by its PID. Users log in with a
key the harness generates; `add_user` creates an unprivileged account with that key and NOPASSWD sudo,
and `stop` removes it again.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import List, Optional

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def missing() -> Optional[str]:
    """Why this machine cannot run the SSH fleet tests, or None."""
    if os.geteuid() != 0:
        return "the SSH fleet tests run sshd and create a user: they need root"
    for tool in (SSHD, "ssh", "ssh-keygen", "sudo", "useradd"):
        if shutil.which(tool) is None and not os.path.exists(tool):
            return "%s is not installed (scripts/bootstrap.sh installs openssh-server and sudo)" % tool
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sshd:
    """sshd on 127.0.0.1:<free port>, keys and config in a private directory (world-readable keys)."""

    def __init__(self, extra_config: Optional[List[str]] = None) -> None:
        """extra_config: sshd_config lines appended at the end (Match blocks)."""
        # Not under pytest's 0700 tmp: sshd reads a user's authorized_keys with that user's rights.
        self.dir = Path(tempfile.mkdtemp(prefix="offsite-sshd-"))
        os.chmod(self.dir, 0o755)
        self.keys = self.dir / "authorized_keys"
        self.keys.mkdir(mode=0o755)
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        self.port = _free_port()
        self.users: List[str] = []
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join([
            "Port %d" % self.port,
            "ListenAddress 127.0.0.1",
            "HostKey %s" % self.host_key,
            "PidFile %s" % (self.dir / "sshd.pid"),
            "AuthorizedKeysFile %s/%%u" % self.keys,
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "MaxSessions 100",
            "MaxStartups 200",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
        ] + list(extra_config or []) + [""]))
        self.authorize("root")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        self.log = open(self.dir / "sshd.log", "wb")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited: %s" % (self.dir / "sshd.log").read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def authorize(self, user: str) -> None:
        path = self.keys / user
        path.write_text((self.client_key.parent / (self.client_key.name + ".pub")).read_text())
        os.chmod(path, 0o644)

    def add_user(self) -> str:
        """An unprivileged account that logs in with the client key and may sudo without a password."""
        user = "ofs%s" % uuid.uuid4().hex[:8]
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", user], check=True)
        subprocess.run(["usermod", "-p", "*", user], check=True)  # not locked, no password: key only
        self.users.append(user)
        self.authorize(user)
        sudoers = Path("/etc/sudoers.d") / ("offsite-test-%s" % user)
        sudoers.write_text("%s ALL=(ALL) NOPASSWD: ALL\n" % user)
        os.chmod(sudoers, 0o440)
        return user

    def host_vars(self, user: str = "root") -> dict:
        """Inventory variables that reach this sshd as `user` (the interpreter is discovered)."""
        return {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": user,
            "ansible_ssh_private_key_file": str(self.client_key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                       "-o LogLevel=ERROR",
        }

    def stop(self) -> None:
        """Stop sshd by its PID, then remove the users it made and its directory."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        cleanup(self.dir, self.users)


def cleanup(directory: Path, users: List[str]) -> None:
    """End the SSH master connections under `directory`, remove the users and their sudoers files, the directory."""
    control = directory / "cp"
    for socket_path in control.glob("*") if control.is_dir() else []:
        subprocess.run(["ssh", "-o", "ControlPath=%s" % socket_path, "-O", "exit", "127.0.0.1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False)
    for user in users:
        (Path("/etc/sudoers.d") / ("offsite-test-%s" % user)).unlink(missing_ok=True)
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        subprocess.run(["userdel", "-r", "-f", user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: List[str]) -> int:
    """For shell steps (tests/steps/50-molecule.sh):

    sshd.py start          start sshd and an unprivileged sudo user; print OFFSITE_SSH_* shell assignments
    sshd.py stop PID DIR USER   stop that sshd by PID, remove the user and the directory
    """
    if argv[:1] == ["start"]:
        server = Sshd()
        user = server.add_user()
        for key, value in (("PORT", server.port), ("PID", server.proc.pid), ("DIR", server.dir), ("USER", user),
                           ("KEY", server.client_key)):
            print("OFFSITE_SSH_%s=%s" % (key, value))
        return 0
    if argv[:1] == ["stop"] and len(argv) == 4:
        pid, directory, user = int(argv[1]), Path(argv[2]), argv[3]
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                if b"sshd" in handle.read():
                    os.kill(pid, 15)
        except OSError:
            pass
        cleanup(directory, [user])
        return 0
    print(main.__doc__)
    return 2


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
