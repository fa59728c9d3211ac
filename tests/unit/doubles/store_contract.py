# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store contract: what every Store gives its callers, as tests one class holds.

A test module subclasses StoreContract and provides two fixtures: `backend` (its name: memory,
local, s3) and `store` (a fresh, empty Store of that backend with retries=0). tests/unit runs it
against MemoryStore (test_memory_store_contract.py); tests/functional/test_store_conformance.py
runs it against MemoryStore, the real Store on a local directory and on `rclone serve s3`.

Where the real backends differ from each other, DIVERGENCES names the test and the backend and
says why; that leg is a strict xfail, so the day rclone or Store changes the behaviour the run
says so and the entry goes.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, rclone_errors, signing
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import parse_mtime
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store, StoreError
from ansible_collections.offsite.zfs.tests.unit.doubles import backups
from ansible_collections.offsite.zfs.tests.unit.doubles.scripted_zfs import ScriptedZfs

_BUCKET = ("rclone serve s3 (a bucket backend): `rclone cat` and `rclone copyto` of an object that does not exist "
           "exit 0 with nothing (a missing object reads as an empty directory); get_bytes checks the listing then, "
           "but a read stream ends empty and a copy copies nothing instead of raising not_found")
DIVERGENCES = {
    "s3": {
        "test_a_get_stream_of_a_missing_object_exits_not_found": _BUCKET,
        "test_copy_of_a_missing_object_is_not_found": _BUCKET,
    },
}

MIB = 1 << 20


def _names(store: Store, prefix: str = "", max_depth: object = None) -> dict:
    return {o.path: o.size for o in store.list(prefix, max_depth=max_depth)}  # type: ignore[arg-type]


class StoreContract:
    """The tests; a subclass supplies the `backend` and `store` fixtures."""

    @pytest.fixture(autouse=True)
    def _known_divergence(self, request: pytest.FixtureRequest, backend: str) -> None:
        name = request.node.originalname if hasattr(request.node, "originalname") else request.node.name
        reason = DIVERGENCES.get(backend, {}).get(name)
        if reason:
            request.applymarker(pytest.mark.xfail(strict=True, reason=reason))

    # -- put, get, overwrite -----------------------------------------------------------------
    def test_put_bytes_then_get_bytes_round_trips(self, store: Store) -> None:
        store.put_bytes("ns/tank/@a/manifest.json", b'{"x": 1}\n')
        assert store.get_bytes("ns/tank/@a/manifest.json") == b'{"x": 1}\n'
        assert _names(store) == {"ns/tank/@a/manifest.json": 9}

    def test_an_empty_object_is_an_object(self, store: Store) -> None:
        store.put_bytes("a/empty", b"")
        assert store.get_bytes("a/empty") == b"" and _names(store) == {"a/empty": 0}

    def test_put_bytes_overwrites_content_and_size(self, store: Store) -> None:
        store.put_bytes("a/obj", b"first version")
        store.put_bytes("a/obj", b"2nd")
        assert store.get_bytes("a/obj") == b"2nd" and _names(store, "a") == {"obj": 3}

    def test_put_file_uploads_and_overwrites(self, store: Store, tmp_path: Path) -> None:
        local = tmp_path / "chunk"
        local.write_bytes(os.urandom(70000))
        store.put_file("d/@b/chunk-000000.zst.age", str(local))
        local.write_bytes(b"short")
        store.put_file("d/@b/chunk-000001.zst.age", str(local))
        store.put_file("d/@b/chunk-000000.zst.age", str(local))
        assert _names(store, "d/@b") == {"chunk-000000.zst.age": 5, "chunk-000001.zst.age": 5}
        assert store.get_bytes("d/@b/chunk-000000.zst.age") == b"short"

    def test_copy_duplicates_an_object_and_keeps_the_source(self, store: Store) -> None:
        store.put_bytes("legacy/piece.000", b"payload")
        store.copy("legacy/piece.000", "ns/ds/@id/chunk-000000.age")
        assert store.get_bytes("ns/ds/@id/chunk-000000.age") == b"payload"
        assert set(_names(store)) == {"legacy/piece.000", "ns/ds/@id/chunk-000000.age"}

    # -- not found -----------------------------------------------------------------------------
    def test_get_bytes_of_a_missing_object_is_not_found(self, store: Store) -> None:
        store.put_bytes("a/present", b"x")
        with pytest.raises(StoreError) as caught:
            store.get_bytes("a/missing")
        assert caught.value.kind == rclone_errors.NOT_FOUND and caught.value.code == "provider_failed"
        assert caught.value.message.startswith("Provider %s could not download a/missing" % store.name)

    def test_copy_of_a_missing_object_is_not_found(self, store: Store) -> None:
        with pytest.raises(StoreError) as caught:
            store.copy("a/missing", "a/copy")
        assert caught.value.kind == rclone_errors.NOT_FOUND
        assert _names(store) == {}

    def test_delete_of_a_missing_object_fails(self, store: Store) -> None:
        with pytest.raises(StoreError) as caught:
            store.delete("a/missing")
        assert caught.value.code == "provider_failed" and store.name in caught.value.message

    def test_delete_of_a_missing_object_is_not_found(self, store: Store) -> None:
        store.put_bytes("a/present", b"x")  # the directory exists, the object does not
        with pytest.raises(StoreError) as caught:
            store.delete("a/missing")
        assert caught.value.kind == rclone_errors.NOT_FOUND

    def test_listing_a_missing_prefix_is_empty(self, store: Store) -> None:
        store.put_bytes("a/x", b"1")
        assert store.list("nothing/here") == [] and store.list("nothing", max_depth=2) == []

    def test_purge_of_a_missing_prefix_is_fine(self, store: Store) -> None:
        store.purge("never/written")

    def test_fetch_of_a_missing_prefix_is_fine(self, store: Store, tmp_path: Path) -> None:
        dest = tmp_path / "dest"
        store.fetch("never/written", str(dest), [catalog.MANIFEST])
        assert not dest.exists() or not [p for p in dest.rglob("*") if p.is_file()]

    # -- listing -------------------------------------------------------------------------------
    def test_list_is_recursive_files_only_relative_to_the_prefix_with_sizes(self, store: Store) -> None:
        store.put_bytes("ns/tank/data/@s1+full/manifest.json", b"m" * 10)
        store.put_bytes("ns/tank/data/@s1+full/chunk-000000.zst.age", b"c" * 33)
        store.put_bytes("ns/tank/data/child/@s2+full/manifest.json", b"m" * 11)
        store.put_bytes("ns/tank/database/@s3+full/manifest.json", b"m" * 12)
        store.put_bytes("other/x", b"x")
        assert _names(store, "ns/tank/data") == {"@s1+full/manifest.json": 10, "@s1+full/chunk-000000.zst.age": 33,
                                                 "child/@s2+full/manifest.json": 11}
        assert set(_names(store, "ns")) == {"tank/data/@s1+full/manifest.json",
                                            "tank/data/@s1+full/chunk-000000.zst.age",
                                            "tank/data/child/@s2+full/manifest.json",
                                            "tank/database/@s3+full/manifest.json"}
        assert len(_names(store)) == 5

    def test_max_depth_counts_path_components_below_the_prefix(self, store: Store) -> None:
        store.put_bytes("p/top", b"1")
        store.put_bytes("p/@b/manifest.json", b"22")
        store.put_bytes("p/child/@c/manifest.json", b"333")
        assert _names(store, "p", max_depth=1) == {"top": 1}
        assert _names(store, "p", max_depth=2) == {"top": 1, "@b/manifest.json": 2}
        assert _names(store, "p", max_depth=3) == {"top": 1, "@b/manifest.json": 2, "child/@c/manifest.json": 3}

    def test_list_gives_a_modification_time_rclone_style(self, store: Store) -> None:
        before = time.time()
        store.put_bytes("t/obj", b"x")
        (obj,) = store.list("t")
        when = parse_mtime(obj.mtime)
        assert when is not None and before - 5 <= when <= time.time() + 5, obj.mtime

    # -- streams -------------------------------------------------------------------------------
    def test_a_put_stream_and_a_get_stream_round_trip(self, store: Store) -> None:
        payload = os.urandom(MIB + 12345)  # above rclone's streaming upload cutoff (100 KiB)
        child = store.open_put_stream("s/@x/chunk-000000.zst.age")
        for start in range(0, len(payload), 65536):
            child.stdin.write(payload[start:start + 65536])
        child.stdin.close()
        child.stderr.read()
        assert child.wait() == 0 and child.returncode == 0
        assert _names(store, "s") == {"@x/chunk-000000.zst.age": len(payload)}
        reader = store.open_get_stream("s/@x/chunk-000000.zst.age")
        digest, size = hashlib.sha256(), 0
        while True:
            block = reader.stdout.read(65536)
            if not block:
                break
            digest.update(block)
            size += len(block)
        reader.stderr.read()
        assert reader.wait() == 0
        assert size == len(payload) and digest.hexdigest() == hashlib.sha256(payload).hexdigest()

    def test_a_put_stream_killed_before_its_end_leaves_no_object(self, store: Store) -> None:
        child = store.open_put_stream("k/@x/chunk-000000.zst.age")
        child.stdin.write(b"partial chunk")
        child.kill()
        assert child.wait() != 0
        try:
            child.stdin.close()
        except OSError:
            pass
        assert _names(store, "k") == {}

    def test_a_get_stream_of_a_missing_object_exits_not_found(self, store: Store) -> None:
        reader = store.open_get_stream("nothing/here")
        assert reader.stdout.read() == b""
        err = reader.stderr.read()
        code = reader.wait()
        assert code != 0
        assert rclone_errors.classify(code, err.decode("utf-8", "replace")).kind == rclone_errors.NOT_FOUND

    # -- delete and purge ------------------------------------------------------------------------
    def test_delete_removes_that_object_only(self, store: Store) -> None:
        store.put_bytes("d/@b/manifest.json", b"m")
        store.put_bytes("d/@b/manifest.json.bak", b"n")
        store.put_bytes("d/@b/chunk-000000.zst.age", b"c")
        store.delete("d/@b/manifest.json")
        assert set(_names(store, "d")) == {"@b/manifest.json.bak", "@b/chunk-000000.zst.age"}

    def test_purge_removes_everything_below_a_directory_and_nothing_beside_it(self, store: Store) -> None:
        store.put_bytes("ns/ds/@b1/manifest.json", b"m")
        store.put_bytes("ns/ds/@b1/chunk-000000.zst.age", b"c")
        store.put_bytes("ns/ds/@b1/deeper/x", b"x")
        store.put_bytes("ns/ds/@b10/manifest.json", b"m")
        store.put_bytes("ns/ds/@b2/manifest.json", b"m")
        store.purge("ns/ds/@b1")
        assert set(_names(store, "ns/ds")) == {"@b10/manifest.json", "@b2/manifest.json"}

    # -- fetch -----------------------------------------------------------------------------------
    def test_fetch_copies_the_included_names_at_any_depth_keeping_paths(self, store: Store, tmp_path: Path) -> None:
        store.put_bytes("ns/tank/@a/manifest.json", b"A")
        store.put_bytes("ns/tank/@a/%s" % signing.SIGNATURE, b"S")
        store.put_bytes("ns/tank/@a/chunk-000000.zst.age", b"C")
        store.put_bytes("ns/tank/child/@b/manifest.json", b"B")
        store.put_bytes("ns/tank/@a/not-manifest.json.old", b"X")
        dest = tmp_path / "all"
        store.fetch("ns", str(dest), [catalog.MANIFEST, signing.SIGNATURE])
        got = {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
        assert got == {"tank/@a/manifest.json": b"A", "tank/@a/%s" % signing.SIGNATURE: b"S",
                       "tank/child/@b/manifest.json": b"B"}

    def test_fetch_with_max_depth_stops_at_that_depth(self, store: Store, tmp_path: Path) -> None:
        store.put_bytes("ns/tank/@a/manifest.json", b"A")
        store.put_bytes("ns/tank/child/@b/manifest.json", b"B")
        dest = tmp_path / "one"
        store.fetch("ns/tank", str(dest), [catalog.MANIFEST], max_depth=2)
        got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
        assert got == ["@a/manifest.json"]

    # -- the catalog over this store -----------------------------------------------------------
    def test_the_catalog_reads_backups_from_this_store(self, store: Store, tmp_path: Path) -> None:
        zfs = ScriptedZfs()
        first = zfs.add_snapshot("tank/data", "s1")
        second = zfs.add_snapshot("tank/data", "s2")
        full, incr = backups.manifest(first), backups.manifest(second, first)
        backups.place(store, full)
        backups.place(store, incr, missing=[1])
        partial = backups.manifest(zfs.add_snapshot("tank/data", "s3"), second)
        backups.place(store, partial, with_manifest=False)
        listing = catalog.list_backups(store, backups.NAMESPACE, "tank/data", work_dir=str(tmp_path))
        found = {b.backup_id: b for b in listing.for_dataset("tank/data")}
        assert set(found) == {full.backup_id, incr.backup_id, partial.backup_id}
        assert found[full.backup_id].intact and found[incr.backup_id].complete
        assert found[incr.backup_id].missing_objects() == [incr.chunks[1].object]
        assert not found[partial.backup_id].complete and len(found[partial.backup_id].objects) == 2
        whole = catalog.list_backups(store, backups.NAMESPACE, work_dir=str(tmp_path))
        assert set(whole.backups) == {("tank/data", i) for i in found} and whole.stray == []
