"""Hostile and bad input (issue 5).

Names are rejected before any command runs: `zfs` and `rclone` point at recording
wrappers (tests/functional/faulty_rclone.py), and the test asserts they were never called.
Tampered manifests and chunks make restore refuse with a clear error. Bad keys and config
files give one clear sentence, through real `ansible` runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import harness
import pytest
from faulty_rclone import Wrapper
from reliability import one_sentence, random_file, same_tree

from ansible_collections.offsite.zfs.plugins.module_utils import codec
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
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


def test_tampered_manifests_are_refused(lab):
    ds, first, second = _two_backups(lab)
    original = (first / "manifest.json").read_bytes()

    def case(edit, code, *needles):
        _edit_manifest(first, edit)
        _refuses(lab, ds, code, *needles)
        (first / "manifest.json").write_bytes(original)

    def plain_size(data):  # totals fixed up, so only the MAC can tell
        data["chunks"][1]["plain_bytes"] += 1
        _recount(data)

    def stored_size(data):
        data["chunks"][2]["stored_bytes"] -= 10
        _recount(data)
    case(plain_size, "tampered", "altered after it was written", ds)
    case(stored_size, "no_backup", "chunk-000002", "wrong-sized")
    case(lambda data: data["chunks"][0].update(plain_bytes=1), "no_backup", "totals do not add up")
    case(lambda data: data.update(json.loads((second / "manifest.json").read_text())), "no_backup",
         "moved or tampered")
    # Untouched again, both backups restore.
    target = lab.pool.name + "/fine"
    lab.restore(ds, "s2", target=target)
    assert same_tree(lab, ds, target)


def test_chunks_swapped_between_two_backups_are_refused(lab):
    ds, first, second = _two_backups(lab)
    a, b = first / "chunk-000002.age", second / "chunk-000002.age"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    # age output sizes vary (rage adds a random "grease" stanza), so the listing usually catches the
    # wrong size before a byte is downloaded; with equal sizes the SHA-256 check does.
    code = "digest_mismatch" if len(data_a) == len(data_b) else "no_backup"
    _refuses(lab, ds, code, "chunk-000002")
    _refuses(lab, ds, code, "chunk-000002", spool=False)


def test_chunk_from_another_backup_copied_under_the_same_key_is_refused(lab):
    ds, first, second = _two_backups(lab)
    victim = first / "chunk-000003.age"
    size = victim.stat().st_size
    # Another backup's chunk under this key, cut or padded to the expected size so the listing cannot tell.
    foreign = (second / "chunk-000003.age").read_bytes()
    victim.write_bytes((foreign + bytes(size))[:size])
    _refuses(lab, ds, "digest_mismatch", "chunk-000003")
    _refuses(lab, ds, "digest_mismatch", "chunk-000003", spool=False)  # streamed: the whole object is hashed too
    # Defence in depth: even if an attacker could also rewrite the manifest and its MAC (they would
    # need the backup key), the keyed plaintext digest ties each chunk to its backup and position.
    a, b = first / "chunk-000001.age", first / "chunk-000002.age"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    manifest = parse((first / "manifest.json").read_bytes())
    key = codec.unseal(manifest.encryption["sealed_key"], codec.parse_identities(lab.key.path.read_text()))
    one, two, three = manifest.chunks[1], manifest.chunks[2], manifest.chunks[3]
    one.stored_sha256, two.stored_sha256 = two.stored_sha256, one.stored_sha256
    one.stored_bytes, two.stored_bytes = two.stored_bytes, one.stored_bytes
    three.stored_sha256 = hashlib.sha256(victim.read_bytes()).hexdigest()
    three.stored_bytes = size
    manifest.seal_with(key)
    (first / "manifest.json").write_bytes(manifest.to_json())
    _refuses(lab, ds, "mac_mismatch", "chunk-000001", "keyed digest")


def test_a_refused_last_chunk_never_reaches_an_existing_target(lab):
    """The tail of each stream reaches zfs receive only once its last chunk is checked (sinks.HoldbackWriter).

    The manifest of an incremental gets a wrong keyed digest for its last chunk and is sealed again with the
    backup's key (what only the key holder could do), so the size, the SHA-256 and age all pass, ZFS would
    accept the stream, and only the keyed digest tells. Without the hold-back the existing target would have
    s2 when restore refuses.
    """
    ds = lab.pool.create("held")
    mount = lab.pool.mountpoint(ds)
    first = random_file(mount, 401, 256 << 10, "one.bin").read_bytes()
    lab.pool.snapshot(ds, "s1")
    random_file(mount, 402, 256 << 10, "two.bin")
    lab.pool.snapshot(ds, "s2")
    lab.backup(ds, "s1")
    entry = lab.backup(ds, "s2")["providers"]["local"]
    assert entry["kind"] == "incremental"
    target = lab.pool.name + "/held-copy"
    lab.restore(ds, "s1", target=target)
    path = lab.remotes["local"] / "testhost" / ds / ("@" + entry["backup_id"]) / "manifest.json"
    manifest = parse(path.read_bytes())
    manifest.chunks[-1].plain_mac = "0" * 64
    manifest.seal_with(codec.unseal(manifest.encryption["sealed_key"],
                                    codec.parse_identities(lab.key.path.read_text())))
    path.write_bytes(manifest.to_json())
    for spool in (True, False):
        with pytest.raises(OffsiteError) as caught:
            lab.restore(ds, "s2", target=target, spool=spool)
        assert caught.value.code == "mac_mismatch", caught.value.message
        assert "chunk-%06d" % manifest.chunks[-1].index in caught.value.message
        assert lab.pool.snapshots(target) == ["s1"], "the refused stream was discarded: s2 never reached the target"
    assert harness.tree_digest(lab.pool.mountpoint(target)) == {"one.bin": hashlib.sha256(first).hexdigest()}


# -- through ansible: names, keys and config files ----------------------------------------------------------
PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Backups that must fail
      offsite.zfs.offsite_backup:
        dataset: "{{ item.dataset }}"
        config: "{{ item.config }}"
        snapshot: "{{ item.snapshot | default(omit) }}"
        providers: "{{ item.providers | default(omit) }}"
        recipients: "{{ item.recipients | default(omit) }}"
      loop: "{{ backup_cases }}"
      loop_control: {label: "{{ item.name }}"}
      register: backups
      ignore_errors: true

    - name: Restores that must fail
      offsite.zfs.offsite_restore:
        dataset: "{{ item.dataset }}"
        config: "{{ item.config }}"
        target: "{{ item.target | default(omit) }}"
        identity: "{{ lookup('ansible.builtin.env', item.identity_env) if item.identity_env is defined else omit }}"
        identity_file: "{{ item.identity_file | default(omit) }}"
      loop: "{{ restore_cases }}"
      loop_control: {label: "{{ item.name }}"}
      register: restores
      ignore_errors: true

    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'backups': backups.results, 'restores': restores.results} | to_json }}"
        dest: "{{ results }}"
        mode: "0600"
"""


def test_bad_input_through_ansible_gives_one_clear_sentence_each(lab, ansible, tmp_path):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 303, 128 << 10)
    lab.pool.snapshot(ds, "s1")
    assert lab.backup(ds, "s1")["providers"]["local"]["status"] == "uploaded"
    config = str(lab.config_path)
    # Hostile names go through a config whose zfs and rclone record every call.
    zfs = Wrapper.create(tmp_path / "bin", shutil.which("zfs") or "/sbin/zfs", name="zfs")
    rclone = Wrapper.create(tmp_path / "bin", lab.rclone, name="rclone")
    recording = harness.write_config(tmp_path / "recording.yml", dict(
        lab.config, zfs=str(zfs.path), rclone=str(rclone.path)))
    other = harness.AgeKey(tmp_path, "other")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key at all\n")
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("providers: [unclosed\n")
    pwned = tmp_path / "pwned"
    backup = {"dataset": ds + "@s1", "config": config}
    restore = {"dataset": ds + "@s1", "target": lab.pool.name + "/r", "config": config}
    backup_cases = [  # (case, code, needle)
        (dict(dataset="tank/data; touch %s" % pwned, config=str(recording)), "bad_name", "not valid"),
        (dict(dataset="tank/../etc", config=str(recording)), "bad_name", "not valid"),
        (dict(dataset=ds, snapshot="s1$(touch %s)" % pwned, config=str(recording)), "bad_name", "snapshot name"),
        (dict(dataset=ds + "@s1", providers="-x", config=str(recording)), "bad_name", "provider name"),
        (dict(backup, recipients=["age1notakey"]), "bad_recipient", "recipient"),
        (dict(backup, recipients=["ssh-ed25519 AAAAnotbase64"]), "bad_recipient", "recipient"),
        (dict(backup, config=str(tmp_path)), "bad_config", "cannot be read"),
        (dict(backup, config=str(bad_yaml)), "bad_config", "not valid YAML"),
        (dict(backup, config=str(tmp_path / "nope.yml")), "bad_config", "does not exist"),
    ]
    restore_cases = [
        (dict(dataset=ds + "@s1; id", identity_file=str(lab.key.path), config=str(recording)), "bad_name",
         "snapshot name"),
        (dict(restore, identity_env="OFFSITE_TEST_MALFORMED"), "bad_identity", "not a valid age key"),
        (dict(restore, identity_env="OFFSITE_TEST_OTHER"), "wrong_key", "None of the given identities"),
        (dict(restore, identity_file=str(tmp_path / "missing.key")), "bad_identity", "cannot be read"),
        (dict(restore, identity_file=str(garbage)), "bad_identity", str(garbage)),
    ]
    playbook = tmp_path / "bad-input.yml"
    playbook.write_text(PLAYBOOK)
    results = tmp_path / "results.json"
    extra = {"results": str(results),
             "backup_cases": [dict(case, name="backup %d" % n) for n, (case, _k, _w) in enumerate(backup_cases)],
             "restore_cases": [dict(case, name="restore %d" % n) for n, (case, _k, _w) in enumerate(restore_cases)]}
    run = ansible.run_playbook(playbook, extra_vars=extra, extra_env={
        "OFFSITE_TEST_MALFORMED": "AGE-SECRET-KEY-1QQQQQQ", "OFFSITE_TEST_OTHER": other.secret})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    data = json.loads(results.read_text())
    outcomes = list(zip(backup_cases, data["backups"])) + list(zip(restore_cases, data["restores"]))
    assert len(outcomes) == len(backup_cases) + len(restore_cases)
    for (case, code, needle), result in outcomes:
        assert result.get("failed") is True, (case, result)
        assert result.get("error_code") == code, (case, result.get("msg"))
        assert needle in result["msg"] and one_sentence(result["msg"]), result["msg"]
    assert "ok=" in output and other.secret not in output and lab.key.secret not in output
    assert zfs.calls() == [] and rclone.calls() == [], "no command ran for a hostile name"
    assert not pwned.exists()
    assert not lab.pool.exists(lab.pool.name + "/r")
