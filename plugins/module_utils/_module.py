# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module side: the option specs the modules share, and run_module, the one way every module runs.

Private to the collection: not an API for other collections.

A module in plugins/modules is its DOCUMENTATION, an argument spec (its own options plus the shared
ones below, by name: `spec("common", "keys", ..., dataset=dict(...))`) and one call,
`run_module(module, "<operation>")`. The shared options are declared here once and documented once in
the doc fragment offsite.zfs.common (DOCUMENTATION: "common"; KEYS, PASSPHRASE, ALLOW_UNSIGNED: the
specs of those names). run_module does what each module did itself:
the libraries (respawn in the role's venv, _deps.py), module_utils that do not import, pyrage where the
operation needs it, the operation from _wiring.py, an OffsiteError as one sentence with its code, a
failed provider, dataset or drill as a failure, and this run's namespace notes as warnings.
"""

from __future__ import annotations

import traceback
from typing import Any, Dict

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.offsite.zfs.plugins.module_utils import namespaces
from ansible_collections.offsite.zfs.plugins.module_utils._deps import require_libraries
from ansible_collections.offsite.zfs.plugins.module_utils.config import DEFAULT_CONFIG
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

Spec = Dict[str, Dict[str, Any]]

COMMON_ARGS: Spec = {
    "config": {"type": "path", "default": DEFAULT_CONFIG},
    "providers": {"type": "raw"},
    "provider_env": {"type": "dict", "no_log": True},
    "recipients": {"type": "list", "elements": "str"},
    "namespace": {"type": "str"},
    "state_dir": {"type": "path"},
    "log_dir": {"type": "path"},
    "spool": {"type": "bool"},
    "spool_dir": {"type": "path"},
    "rclone": {"type": "path"},
}
KEY_ARGS: Spec = {  # doc fragment offsite.zfs.common.keys
    "identity": {"type": "str", "no_log": True},
    "identity_file": {"type": "path"},
}
PASSPHRASE_ARGS: Spec = {"passphrase": {"type": "str", "no_log": True}}  # offsite.zfs.common.passphrase
ALLOW_UNSIGNED_ARGS: Spec = {"allow_unsigned": {"type": "bool"}}  # offsite.zfs.common.allow_unsigned
SCRATCH_ARGS: Spec = {"scratch_pool": {"type": "str"}, "scratch_dir": {"type": "path"}}
BACKUP_TUNING_ARGS: Spec = {
    "chunk_size": {"type": "str"},
    "compression": {"type": "str", "choices": ["zstd", "gzip", "none"]},
    "compression_level": {"type": "int"},
    "compression_threads": {"type": "int"},
    "parallel_uploads": {"type": "int"},
    "send_options": {"type": "dict"},
}
FAILURE_KEYS = ("failed_providers", "failed_datasets", "failed_drills")


# The shared specs by name; "common", "keys", "passphrase" and "allow_unsigned" are documented by the doc
# fragments offsite.zfs.common and offsite.zfs.common.<name> (a unit test checks each module extends them).
SHARED: Dict[str, Spec] = {"common": COMMON_ARGS, "keys": KEY_ARGS, "passphrase": PASSPHRASE_ARGS,
                           "allow_unsigned": ALLOW_UNSIGNED_ARGS, "scratch": SCRATCH_ARGS,
                           "backup_tuning": BACKUP_TUNING_ARGS}


def spec(*shared: str, **own: Dict[str, Any]) -> Spec:
    """A module's argument spec: the shared specs it takes, by name (SHARED), and its own options."""
    result: Spec = {}
    for name in shared:
        result.update(SHARED[name])
    result.update(own)
    return result


def with_notes(result: Dict[str, Any]) -> Dict[str, Any]:
    """The module result with this run's namespace notes (namespaces.py) as Ansible warnings."""
    notes = namespaces.notes()
    if not notes:
        return result
    warnings = list(result.get("warnings") or [])
    return dict(result, warnings=warnings + [n for n in notes if n not in warnings])


def run_module(module: Any, operation: str) -> None:
    """Run the operation of that name (_wiring.OPERATIONS) for an AnsibleModule and end the module with it.

    An OffsiteError fails with its one sentence and code, `changed=false` (with what the operation did
    before it, when the error carries that as `partial`). A result naming failed providers, datasets or
    drills fails with the whole result. A result's `diff` is returned in diff mode only.
    """
    require_libraries(module)
    try:
        from ansible_collections.offsite.zfs.plugins.module_utils import _wiring
        from ansible_collections.offsite.zfs.plugins.module_utils.codec import HAS_PYRAGE, PYRAGE_IMPORT_ERROR
    except ImportError:
        module.fail_json(msg="offsite.zfs could not load its module_utils.", exception=traceback.format_exc())
        return
    params = module.params
    if _wiring.needs_pyrage(operation, params) and not HAS_PYRAGE:
        module.fail_json(msg=missing_required_lib("pyrage"), exception=str(PYRAGE_IMPORT_ERROR))
        return
    try:
        result = _wiring.OPERATIONS[operation](params, module.check_mode)
    except OffsiteError as exc:
        partial = exc.details.get("partial")
        if partial is None:
            module.fail_json(msg=exc.message, error_code=exc.code, changed=False)
        else:
            module.fail_json(**with_notes(dict(partial, msg=exc.message, error_code=exc.code)))
        return
    if not getattr(module, "_diff", False):
        result.pop("diff", None)
    if any(result.get(key) for key in FAILURE_KEYS):
        module.fail_json(**with_notes(result))
        return
    module.exit_json(**with_notes(result))
