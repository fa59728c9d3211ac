#!/usr/bin/env bash
# The main job end to end on an embedded default: a file-backed demo pool (real ZFS:
# kernel ZFS or zfs-fuse), a local-directory remote (real rclone), real `ansible` runs.
# backup (full) -> change data -> backup (incremental) -> restore latest -> verify.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
export PATH="$here/.venv/bin:$PATH"
bash scripts/zfs-daemon.sh start

demo="$here/.tmp/demo"
pool="offsitedemo$$"
rm -rf "$demo"
mkdir -p "$demo" && chmod 700 "$demo"
cleanup() {
    for _ in $(seq 1 30); do
        zpool destroy -f "$pool" 2>/dev/null && break
        zpool list "$pool" >/dev/null 2>&1 || break
        sleep 1
    done
    bash scripts/zfs-daemon.sh stop
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. a file-backed pool $pool with a dataset of known data"
truncate -s 512M "$demo/pool.img"
zpool create -O atime=off -m "$demo/mnt" "$pool" "$demo/pool.img"
zfs create "$pool/data"
python - "$demo/mnt/data" <<'PY'
import os, random, sys
rng = random.Random(1)
root = sys.argv[1]
with open(os.path.join(root, "logs.txt"), "w") as f:
    for i in range(60000):
        f.write("2026-11-21T03:%02d:%02d host=nas1 job=%d status=ok\n" % (i // 60 % 60, i % 60, i))
with open(os.path.join(root, "photo.bin"), "wb") as f:
    f.write(rng.randbytes(3 << 20))
PY
zfs snapshot "$pool/data@demo-1"

say "2. an age key pair: the host keeps only the public key"
python - "$demo/identity.txt" <<'PY'
import os, sys
from pyrage import x25519
ident = x25519.Identity.generate()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    f.write("# public key: %s\n%s\n" % (ident.to_public(), ident))
PY
recipient="$(sed -n 's/^# public key: //p' "$demo/identity.txt")"
echo "recipient: $recipient"

say "3. the host config (/etc/offsite/offsite.yml in production)"
cat > "$demo/offsite.yml" <<YML
recipients: ["$recipient"]
namespace: demo-host
state_dir: $demo/state
log_dir: $demo/log
providers:
  mirror: {remote: "$demo/remote"}
defaults:
  chunk_size: 1MiB
  compression: {algorithm: zstd, level: 3}
  spool: {dir: $demo/spool}
YML
cat "$demo/offsite.yml"

mkdir -p "$demo/collections/ansible_collections/offsite"
ln -sfn "$here" "$demo/collections/ansible_collections/offsite/zfs"
export ANSIBLE_COLLECTIONS_PATH="$demo/collections"
export ANSIBLE_PYTHON_INTERPRETER="$here/.venv/bin/python"
export ANSIBLE_HOME="$demo/ansible"
adhoc() { ansible localhost -c local -i localhost, -m "offsite.zfs.$1" -a "$2"; }

say "4. full backup of $pool/data@demo-1"
adhoc offsite_backup "dataset=$pool/data@demo-1 config=$demo/offsite.yml"

say "5. change the data, snapshot, incremental backup"
echo "a new line written after the first backup" >> "$demo/mnt/data/logs.txt"
zfs snapshot "$pool/data@demo-2"
adhoc offsite_backup "dataset=$pool/data@demo-2 config=$demo/offsite.yml"

say "6. what is on the remote"
find "$demo/remote" -type f | sed "s|$demo/remote/||" | sort | head -20

say "7. restore the latest snapshot into $pool/restored (chain: full + incremental)"
adhoc offsite_restore "dataset=$pool/data target=$pool/restored identity_file=$demo/identity.txt config=$demo/offsite.yml"

say "8. verify: the restored files are byte-identical"
( cd "$demo/mnt/data" && sha256sum ./* ) > "$demo/original.sha256"
( cd "$demo/mnt/restored" && sha256sum -c "$demo/original.sha256" )
echo
echo "demo finished: backup -> incremental -> restore -> verified identical"
