"""A loopback OpenSSH sftp server with an append-only user, for the append-only provider tests.

sshd runs as a child process on 127.0.0.1 (own host key, config and free port) and is stopped by its PID.
The backup host's user logs in with a key and gets only `internal-sftp`, told to refuse the requests that
delete, rename or chmod files (`-P remove,rmdir,rename,posix-rename,setstat,fsetstat,lsetstat`): it can
create directories and files but not delete them. (Overwrites are not refused by this server: the backup's
own guard, attempts.py, keeps it from writing a name twice.) Root, the "controller", reaches the same
directory as a local path.
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
from typing import Dict, Optional

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
DENIED = "remove,rmdir,rename,posix-rename,setstat,fsetstat,lsetstat"


def missing() -> Optional[str]:
    if os.geteuid() != 0:
        return "the sftp append-only test runs sshd and creates a user: it needs root"
    for tool in (SSHD, "ssh-keygen", "useradd", "userdel"):
        if shutil.which(tool) is None and not os.path.exists(tool):
            return "%s is not installed (scripts/bootstrap.sh installs openssh-server)" % tool
    return None


class SftpServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="offsite-sftp-"))
        os.chmod(self.dir, 0o755)
        self.user = "ofa%s" % uuid.uuid4().hex[:8]
        subprocess.run(["useradd", "-M", "-d", str(self.dir), "-s", "/usr/sbin/nologin", self.user], check=True)
        subprocess.run(["usermod", "-p", "*", self.user], check=True)  # key only
        entry = pwd.getpwnam(self.user)
        self.root = self.dir / "backups"  # the target directory: the user creates below it
        self.root.mkdir(mode=0o755)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        os.chmod(self.client_key, 0o600)
        self.keys = self.dir / "authorized_keys"
        self.keys.write_text((self.dir / "client_ed25519.pub").read_text())
        os.chmod(self.keys, 0o644)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join([
            "Port %d" % self.port, "ListenAddress 127.0.0.1", "HostKey %s" % self.host_key,
            "PidFile %s" % (self.dir / "sshd.pid"), "AuthorizedKeysFile %s" % self.keys,
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin no", "StrictModes no", "UsePAM no", "LogLevel ERROR", "MaxStartups 100",
            "Subsystem sftp internal-sftp",
            "Match User %s" % self.user,
            "    ForceCommand internal-sftp -P %s" % DENIED,
            "    AllowTcpForwarding no", "    X11Forwarding no", "",
        ]))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.log = open(self.dir / "sshd.log", "wb")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while True:  # wait for the port (polling a condition, bounded)
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited: %s" % (self.dir / "sshd.log").read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def env(self, remote: str) -> Dict[str, str]:
        """RCLONE_CONFIG_* variables of an sftp remote with the append-only user's credentials."""
        prefix = "RCLONE_CONFIG_%s_" % remote.upper()
        return {prefix + "TYPE": "sftp", prefix + "HOST": "127.0.0.1", prefix + "PORT": str(self.port),
                prefix + "USER": self.user, prefix + "KEY_FILE": str(self.client_key),
                prefix + "SET_MODTIME": "false", prefix + "SHELL_TYPE": "none"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        subprocess.run(["userdel", "-f", self.user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
