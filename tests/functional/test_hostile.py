"""Hostile and bad input (issue 5).

Names are rejected before any command runs: `zfs` and `rclone` point at recording
wrappers (tests/functional/faulty_rclone.py), and the test asserts they were never called.
Tampered manifests and chunks make restore refuse with a clear error. Bad keys and config
files give one clear sentence, through real `ansible` runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import harness
import pytest
from faulty_rclone import Wrapper
from reliability import one_sentence, random_file, same_tree

from ansible_collections.offsite.zfs.plugins.module_utils import codec
from ansible_collections.offsite.zfs.plugins.module_utils.common import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import parse

HOSTILE = [
    "tank/data; rm -rf /", "tank/$(id)", "tank/`id`", "tank/a|b", "tank/a&b", "tank/a>b", "tank/a b",
    "tank/'q'", "-rf", "tank/-rf", "tank/../etc", "tank/./x", "../tank", "/tank", "tank//data", "tank/",
    "tank/da\nta", "tank/data\n", "tank/dätä", "tank/데이터", "tank/da\x00ta", "x" * 300, "tank/" + "y" * 260,
    "tank/.hidden", "tank/a*", "tank/a?", "tank/[a]", "tank/a\\b", "tank/a\tb",
]
HOSTILE_SNAPSHOTS = ["s1; rm -rf /", "-x", "..", ".s", "s/1", "s@1", "s\n1", "snäp", "s" * 300, "$(id)", "s 1"]
HOSTILE_PROVIDERS = ["b2;id", "-x", "a/b", "a b", "b2\n", "prövider", "p" * 65, "..", "$(id)"]
HOSTILE_NAMESPACES = ["../etc", "-x", "a/b", "a b", "ns\n", "ñs", "n" * 200, ".", "..", "a/../b", "$(id)"]


@pytest.fixture
def recorded(lab):
    """Point zfs and rclone at recording wrappers; yield a function returning every call they saw."""
    bindir = lab.tmp / "bin"
    zfs = Wrapper.create(bindir, shutil.which("zfs") or "/sbin/zfs", name="zfs")
    rclone = Wrapper.create(bindir, lab.rclone, name="rclone")
    lab.config["zfs"] = str(zfs.path)
    lab.config["rclone"] = str(rclone.path)
    return lambda: zfs.calls() + rclone.calls()


def _refused(call, codes=("bad_name",)) -> OffsiteError:
    with pytest.raises(OffsiteError) as caught:
        call()
    assert caught.value.code in codes, caught.value.message
    assert one_sentence(caught.value.message), caught.value.message
    return caught.value


def test_hostile_names_are_rejected_before_any_command_runs(lab, recorded):
    ds = lab.pool.create("data")
    lab.pool.snapshot(ds, "s1")
    calls = []
    for name in HOSTILE:
        calls += [lambda n=name: lab.backup(n, "s1"), lambda n=name: lab.restore(n, "s1", target=ds + "-copy"),
                  lambda n=name: lab.restore(ds, "s1", target=n)]
    for snap in HOSTILE_SNAPSHOTS:
        calls += [lambda n=snap: lab.backup(ds, n), lambda n=snap: lab.backup(ds, n, create=True),
                  lambda n=snap: lab.restore(ds, n, target=ds + "-copy")]
    for provider in HOSTILE_PROVIDERS:
        calls += [lambda n=provider: lab.backup(ds, "s1", providers=[n]),
                  lambda n=provider: lab.restore(ds, "s1", target=ds + "-copy", provider=n)]
        # A comma-separated string is split and stripped first: "b2\n" is then just an unknown "b2".
        with pytest.raises(OffsiteError) as caught:
            lab.backup(ds, "s1", providers=provider)
        assert caught.value.code in ("bad_name", "unknown_provider") and one_sentence(caught.value.message)
    for namespace in HOSTILE_NAMESPACES:
        calls += [lambda n=namespace: lab.backup(ds, "s1", namespace=n),
                  lambda n=namespace: lab.restore(ds, "s1", target=ds + "-copy", namespace=n)]
    for call in calls:
        _refused(call)
    assert recorded() == [], "no zfs or rclone command ran"
    # The wrappers do record: a valid backup makes calls.
    assert lab.backup(ds, "s1")["providers"]["local"]["status"] == "uploaded"
    assert any(call["argv"][0] == "send" for call in recorded())


def test_hostile_provider_names_in_the_config_file_are_rejected(lab, recorded):
    ds = lab.pool.create("data")
    lab.pool.snapshot(ds, "s1")
    for provider in HOSTILE_PROVIDERS:
        lab.config["providers"] = {provider: {"remote": str(lab.remotes["local"])}}
        _refused(lambda: lab.backup(ds, "s1"), codes=("bad_name", "bad_config"))
    lab.config["providers"] = {"ok": {"remote": "--config=/etc/shadow"}}
    with pytest.raises(OffsiteError) as caught:
        lab.backup(ds, "s1")
    assert caught.value.code in ("bad_value", "bad_config") and "ok" in caught.value.message
    assert recorded() == []


def test_hostile_names_through_ansible_fail_cleanly(lab, ansible, recorded):
    config = str(lab.config_path)
    for name in ("tank/data; touch /tmp/offsite-pwned", "tank/../etc"):
        result = ansible.module("offsite_backup", {"dataset": name, "config": config})
        assert result.get("failed") is True and result["_rc"] != 0
        assert result["error_code"] == "bad_name" and one_sentence(result["msg"]), result["msg"]
    result = ansible.module("offsite_restore", {"dataset": lab.pool.name + "/data@s1; id", "config": config,
                                                "identity_file": str(lab.key.path)})
    assert result.get("failed") is True and result["error_code"] == "bad_name"
    result = ansible.module("offsite_backup", {"dataset": lab.pool.name + "/data", "snapshot": "s1",
                                               "providers": "-x", "config": config})
    assert result.get("failed") is True and result["error_code"] == "bad_name"
    assert not Path("/tmp/offsite-pwned").exists()
    assert recorded() == []


# -- tampered manifests and chunks ------------------------------------------------------------------
def _two_backups(lab):
    """Two full backups of the same size (incompressible data, no compression): chunks of equal size."""
    ds = lab.pool.create("data")
    mount = lab.pool.mountpoint(ds)
    random_file(mount, 301, 512 << 10)
    lab.pool.snapshot(ds, "s1")
    random_file(mount, 302, 512 << 10)
    lab.pool.snapshot(ds, "s2")
    ids = []
    for snap in ("s1", "s2"):
        entry = lab.backup(ds, snap, full=True, compression="none")["providers"]["local"]
        ids.append(entry["backup_id"])
    base = lab.remotes["local"] / "testhost" / ds
    return ds, base / ("@" + ids[0]), base / ("@" + ids[1])


def _refuses(lab, ds: str, code: str, *needles: str, spool: bool = True) -> str:
    target = lab.pool.name + "/tampered"
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, "s1", target=target, spool=spool)
    message = caught.value.message
    assert caught.value.code == code, message
    assert one_sentence(message), message
    for needle in needles:
        assert needle in message, message
    assert not lab.pool.exists(target) and not lab.pool.exists(target + ".offsite-partial")
    return message


def _edit_manifest(directory: Path, edit) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _recount(data) -> None:
    data["totals"] = {"chunks": len(data["chunks"]), "plain_bytes": sum(c["plain_bytes"] for c in data["chunks"]),
                      "stored_bytes": sum(c["stored_bytes"] for c in data["chunks"])}


def test_manifest_with_edited_plain_size_is_refused(lab):
    ds, first, _ = _two_backups(lab)

    def edit(data):
        data["chunks"][1]["plain_bytes"] += 1
        _recount(data)
    _edit_manifest(first, edit)
    _refuses(lab, ds, "tampered", "altered after it was written", ds)


def test_manifest_with_edited_stored_size_is_refused(lab):
    ds, first, _ = _two_backups(lab)

    def edit(data):
        data["chunks"][2]["stored_bytes"] -= 10
        _recount(data)
    _edit_manifest(first, edit)
    _refuses(lab, ds, "no_backup", "chunk-000002", "wrong-sized")


def test_manifest_with_inconsistent_totals_is_refused(lab):
    ds, first, _ = _two_backups(lab)
    _edit_manifest(first, lambda data: data["chunks"][0].update(plain_bytes=1))
    _refuses(lab, ds, "no_backup", "totals do not add up")


def test_manifest_copied_from_another_backup_is_refused(lab):
    ds, first, second = _two_backups(lab)
    shutil.copy(second / "manifest.json", first / "manifest.json")
    _refuses(lab, ds, "no_backup", "moved or tampered")


@pytest.mark.parametrize("spool", [True, False], ids=["spool", "streaming"])
def test_chunks_swapped_between_two_backups_are_refused(lab, spool):
    ds, first, second = _two_backups(lab)
    a, b = first / "chunk-000002.age", second / "chunk-000002.age"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    # age output sizes vary (rage adds a random "grease" stanza), so the listing usually catches the
    # wrong size before a byte is downloaded; with equal sizes the SHA-256 check does.
    code = "chunk_corrupt" if len(data_a) == len(data_b) else "no_backup"
    _refuses(lab, ds, code, "chunk-000002", spool=spool)


def test_chunk_from_another_backup_copied_under_the_same_key_is_refused(lab):
    ds, first, second = _two_backups(lab)
    victim = first / "chunk-000003.age"
    size = victim.stat().st_size
    # Another backup's chunk under this key, cut or padded to the expected size so the listing cannot tell.
    foreign = (second / "chunk-000003.age").read_bytes()
    victim.write_bytes((foreign + bytes(size))[:size])
    _refuses(lab, ds, "chunk_corrupt", "chunk-000003")
    _refuses(lab, ds, "chunk_corrupt", "chunk-000003", spool=False)


def test_keyed_chunk_digest_catches_a_swap_even_with_a_resealed_manifest(lab):
    """Defence in depth: if an attacker could also rewrite the manifest and its MAC (they would need the
    backup key), the keyed plaintext digest still ties each chunk to its backup and position."""
    ds, first, _ = _two_backups(lab)
    a, b = first / "chunk-000001.age", first / "chunk-000002.age"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    manifest = parse((first / "manifest.json").read_bytes())
    key = codec.unseal(manifest.encryption["sealed_key"], codec.parse_identities(lab.key.path.read_text()))
    one, two = manifest.chunks[1], manifest.chunks[2]
    one.stored_sha256, two.stored_sha256 = two.stored_sha256, one.stored_sha256
    one.stored_bytes, two.stored_bytes = two.stored_bytes, one.stored_bytes
    manifest.seal_with(key)
    (first / "manifest.json").write_bytes(manifest.to_json())
    _refuses(lab, ds, "chunk_mismatch", "chunk-000001", "keyed digest")


def test_untampered_backups_still_restore(lab):
    ds, _, _ = _two_backups(lab)
    target = lab.pool.name + "/fine"
    lab.restore(ds, "s2", target=target)
    assert same_tree(lab, ds, target)


# -- keys and config files, through ansible --------------------------------------------------------------
def test_bad_recipients_identities_and_config_files_give_one_clear_sentence(lab, ansible, tmp_path):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 303, 128 << 10)
    lab.pool.snapshot(ds, "s1")
    config = str(lab.config_path)
    backup = {"dataset": ds + "@s1", "config": config}
    cases = []
    for recipient in ("age1notakey", "ssh-ed25519 AAAAnotbase64"):
        cases.append(("offsite_backup", dict(backup, recipients=[recipient]), "bad_recipient", "recipient"))
    assert lab.backup(ds, "s1")["providers"]["local"]["status"] == "uploaded"
    restore = {"dataset": ds + "@s1", "target": lab.pool.name + "/r", "config": config}
    other = harness.AgeKey(tmp_path, "other")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key at all\n")
    cases += [
        ("offsite_restore", dict(restore, identity="AGE-SECRET-KEY-1QQQQQQ"), "bad_identity", "not a valid age key"),
        ("offsite_restore", dict(restore, identity=other.secret), "wrong_key", "None of the given identities"),
        ("offsite_restore", dict(restore, identity_file=str(tmp_path / "missing.key")), "bad_identity",
         "cannot be read"),
        ("offsite_restore", dict(restore, identity_file=str(garbage)), "bad_identity", str(garbage)),
    ]
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("providers: [unclosed\n")
    for path, needle in ((tmp_path, "cannot be read"), (bad_yaml, "not valid YAML"),
                         (tmp_path / "nope.yml", "does not exist")):
        cases.append(("offsite_backup", dict(backup, config=str(path)), "bad_config", needle))
    for module, args, code, needle in cases:
        result = ansible.module(module, args)
        assert result.get("failed") is True and result["_rc"] != 0, (module, args, result)
        assert result.get("error_code") == code, (args, result.get("msg"))
        assert needle in result["msg"] and one_sentence(result["msg"]), result["msg"]
        assert other.secret not in result["_stdout"] and lab.key.secret not in result["_stdout"]
    assert not lab.pool.exists(lab.pool.name + "/r")
