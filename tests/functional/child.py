"""Run one operation in a child process (so a test can kill -9 it): python child.py SPEC.json

SPEC: {"operation": "backup"|"restore"|"restore_paths", "config": {...}, "dataset": ..., "params": {...},
       "kwargs": {...},
       "identity_file": ...}
Prints the result as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

sys.path.insert(0, str(harness.collection_link()))

from ansible_collections.offsite.zfs.plugins.module_utils import resolve  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.paths import run_path_restore  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore  # noqa: E402


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    settings = resolve.resolve(spec["config"], spec["dataset"], spec.get("params", {}))
    try:
        if spec["operation"] == "backup":
            result = run_backup(settings, **spec.get("kwargs", {}))
        elif spec["operation"] == "restore_paths":
            keys = load_keys(None, spec.get("identity_file"), spec.get("passphrase"))
            result = run_path_restore(settings, keys=keys, **spec.get("kwargs", {}))
        else:
            keys = load_keys(None, spec.get("identity_file"), spec.get("passphrase"))
            result = run_restore(settings, keys=keys, **spec.get("kwargs", {}))
    except OffsiteError as exc:
        print(json.dumps({"failed": True, "msg": exc.message, "code": exc.code}))
        return 1
    print(json.dumps(result))
    return 1 if result.get("failed_providers") else 0


if __name__ == "__main__":
    sys.exit(main())
