# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: find the Python libraries the modules need (pyrage, zstandard, PyYAML).

Private to the collection: not an API for other collections.

The role offsite.zfs.offsite installs them into a virtualenv it owns (``offsite_venv``, default
``/opt/offsite/venv``) and never into the system Python (PEP 668). Every module calls
``require_libraries(module)`` right after building its AnsibleModule: when the interpreter Ansible
chose lacks a library, the module re-executes itself once in the venv's interpreter with ansible-core's
``respawn`` (as the dnf and selinux modules do). The venv's interpreter is the one the role
records in the file ``offsite-python`` beside the module's ``config``, else the default venv's
(``$OFFSITE_VENV`` names another default). A host without the libraries fails with one sentence
saying to apply the role.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, List, Optional

from ansible.module_utils.common.respawn import has_respawned, respawn_module

from ansible_collections.offsite.zfs.plugins.module_utils.config import DEFAULT_CONFIG
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

LIBRARIES = ("pyrage", "zstandard", "yaml")
DEFAULT_VENV = "/opt/offsite/venv"
MARKER_NAME = "offsite-python"


def missing_libraries() -> List[str]:
    """The libraries this interpreter cannot import (PyYAML is named ``yaml``)."""
    return [name for name in LIBRARIES if importlib.util.find_spec(name) is None]


def marker_path(config: Optional[str]) -> str:
    """Where the role records the venv's interpreter: beside the host config file."""
    return os.path.join(os.path.dirname(config or DEFAULT_CONFIG), MARKER_NAME)


def default_venv() -> str:
    """The role's default virtualenv; the environment variable OFFSITE_VENV names another."""
    return os.environ.get("OFFSITE_VENV") or DEFAULT_VENV


def candidates(config: Optional[str]) -> List[str]:
    """The interpreter that may hold the libraries: the one recorded beside the config file, else the default venv's."""
    try:
        with open(marker_path(config), encoding="utf-8") as handle:
            recorded = handle.read().strip()
    except OSError:
        recorded = ""
    return [recorded if os.path.isabs(recorded) else os.path.join(default_venv(), "bin", "python")]


def require_libraries(module: Any) -> None:
    """Return when pyrage, zstandard and PyYAML import here; else respawn in the role's venv or fail in one sentence."""
    missing = missing_libraries()
    if not missing:
        return
    config = module.params.get("config") if isinstance(module.params, dict) else None
    if not has_respawned():
        # No probe_interpreters_for_module (one more interpreter start, ~0.1-0.2 s per task on a fleet): when the
        # recorded venv lacks the libraries, the respawned copy lands here with has_respawned() and fails below.
        for interpreter in candidates(config):
            if os.access(interpreter, os.X_OK):
                respawn_module(interpreter)  # the module ends here once the respawned copy is done
    error = OffsiteError(
        "The Python libraries %s are missing for %s on this host and no offsite.zfs virtualenv has them; apply the "
        "role offsite.zfs.offsite to this host (it installs them into its own virtualenv, %s by default)." % (
            ", ".join("PyYAML" if name == "yaml" else name for name in missing), sys.executable, default_venv()),
        "missing_library")
    module.fail_json(msg=error.message, error_code=error.code)
