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
import subprocess
import uuid
from typing import Dict, Optional

from sshd import SSHD, Sshd

DENIED = "remove,rmdir,rename,posix-rename,setstat,fsetstat,lsetstat"


def missing() -> Optional[str]:
    if os.geteuid() != 0:
        return "the sftp append-only test runs sshd and creates a user: it needs root"
    for tool in (SSHD, "ssh-keygen", "useradd", "userdel"):
        if shutil.which(tool) is None and not os.path.exists(tool):
            return "%s is not installed (scripts/bootstrap.sh installs openssh-server)" % tool
    return None


class SftpServer:
    """The loopback sshd of sshd.py with one more user, sftp-only and refused every delete."""

    def __init__(self) -> None:
        self.user = "ofa%s" % uuid.uuid4().hex[:8]
        self.sshd = Sshd(extra_config=[
            "Match User %s" % self.user,
            "    ForceCommand internal-sftp -P %s" % DENIED,
            "    AllowTcpForwarding no",
            "    X11Forwarding no",
        ])
        self.dir, self.port, self.client_key = self.sshd.dir, self.sshd.port, self.sshd.client_key
        subprocess.run(["useradd", "-M", "-d", str(self.dir), "-s", "/usr/sbin/nologin", self.user], check=True)
        self.sshd.users.append(self.user)  # removed again by Sshd.stop
        subprocess.run(["usermod", "-p", "*", self.user], check=True)  # key only
        self.sshd.authorize(self.user)
        entry = pwd.getpwnam(self.user)
        self.root = self.dir / "backups"  # the target directory: the user creates below it
        self.root.mkdir(mode=0o755)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def env(self, remote: str) -> Dict[str, str]:
        """RCLONE_CONFIG_* variables of an sftp remote with the append-only user's credentials."""
        prefix = "RCLONE_CONFIG_%s_" % remote.upper()
        return {prefix + "TYPE": "sftp", prefix + "HOST": "127.0.0.1", prefix + "PORT": str(self.port),
                prefix + "USER": self.user, prefix + "KEY_FILE": str(self.client_key),
                prefix + "SET_MODTIME": "false", prefix + "SHELL_TYPE": "none"}

    def stop(self) -> None:
        self.sshd.stop()
