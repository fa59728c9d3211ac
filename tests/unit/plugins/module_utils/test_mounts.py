"""require_mount (module_utils/mounts.py): an unmounted disk fails before any rclone command runs."""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, Store


def test_require_mount_refuses_an_unmounted_disk_before_rclone_runs(tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    store = Store(Provider(name="usb", remote=str(usb / "offsite"), rclone="/nonexistent/rclone",
                           require_mount=str(usb)))
    with pytest.raises(OffsiteError) as caught:
        store.list()
    assert caught.value.code == "not_mounted"
    assert caught.value.message.startswith(
        "Provider usb requires %s to be mounted (require_mount), and it is not" % usb)
    assert not (usb / "offsite").exists()
    mounted = Store(Provider(name="root", remote=str(usb), rclone="/nonexistent/rclone", require_mount="/"))
    with pytest.raises(OffsiteError) as missing:
        mounted.list()
    assert missing.value.code == "rclone_missing", "a mounted path passes the check and rclone runs"
