# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed manifests: OpenSSH signatures (`ssh-keygen -Y sign/verify`) over a manifest and its place.

Private to the collection: not an API for other collections.

The backup host signs, with its signing key (a private key file, 0600, default
/etc/offsite/signing_key), a small canonical payload that binds the manifest to where it
lives:

    offsite.zfs signed manifest v1
    namespace <namespace>
    dataset <dataset>
    backup_id <backup id>
    manifest_sha256 <SHA-256 of manifest.json as stored>

The armored signature is the object `manifest.sig`, written before manifest.json (manifest
presence means complete). A manifest copied under another backup id, dataset or namespace,
an edited manifest, or one signed by a key the policy does not trust is refused.

Trust: `signers` in the policy maps a namespace to the public keys (ssh-ed25519 ...) allowed
to sign its backups. Rules, backward compatible with 1.0.0:
- no `signers` at all: nothing is verified (1.0.0 behaviour); hosts still sign when they hold a key;
- `signers` configured: every backup read (restore, status, prune, backup's own listing) must
  carry a good signature by a key listed for its namespace; an unsigned one is accepted only with
  `allow_unsigned: true` (legacy backups, backups made before signing), a wrongly signed one never.

The key is passed to ssh-keygen as a file path only; its content is never read, logged or in argv.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import _proc
from ansible_collections.offsite.zfs.plugins.module_utils.common import validate_namespace
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

SIGNATURE = "manifest.sig"
SSH_NAMESPACE = "offsite.zfs"
PRINCIPAL = "offsite"
DEFAULT_SIGNING_KEY = "/etc/offsite/signing_key"
CODES = ("unsigned", "bad_signature")
_PUBLIC_KEY = re.compile(r"^(?![\s\S]*\n)(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|"
                         r"sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/=]+( [^\n]*)?$")


@dataclass
class Trust:
    """Who may sign which namespace, whether unsigned backups pass, and this host's signing key."""

    signers: Dict[str, List[str]] = field(default_factory=dict)
    allow_unsigned: bool = False
    signing_key: str = DEFAULT_SIGNING_KEY
    key_configured: bool = False
    ssh_keygen: str = "ssh-keygen"

    @property
    def enforced(self) -> bool:
        return bool(self.signers)


def trust_from(config: Dict[str, Any], params: Dict[str, Any]) -> Trust:
    """The Trust of a config file (signers, allow_unsigned, signing_key), module parameters overriding.

    The signing key defaults to `signing_key` beside the config file (params `_config_dir`), which is
    /etc/offsite/signing_key for the default config, where the role creates it.
    """
    signers = config.get("signers") or {}
    if not isinstance(signers, dict):
        raise OffsiteError("signers must be a mapping of namespace to a list of SSH public keys.", "bad_config")
    checked: Dict[str, List[str]] = {}
    for namespace, keys in signers.items():
        validate_namespace(namespace)
        if not isinstance(keys, list) or not keys:
            raise OffsiteError("signers.%s must be a list of SSH public keys (ssh-ed25519 AAAA...)." % namespace,
                               "bad_config")
        for key in keys:
            if not isinstance(key, str) or not _PUBLIC_KEY.match(key.strip()):
                raise OffsiteError("signers.%s holds something that is not an SSH public key; use the line the role "
                                   "printed for the host (ssh-ed25519 AAAA...)." % namespace, "bad_config")
        checked[namespace] = [k.strip() for k in keys]
    allow = params.get("allow_unsigned")
    if allow is None:
        allow = config.get("allow_unsigned", False)
    key = config.get("signing_key")
    default = os.path.join(params["_config_dir"], "signing_key") if params.get("_config_dir") else DEFAULT_SIGNING_KEY
    return Trust(signers=checked, allow_unsigned=bool(allow), signing_key=key or default, key_configured=bool(key))


def payload(namespace: str, dataset: str, backup_id: str, manifest_bytes: bytes) -> bytes:
    """The bytes that are signed: the manifest's digest and its location."""
    return ("offsite.zfs signed manifest v1\nnamespace %s\ndataset %s\nbackup_id %s\nmanifest_sha256 %s\n" % (
        namespace, dataset, backup_id, hashlib.sha256(manifest_bytes).hexdigest())).encode("utf-8")


def _first_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def sign(trust: Trust, namespace: str, dataset: str, backup_id: str, manifest_bytes: bytes) -> Optional[bytes]:
    """The armored signature of a manifest, or None when this host has no signing key and need not sign."""
    path = trust.signing_key
    if not os.path.exists(path):
        if trust.key_configured or namespace in trust.signers:
            raise OffsiteError("The signing key %s does not exist, but %s; run the offsite role to create it (or fix "
                               "signing_key in the config file)." % (
                                   path, "signers are configured for namespace %s" % namespace
                                   if namespace in trust.signers else "signing_key names it"), "no_signing_key")
        return None
    try:  # the key's path in argv, never the key
        proc = _proc.run([trust.ssh_keygen, "-q", "-Y", "sign", "-f", path, "-n", SSH_NAMESPACE],
                         input=payload(namespace, dataset, backup_id, manifest_bytes), check=False)
    except OSError as exc:
        raise OffsiteError("ssh-keygen could not be run to sign the manifest of %s (%s); install OpenSSH." % (
            backup_id, exc.strerror), "sign_failed")
    if proc.returncode != 0 or b"BEGIN SSH SIGNATURE" not in proc.stdout:
        raise OffsiteError("Signing the manifest of backup %s of %s with %s failed: %s; check that the file is an "
                           "unencrypted OpenSSH private key readable only by its owner (mode 0600)." % (
                               backup_id, dataset, path, _first_line(proc.stderr)), "sign_failed")
    return proc.stdout


def sign_checked(trust: Trust, namespace: str, dataset: str, backup_id: str, manifest_bytes: bytes
                 ) -> Optional[bytes]:
    """sign(), then, when signers are listed for the namespace, check that they trust this host's key."""
    signature = sign(trust, namespace, dataset, backup_id, manifest_bytes)
    keys = trust.signers.get(namespace)
    if signature is not None and keys and not _verify(
            trust, keys, payload(namespace, dataset, backup_id, manifest_bytes), signature):
        raise OffsiteError("The signing key %s is not among the signers the policy trusts for namespace %s, so its "
                           "backups would be refused; add its public key (%s.pub) under signers.%s." % (
                               trust.signing_key, namespace, trust.signing_key, namespace), "untrusted_signing_key")
    return signature


def _verify(trust: Trust, keys: List[str], data: bytes, signature: bytes) -> bool:
    tmp = tempfile.mkdtemp(prefix="offsite-verify-")
    try:
        allowed = os.path.join(tmp, "allowed_signers")
        with open(allowed, "w", encoding="utf-8") as handle:
            for key in keys:
                handle.write('%s namespaces="%s" %s\n' % (PRINCIPAL, SSH_NAMESPACE, key))
        sig = os.path.join(tmp, "manifest.sig")
        with open(sig, "wb") as handle:
            handle.write(signature)
        try:
            proc = _proc.run([trust.ssh_keygen, "-Y", "verify", "-f", allowed, "-I", PRINCIPAL,
                              "-n", SSH_NAMESPACE, "-s", sig], input=data, check=False)
        except OSError as exc:
            raise OffsiteError("ssh-keygen could not be run to verify manifest signatures (%s); install OpenSSH."
                               % exc.strerror, "sign_failed")
        return proc.returncode == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check(trust: Optional[Trust], namespace: str, dataset: str, backup_id: str, manifest_bytes: bytes,
          signature: Optional[bytes], where: str) -> Optional[OffsiteError]:
    """None when the manifest may be trusted; else the error (code unsigned or bad_signature) to report."""
    if trust is None or not trust.enforced:
        return None
    keys = trust.signers.get(namespace)
    if signature is None:
        if trust.allow_unsigned:
            return None
        return OffsiteError("The %s is not signed, and signers are configured, so it is refused; if it was made "
                            "before signing was set up (or adopted from a legacy backup), pass allow_unsigned=true."
                            % where, "unsigned")
    if not keys:
        return OffsiteError("The %s is signed, but the policy lists no signers for namespace %s, so it is refused; "
                            "add the host's public signing key under signers.%s." % (where, namespace, namespace),
                            "bad_signature")
    if not _verify(trust, keys, payload(namespace, dataset, backup_id, manifest_bytes), signature):
        return OffsiteError("The %s does not carry a good signature by a trusted signer of namespace %s (forged, "
                            "edited, or copied from another backup), so it is refused; delete it and back the "
                            "snapshot up again." % (where, namespace), "bad_signature")
    return None


def public_key(trust: Trust) -> Optional[str]:
    """The public half of this host's signing key (from KEY.pub, or derived with ssh-keygen -y), if any."""
    path = trust.signing_key
    try:
        with open(path + ".pub", "r", encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        pass
    if not os.path.exists(path):
        return None
    proc = _proc.run([trust.ssh_keygen, "-y", "-f", path], check=False)
    return proc.stdout.decode("utf-8", "replace").strip() or None if proc.returncode == 0 else None
