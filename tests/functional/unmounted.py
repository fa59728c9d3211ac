"""A pool whose file systems are never mounted, for tests that do not look at file contents.

Mounting is the slow and fragile part of zfs-fuse under load (mounts and unmounts can hang for
minutes when many jobs share the daemon); signatures and ledgers do not care about file contents.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Dict

import harness


class UnmountedPool(harness.Pool):
    def __init__(self, workdir: Path, size: str = "64M") -> None:  # not super().__init__: it mounts
        self.name = "ot%s" % uuid.uuid4().hex[:10]
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True)
        self.file = self.dir / "vdev.img"
        self.mnt = self.dir / "mnt"
        harness.run(["truncate", "-s", size, str(self.file)])
        harness.run(["zpool", "create", "-m", "none", self.name, str(self.file)])


def restores(lab: Any, ds: str, snapshot: str, target: str, **kwargs: Any) -> Dict[str, Any]:
    """Restore ds@snapshot into pool/target (never mounted) and check the received snapshot's guid."""
    result = lab.restore(ds, snapshot, target=lab.pool.name + "/" + target, provider=lab.provider,
                         properties={"mountpoint": "none"}, **kwargs)
    guid = harness.run(["zfs", "get", "-Hp", "-o", "value", "guid", "%s@%s" % (ds, snapshot)]).stdout.strip()
    assert result["guid"] == guid and lab.pool.exists("%s/%s@%s" % (lab.pool.name, target, snapshot)), result
    return result
