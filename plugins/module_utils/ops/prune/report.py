# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What offsite_prune reports: one line per deletion, the diff per dataset and provider, the summary.

Private to the collection: not an API for other collections.

Pure: reads the entries run.prune_dataset returns, changes nothing.
"""

from __future__ import annotations

from typing import Any, Dict, List

from ansible_collections.offsite.zfs.plugins.module_utils import costs


def deletions(dataset: str, entry: Dict[str, Any]) -> List[str]:
    """Every deletion of one dataset's entry, as `<provider> <dataset> <backup id>: <reason>`."""
    lines = []
    for provider, result in (entry.get("providers") or {}).items():
        for record in result.get("deleted", []) + result.get("incomplete_deleted", []):
            lines.append("%s %s %s: %s" % (provider, dataset, record["backup_id"], record["reason"]))
        for record in result.get("abandoned_deleted", []):
            lines.append("%s %s %s/%s: %s" % (
                provider, dataset, record["backup_id"], record["object"], record["reason"]))
    for record in (entry.get("local") or {}).get("deleted", []):
        lines.append("local %s@%s: %s" % (dataset, record["snapshot"], record["reason"]))
    return lines


def _diff(header: str, kept: List[str], gone: List[str]) -> Dict[str, str]:
    return {"before_header": header, "after_header": header,
            "before": "".join(line + "\n" for line in sorted(kept + gone)),
            "after": "".join(line + "\n" for line in sorted(kept))}


def diffs(dataset: str, entry: Dict[str, Any]) -> List[Dict[str, str]]:
    """The diff of one dataset: per provider (and locally) what is there before and after."""
    out = []
    for provider, result in (entry.get("providers") or {}).items():
        if "kept" not in result:
            continue
        kept = ["@%s" % r["backup_id"] for r in result["kept"] + result.get("damaged", [])
                + result.get("incomplete_kept", [])]
        gone = ["@%s  (delete: %s)" % (r["backup_id"], r["reason"])
                for r in result["deleted"] + result.get("incomplete_deleted", [])]
        out.append(_diff("%s:%s" % (provider, dataset), kept, gone))
    local = entry.get("local")
    if local and (local.get("kept") or local.get("deleted")):
        kept = ["%s@%s" % (dataset, r["snapshot"]) for r in local["kept"]]
        gone = ["%s@%s  (destroy: %s)" % (dataset, r["snapshot"], r["reason"]) for r in local["deleted"]]
        out.append(_diff("local:%s" % dataset, kept, gone))
    return out


def finish(result: Dict[str, Any], diff: List[Dict[str, str]], check_mode: bool) -> Dict[str, Any]:
    """The module result: the cost per provider, the one-line summary and the diff."""
    parts = []
    for name, entry in result["datasets"].items():
        for provider, pentry in entry["providers"].items():
            if pentry.get("status") in ("locked", "failed", "append_only"):
                parts.append(pentry["message"])
            else:
                parts.append("%s on %s: %s %d, kept %d" % (
                    name, provider, "would delete" if check_mode else "deleted",
                    len(pentry["deleted"]) + len(pentry["incomplete_deleted"]), len(pentry["kept"])))
        if entry.get("local"):
            parts.append("%s locally: %s %d snapshots" % (name, "would destroy" if check_mode else "destroyed",
                                                          len(entry["local"]["deleted"])))
    result["cost"] = costs.by_provider(result["datasets"])
    if check_mode:
        parts += [costs.describe(provider, cost) for provider, cost in result["cost"].items()]
    result["msg"] = "; ".join(parts) or "The policy names no dataset to prune."
    result["diff"] = diff
    return result
