"""Signed manifests (issue 17): forged, replayed and tampered backups are refused, on real remotes.

A "bucket writer" knows the recipients and holds the provider's credentials, but not the host's
signing key. Everything it writes goes through real rclone (the local backend and `rclone serve s3`).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from reliability import one_sentence
from unmounted import UnmountedPool, restores

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, signing
from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store


@pytest.fixture
def pool(zfs_daemon, tmp_path):
    created = UnmountedPool(tmp_path)
    yield created
    created.destroy()


def make_key(directory: Path, name: str = "signing_key") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


@pytest.fixture(params=["local", "s3"])
def signed_lab(request, lab):
    """A lab whose host signs with its key and whose policy trusts only that key for testhost."""
    provider = request.param
    if provider == "s3":
        lab.add_s3(request.getfixturevalue("s3"))
    key = make_key(lab.tmp / "host")
    lab.config["signing_key"] = str(key)
    lab.config["signers"] = {"testhost": [(key.parent / "signing_key.pub").read_text().strip()]}
    lab.config["defaults"]["providers"] = [provider]
    lab.provider = provider
    return lab


def _store(lab) -> Store:
    return Store(lab.settings("x/y").providers[lab.provider])


def _snapshots(lab, *names):
    ds = lab.pool.create("data")
    for name in names:
        lab.pool.snapshot(ds, name)
    return ds


def _refused(lab, ds, snapshot, *needles, **kwargs):
    target = lab.pool.name + "/refused"
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, snapshot, target=target, provider=lab.provider, **kwargs)
    message = caught.value.message
    assert one_sentence(message), message
    for needle in needles:
        assert needle in message, message
    assert not lab.pool.exists(target) and not lab.pool.exists(target + ".offsite-partial")
    return message


def _problems(lab, **params):
    return status_report(lab.config, dict({"compare_local": False}, **params))["problems"]


def _forger(lab, tmp_path, key=None):
    """The bucket writer's own config: the same recipients and credentials, not the host's key."""
    config = json.loads(json.dumps(lab.config))
    config.pop("signers")
    config["state_dir"] = str(tmp_path / "forger-state")
    # The host id is no secret (every manifest carries it): the writer copies it, so that the host-identity
    # check (hostid.py) does not refuse its upload and only the signature can tell the forgery.
    os.makedirs(config["state_dir"], mode=0o700, exist_ok=True)
    own = os.path.join(lab.config["state_dir"], "host-id")
    if os.path.exists(own):
        shutil.copy(own, os.path.join(config["state_dir"], "host-id"))
    config.pop("signing_key")  # the default key path does not exist here: unsigned
    if key is not None:
        config["signing_key"] = str(key)
    return config


def test_signed_backup_restores_and_status_is_healthy(signed_lab):
    lab = signed_lab
    ds = _snapshots(lab, "s1")
    entry = lab.backup(ds, "s1")["providers"][lab.provider]
    assert entry["status"] == "uploaded" and entry["signed"] is True, entry
    bdir = catalog.backup_dir("testhost", ds, entry["backup_id"])
    store = _store(lab)
    names = {o.path for o in store.list(bdir, max_depth=1)}
    assert {"manifest.json", "manifest.sig"} <= names
    assert b"BEGIN SSH SIGNATURE" in store.get_bytes(bdir + "/manifest.sig")
    restores(lab, ds, "s1", "copy")
    report = status_report(lab.config, {"compare_local": False})
    assert [p for p in report["problems"] if p["severity"] != "info"] == []
    assert [b["signed"] for b in report["datasets"][ds]["providers"][lab.provider]["backups"]] == [True]


def test_forged_backup_by_a_bucket_writer_is_refused(signed_lab, tmp_path):
    lab = signed_lab
    ds = _snapshots(lab, "s1", "s2")
    lab.backup(ds, "s1")
    # The writer makes a complete, decryptable backup of s2 (it knows the public recipients) unsigned ...
    from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup
    from ansible_collections.offsite.zfs.plugins.module_utils.resolve import resolve
    forged = run_backup(resolve(_forger(lab, tmp_path), ds, {}), snapshot="s2", full=True)
    assert forged["providers"][lab.provider]["status"] == "uploaded", forged
    message = _refused(lab, ds, "s2", "not signed", "allow_unsigned")
    assert ds in message
    codes = {p["code"]: p["severity"] for p in _problems(lab)}
    assert codes.get("unsigned") == "critical", codes
    # ... and signed with a key of its own: refused even with allow_unsigned.
    other = make_key(tmp_path / "forger")
    bid = forged["providers"][lab.provider]["backup_id"]
    store = _store(lab)
    store.purge(catalog.backup_dir("testhost", ds, bid))
    forged = run_backup(resolve(_forger(lab, tmp_path, other), ds, {}), snapshot="s2", full=True)
    assert forged["providers"][lab.provider]["status"] == "uploaded", forged
    assert store.get_bytes(catalog.backup_dir("testhost", ds, bid) + "/manifest.sig")
    _refused(lab, ds, "s2", "does not carry a good signature", "namespace testhost", allow_unsigned=True)
    assert {p["code"] for p in _problems(lab, allow_unsigned=True)} >= {"bad_signature"}
    # The host's own backup of s1 still restores.
    restores(lab, ds, "s1", "good")


def test_old_signed_manifest_replayed_under_a_new_backup_id_is_refused(signed_lab):
    lab = signed_lab
    ds = _snapshots(lab, "s1", "s2")
    old = lab.backup(ds, "s1", full=True)["providers"][lab.provider]["backup_id"]
    new = lab.backup(ds, "s2", full=True)["providers"][lab.provider]["backup_id"]
    store = _store(lab)
    old_dir, new_dir = (catalog.backup_dir("testhost", ds, b) for b in (old, new))
    manifest = json.loads(store.get_bytes(old_dir + "/manifest.json"))
    signature = store.get_bytes(old_dir + "/manifest.sig")
    # The writer replaces s2's manifest by s1's, renamed to s2's id, with s1's good signature,
    # and copies s1's chunks over: restoring "s2" would silently give s1's data.
    manifest["backup_id"] = new
    manifest["snapshot"]["name"] = "s2"
    for record in manifest["chunks"]:
        store.copy(old_dir + "/" + record["object"], new_dir + "/" + record["object"])
    store.put_bytes(new_dir + "/manifest.sig", signature)
    store.put_bytes(new_dir + "/manifest.json", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    _refused(lab, ds, "s2", "does not carry a good signature", allow_unsigned=True)
    # Byte for byte (manifest and signature) under the new id: refused too.
    store.put_bytes(new_dir + "/manifest.json", store.get_bytes(old_dir + "/manifest.json"))
    _refused(lab, ds, "s2")
    assert {p["code"] for p in _problems(lab)} & {"bad_signature", "bad_manifest"}


def test_tampered_signed_manifest_is_refused(signed_lab):
    lab = signed_lab
    ds = _snapshots(lab, "s1")
    bid = lab.backup(ds, "s1")["providers"][lab.provider]["backup_id"]
    store = _store(lab)
    bdir = catalog.backup_dir("testhost", ds, bid)
    data = json.loads(store.get_bytes(bdir + "/manifest.json"))
    data["host"] = "elsewhere"  # a field the MAC covers too, but the signature is checked first
    store.put_bytes(bdir + "/manifest.json", json.dumps(data).encode())
    _refused(lab, ds, "s1", "does not carry a good signature")
    refused = [p for p in _problems(lab) if p["code"] == "bad_signature"]
    assert [(p["severity"], p["backup"]) for p in refused] == [("critical", bid)], refused


def test_allow_unsigned_accepts_backups_made_before_signing(signed_lab, tmp_path):
    lab = signed_lab
    ds = _snapshots(lab, "s1")
    signers, key = lab.config.pop("signers"), lab.config.pop("signing_key")  # 1.0.0: no signers, no key
    lab.backup(ds, "s1")  # unsigned, as made by 1.0.0 (the default key path does not exist)
    restores(lab, ds, "s1", "before")  # no signers: as in 1.0.0
    lab.config.update(signers=signers, signing_key=key)
    _refused(lab, ds, "s1", "not signed")
    restores(lab, ds, "s1", "allowed", allow_unsigned=True)
    lab.config["allow_unsigned"] = True
    assert not [p for p in _problems(lab) if p["code"] == "unsigned"]


def test_disaster_recovery_needs_only_the_public_signing_key(signed_lab, tmp_path):
    lab = signed_lab
    ds = _snapshots(lab, "s1")
    lab.backup(ds, "s1")
    os.rename(lab.config.pop("signing_key"), str(tmp_path / "gone"))  # the old host is lost
    lab.config["state_dir"] = str(tmp_path / "new-host-state")
    restores(lab, ds, "s1", "dr")


def test_backup_refuses_a_missing_or_untrusted_signing_key(signed_lab, tmp_path):
    lab = signed_lab
    ds = _snapshots(lab, "s1")
    key = lab.config["signing_key"]
    os.chmod(key, 0o600)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    lab.config["signing_key"] = str(tmp_path / "missing")
    with pytest.raises(OffsiteError) as caught:
        lab.backup(ds, "s1")
    assert caught.value.code == "no_signing_key" and one_sentence(caught.value.message)
    lab.config["signing_key"] = str(make_key(tmp_path / "stranger"))
    with pytest.raises(OffsiteError) as caught:
        lab.backup(ds, "s1")
    assert caught.value.code == "untrusted_signing_key" and one_sentence(caught.value.message)
    assert "signers.testhost" in caught.value.message
    assert not _store(lab).list("testhost")  # nothing was uploaded


def test_payload_binds_namespace_dataset_and_id():
    one = signing.payload("a", "tank/x", "s1+00+full", b"{}")
    assert one != signing.payload("b", "tank/x", "s1+00+full", b"{}")
    assert one != signing.payload("a", "tank/y", "s1+00+full", b"{}")
    assert one != signing.payload("a", "tank/x", "s2+00+full", b"{}")
    assert one != signing.payload("a", "tank/x", "s1+00+full", b"{ }")


def test_role_creates_the_signing_key_and_the_modules_sign_with_it(lab, ansible, tmp_path):
    lab.provider = "local"
    ds = lab.pool.create("data")
    lab.pool.snapshot(ds, "s1")
    etc = tmp_path / "etc"
    config_path = etc / "offsite.yml"
    policy = json.loads(json.dumps(lab.config))
    playbook = tmp_path / "site.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  roles: [offsite.zfs.offsite]\n")
    extra = {"offsite_policy": policy, "offsite_config_path": str(config_path), "offsite_install_dependencies": False}
    run = ansible.run_playbook(playbook, extra_vars=extra)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    key = etc / "signing_key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    public = (etc / "signing_key.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ") and public in run.stdout
    assert "PRIVATE KEY" not in run.stdout + run.stderr
    before = key.read_bytes()
    # The controller collects the public key into the policy; the second run keeps the key.
    policy["signers"] = {"testhost": [public]}
    run = ansible.run_playbook(playbook, extra_vars=extra)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert key.read_bytes() == before
    backup = ansible.module("offsite_backup", {"config": str(config_path), "dataset": ds, "snapshot": "s1"})
    assert backup["providers"]["local"]["signed"] is True, backup
    status = ansible.module("offsite_status", {"config": str(config_path)})
    assert status["health"] == "ok", status["problems"]
