# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""After the chunks, per provider: the manifest, written last (its presence means complete).

`finish` checks that the provider lists every chunk with the size that was uploaded (and, on an
append-only provider, that signature and manifest can still be written once), seals the backup's
MAC key for the recipients (once per key: providers that shared a pass get the same manifest),
writes the signature (when the trust settings sign) and then the manifest, records it in the
ledger, forgets the resume journal, and holds the base of the next incremental
(plan.ProviderRun.keep_base). The manifest record itself is the layer module_utils/manifest.py.

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from typing import Dict, List

from ansible_collections.offsite.zfs.plugins.module_utils import attempts as upload_attempts
from ansible_collections.offsite.zfs.plugins.module_utils import catalog, codec, holds, ledger, signing
from ansible_collections.offsite.zfs.plugins.module_utils.common import TOOL_VERSION, human_bytes
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord, Manifest, SnapshotRef
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.journal import Target
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.plan import ProviderRun


def finish(run: ProviderRun, target: Target, finished: str, sealed: Dict[str, str]) -> None:
    """Check the listing, write signature and manifest, record, forget the journal, hold the base.

    `sealed` caches the age-sealed MAC key per key, so providers sharing a pass get one manifest.
    """
    settings, base, plan = run.settings, run.base, run.plan
    bdir, journal, encryption = target.bdir, target.journal, target.encryption
    manifest_chunks = target.ordered()
    if journal["key"] not in sealed:
        sealed[journal["key"]] = codec.seal(bytes.fromhex(journal["key"]), encryption.recipients)
    key = bytes.fromhex(journal["key"])
    manifest = Manifest(
        backup_id=run.backup_id,
        namespace=settings.namespace,
        dataset=settings.dataset,
        dataset_type=run.dataset_type,
        snapshot=SnapshotRef(run.snapshot.name, str(run.snapshot.guid), run.snapshot.createtxg,
                             run.snapshot.creation),
        kind="incremental" if base else "full",
        base=SnapshotRef(base.name, str(base.guid), base.createtxg, base.creation) if base else None,
        **holds.manifest_base_fields(base),
        send_flags=list(plan.flags),
        compression={"algorithm": settings.compression, "level": settings.compression_level},
        encryption={"kind": encryption.kind,
                    "recipients": encryption.recipient_strings if encryption.kind == "recipients" else [],
                    "wrapped_identity": encryption.wrapped_identity,
                    "sealed_key": sealed[journal["key"]]},
        chunk_size=settings.chunk_size,
        lineage=getattr(run, "lineage", ""),
        host_id=getattr(run, "host_id", ""),
        chunks=manifest_chunks,
        estimate={"bytes": run.estimate, "method": run.method},
        host=socket.gethostname(),
        tool_version=TOOL_VERSION,
        started=journal.get("started", ""),
        finished=finished,
    )
    manifest.seal_with(key)
    listed = _check_uploaded(run, bdir, manifest_chunks)
    if target.append_only:  # the signature and the manifest are written once each
        upload_attempts.check_writable(run.store.name, bdir, listed)
    manifest_bytes = manifest.to_json()
    signature = signing.sign_checked(settings.trust, settings.namespace, settings.dataset, run.backup_id,
                                     manifest_bytes)
    if signature is not None:  # before the manifest: its presence means complete
        run.store.put_bytes(bdir + "/" + signing.SIGNATURE, signature)
    run.store.put_bytes(bdir + "/" + catalog.MANIFEST, manifest_bytes)
    ledger.record(settings.state_dir, settings.namespace, run.store.name, settings.dataset, run.backup_id,
                  hashlib.sha256(manifest_bytes).hexdigest(), run.backups)
    try:
        os.unlink(target.jpath)
    except OSError:
        pass
    resumed = target.resumed
    msg = "uploaded %s %s backup of %s@%s%s to %s: %d chunks, %s stored" % (
        "an" if manifest.kind == "incremental" else "a", manifest.kind, settings.dataset, run.snapshot.name,
        " from %s" % base.name if base else "", run.store.name, len(manifest_chunks),
        human_bytes(manifest.stored_bytes))
    if resumed:
        msg += " (%d chunks reused from the interrupted run)" % resumed
    if target.notes:
        msg += "; " + "; ".join(target.notes)
    run.result.update(status="resumed" if resumed else "uploaded", changed=True, signed=signature is not None,
                      chunks=len(manifest_chunks), chunks_resumed=resumed,
                      bytes_plain=manifest.plain_bytes, bytes_stored=manifest.stored_bytes,
                      manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
                      restarted=target.restarted, notes=target.notes, message=msg)
    run.seconds = round(time.time() - run.started, 3)
    run.keep_base()


def _check_uploaded(run: ProviderRun, bdir: str, records: List[ChunkRecord]) -> Dict[str, int]:
    listed = {o.path: o.size for o in run.store.list(bdir, max_depth=1)}
    for record in records:
        if listed.get(record.object) != record.stored_bytes:
            raise OffsiteError("Chunk %s of %s@%s is not on %s with the size that was uploaded (%s listed, %d "
                               "expected); run the backup again." % (
                                   record.object, run.settings.dataset, run.snapshot.name, run.store.name,
                                   listed.get(record.object), record.stored_bytes), "upload_incomplete")
    return listed
