# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress state files: what offsite_status reads about running operations."""

from __future__ import annotations

import json
import os

from ansible_collections.offsite.zfs.plugins.module_utils import progress


def test_state_file_of_a_live_run_is_listed_once_even_while_it_is_replaced(tmp_path):
    run = progress.Progress(str(tmp_path / "log"), str(tmp_path / "state"), "backup", "tank/data")
    try:
        run.phase("b2", 10, 1000)
        running = tmp_path / "state" / "running"
        # write_private_file's temporary file, as a reader can see it mid-replace.
        (running / ".tmp-abc123").write_text(json.dumps(dict(run.state, chunk=0)))
        states = progress.running_states(str(tmp_path / "state"))
        assert [s["pid"] for s in states] == [os.getpid()]
        assert states[0]["provider"] == "b2"
    finally:
        run.close("finished")
    assert progress.running_states(str(tmp_path / "state")) == []


def test_state_of_a_dead_process_is_not_listed(tmp_path):
    running = tmp_path / "state" / "running"
    running.mkdir(parents=True)
    (running / "backup-999999999-tank_data.json").write_text(json.dumps({"pid": 999999999, "operation": "backup"}))
    assert progress.running_states(str(tmp_path / "state")) == []
