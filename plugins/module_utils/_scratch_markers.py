# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scratch places on record: the marker file `<state_dir>/scratch/<id>.json` (0600) of each, written BEFORE
anything is created and removed after everything is destroyed, and whether its owner still runs.

Private to the collection: not an API for other collections. scratch.py makes and destroys the places.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils.common import pid_alive, private_dir, write_private_file

PREFIX = "offsite-scratch-"


@dataclass
class Place:
    id: str
    kind: str  # "pool" (file-backed, ours) or "dataset" (on the user's pool)
    root: str  # the dataset everything is received below (pool root, or our container dataset)
    pool: str
    vdev: Optional[str]
    mount_dir: str
    pid: int
    start: str
    created: float
    clones: List[str] = field(default_factory=list)  # read-only clones of live snapshots (drills on zfs-fuse)

    @property
    def target(self) -> str:
        return self.root + "/copy"


def marker_dir(state_dir: str) -> str:
    return os.path.join(state_dir, "scratch")


def marker(state_dir: str, place_id: str) -> str:
    return os.path.join(marker_dir(state_dir), place_id + ".json")


def process_start(pid: int) -> str:
    """The start time (clock ticks since boot) of a process, '' when unknown: tells a reused PID apart."""
    try:
        with open("/proc/%d/stat" % pid, "r", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_alive(place: Place) -> bool:
    if place.pid == os.getpid() and place.start == process_start(os.getpid()):
        return True
    if not pid_alive(place.pid):
        return False
    start = process_start(place.pid)
    return not start or not place.start or start == place.start


def save(state_dir: str, place: Place) -> None:
    private_dir(marker_dir(state_dir))
    write_private_file(marker(state_dir, place.id), json.dumps(asdict(place), sort_keys=True).encode())


def load_all(state_dir: str) -> List[Place]:
    directory = marker_dir(state_dir)
    places = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    for name in names:
        if not (name.startswith(PREFIX) and name.endswith(".json")):
            continue
        try:
            with open(os.path.join(directory, name), "r", encoding="utf-8") as handle:
                places.append(Place(**json.load(handle)))
        except (OSError, ValueError, TypeError):
            continue
    return places
