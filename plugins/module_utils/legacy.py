# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy: backups made by the old `offsite` bash tool, read in place (docs/legacy.md).

The entry points the modules call, gathered from the files that do one job each:

    legacy_layout   object names -> backups per format F1-F8 (pure)
    legacy_stream   BEGIN/END records of the plaintext zfs send stream (pure)
    legacy_read     the plaintext stream of one backup, with every check its format allows
    legacy_chain    listing a provider, reading stream headers, chains linked by guid
    legacy_restore  restore through restore.receive_staged; restore_any (native first)
    legacy_adopt    native manifests for verified legacy backups
    status_legacy   what offsite_status reports about them
"""

from __future__ import annotations

from ansible_collections.offsite.zfs.plugins.module_utils.legacy_adopt import adopt_legacy
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_chain import (
    describe,
    list_layout,
    list_legacy,
    read_header,
    resolve_legacy_chain,
)
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import (
    SUFFIX,
    Layout,
    LegacySet,
    Piece,
    folder_for,
    parse_layout,
)
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_restore import restore_any, run_legacy_restore
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_stream import (
    DRR_MAGIC,
    HEADER_BYTES,
    StreamHeader,
    end_guid,
    parse_header,
)

LegacyBackup = LegacySet

__all__ = ["DRR_MAGIC", "HEADER_BYTES", "SUFFIX", "Layout", "LegacyBackup", "LegacySet", "Piece", "StreamHeader",
           "adopt_legacy", "describe", "end_guid", "folder_for", "list_layout", "list_legacy", "parse_header",
           "parse_layout", "read_header", "resolve_legacy_chain", "restore_any", "run_legacy_restore"]
