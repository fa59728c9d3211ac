# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""require_mount: a local-directory provider on a removable or network disk runs only when it is mounted.

Private to the collection: not an API for other collections.

Without it, a backup to /mnt/usb/offsite while the disk is unplugged writes into the directory below
the mount point, on the root file system, until it is full, and says nothing. With
`require_mount: /mnt/usb`, every rclone command of that provider first checks that the path is a
mount point and fails with one sentence (`not_mounted`) when it is not.
"""

from __future__ import annotations

import os
from typing import Optional

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


def check(provider: str, mount_point: Optional[str]) -> None:
    if not mount_point:
        return
    if not os.path.ismount(mount_point):
        raise OffsiteError("Provider %s requires %s to be mounted (require_mount), and it is not: nothing was "
                           "written; mount the disk, or fix require_mount, and run again." % (
                               provider, mount_point), "not_mounted")
