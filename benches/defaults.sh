#!/usr/bin/env bash
# Measures the defaults: average chunk size and zstd level on the comparison
# inputs (pg_dump-like day 1 and day 2, and the same day 1 with one localized
# edit). Prints MB/s of each backup, repository size after both days, bytes a
# localized edit adds, and how many chunks the index holds.
#   benches/defaults.sh [INPUT_DIR]   (default: the inputs benches/compare.sh generated)
set -euo pipefail
cd "$(dirname "$0")/.."
IN=${1:-/tmp/vault-compare/inputs-200-2}
[ -f "$IN/pg_day1.sql" ] || { echo "no inputs in $IN: run benches/compare.sh first or pass a directory" >&2; exit 2; }
cargo build --release --locked -q -p vault-cli
V="$PWD/target/release/vault"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export VAULT_PASSWORD=defaults VAULT_CACHE_DIR="$W/cache"
# Day 1 with 100 bytes changed in the middle: a localized edit.
python3 - "$IN/pg_day1.sql" "$W/edited.sql" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
m = len(b) // 2
b[m:m + 100] = b"X" * 100
open(sys.argv[2], "wb").write(b)
PY
mb=$(( $(stat -c %s "$IN/pg_day1.sql") / 1000000 ))
echo "| chunk size | zstd | day 1 MB/s | day 2 MB/s | repo MB after 2 days | localized 100-byte edit adds | chunks in index |"
echo "|---|---|---|---|---|---|---|"
run() { # avg level
    local repo="$W/repo-$1-$2"
    "$V" -q -r "$repo" init --chunk-size "$1" --compression="$2"
    local t1 t2 added
    t1=$( { /usr/bin/time -f %e "$V" -q -r "$repo" snapshot --stdin --stdin-name db.sql < "$IN/pg_day1.sql"; } 2>&1 )
    t2=$( { /usr/bin/time -f %e "$V" -q -r "$repo" snapshot --stdin --stdin-name db.sql < "$IN/pg_day2.sql"; } 2>&1 )
    local size; size=$(du -sb "$repo" | cut -f1)
    added=$("$V" -r "$repo" --json snapshot --stdin --stdin-name db.sql < "$W/edited.sql" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["bytes_added"])')
    local chunks; chunks=$("$V" -r "$repo" --json snapshots | python3 -c 'import json,sys; print(sum(s["summary"]["blobs_added"] for s in json.load(sys.stdin)))')
    printf '| %s | %s | %.0f | %.0f | %.1f | %.1f KiB | %s |\n' "$1" "$2" "$(echo "$mb / $t1" | bc -l)" "$(echo "$mb / $t2" | bc -l)" "$(echo "$size / 1000000" | bc -l)" "$(echo "$added / 1024" | bc -l)" "$chunks"
}
[ "${SKIP_CHUNK_SIZES:-}" ] || for avg in 256K 512K 1M 2M 4M; do run "$avg" 3; done
for level in -3 1 3 6; do run 1M "$level"; done
