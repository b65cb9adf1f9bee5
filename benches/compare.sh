#!/usr/bin/env bash
# Side-by-side comparison of vault with restic and borg on the same machine,
# the same inputs and in the same run, encryption on for every tool.
#
#   benches/compare.sh [--mb 400] [--runs 3] [--pct 2] [--work /tmp/vault-compare]
#       [--tools "vault vault-nodelta restic borg-lz4 borg-zstd"] [--inputs "pg rdb tree pgreal rdbreal"]
#       [--pg-scale 20] [--redis-keys 1000000] [--series 0] [--series-scale 5]
#
# Inputs (generated once, cached in the work directory): by gen_inputs.py, a
# pg_dump-like SQL stream with a day-2 variant (PCT% of rows rewritten in place,
# rows appended), a Redis-RDB-like binary stream with PCT% of values changed,
# and a tree of many small and some medium files; by the make_dumps example,
# real output of pg_dump (a pgbench database of --pg-scale with random filler
# text; day 2 updates PCT% of the rows, which PostgreSQL moves to the end of
# the table, and appends history) and of redis-server (`dump.rdb` of
# --redis-keys keys; day 2 changes PCT% of them). `vault-nodelta` is vault
# with `init --no-delta`, to measure what delta compression costs and saves.
# `--series N` also runs N daily pg_dumps (scale --series-scale, PCT% of rows
# changed each day) through every tool and reports repository sizes. For every run, tool and
# input, in alternating order, each tool gets a fresh repository and does:
# backup day 1, backup day 2 (for the tree: unchanged), restore day 2.
# Reported per tool and input (medians over runs): MB/s of each step,
# repository bytes after both days, peak RSS (from /usr/bin/time), and vault's
# ratio to each peer. Installs restic and borg from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

MB=400 RUNS=3 PCT=2 WORK=/tmp/vault-compare TOOLS="vault vault-nodelta restic borg-lz4 borg-zstd"
INPUTS="pg rdb tree pgreal rdbreal" PG_SCALE=20 REDIS_KEYS=1000000 SERIES=0 SERIES_SCALE=5
while [ $# -gt 0 ]; do
    case "$1" in
        --inputs) INPUTS=$2; shift 2 ;;
        --pg-scale) PG_SCALE=$2; shift 2 ;;
        --redis-keys) REDIS_KEYS=$2; shift 2 ;;
        --series) SERIES=$2; shift 2 ;;
        --series-scale) SERIES_SCALE=$2; shift 2 ;;
        --mb) MB=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --pct) PCT=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release --locked -q -p vault-cli
VAULT="$PWD/target/release/vault"
IN="$WORK/inputs-$MB-$PCT"
[ -f "$IN/.done" ] || { python3 benches/gen_inputs.py "$IN" "$MB" "$PCT" && touch "$IN/.done"; }
# Real dumps need PostgreSQL and Redis (scripts/install-test-deps.sh installs them).
make_dumps() { # out-dir days pg-scale redis-keys
    [ -f "$1/.done" ] && return
    cargo run --release --locked -q -p vault-tests --example make_dumps -- "$1" --days "$2" --pg-scale "$3" --redis-keys "$4" --pct "$PCT"
    touch "$1/.done"
}
case " $INPUTS " in *" pgreal "*|*" rdbreal "*)
    REAL="$WORK/real-$PG_SCALE-$REDIS_KEYS-$PCT"; make_dumps "$REAL" 2 "$PG_SCALE" "$REDIS_KEYS"
    for f in "$REAL"/*_day*; do ln -sf "$f" "$IN/"; done ;;
esac
RES="$WORK/results.tsv"
: > "$RES"
export VAULT_PASSWORD=compare RESTIC_PASSWORD=compare BORG_PASSPHRASE=compare
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_CACHE_DIR="$WORK/cache/borg" BORG_CONFIG_DIR="$WORK/cache/borg-config" BORG_SECURITY_DIR="$WORK/cache/borg-sec"
export VAULT_CACHE_DIR="$WORK/cache/vault"

# measure NAME TOOL INPUT STEP BYTES -- command...: appends "tool input step seconds rss_kb bytes"
measure() {
    local tool=$1 input=$2 step=$3 bytes=$4; shift 5
    local t; t=$(mktemp)
    /usr/bin/time -f "%e %M" -o "$t" "$@"
    read -r secs rss < "$t"; rm -f "$t"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$input" "$step" "$secs" "$rss" "$bytes" >> "$RES"
}

size_of() { du -sb "$1" | cut -f1; }

backup() { # tool repo input day
    local tool=$1 repo=$2 input=$3 day=$4 src
    case $input in
        pg) src="$IN/pg_day$day.sql" ;;
        rdb) src="$IN/rdb_day$day.bin" ;;
        tree) src="$IN/tree" ;;
        *) src=$(echo "$IN/${input}_day$day".*) ;;
    esac
    local bytes; bytes=$(stat -L -c %s "$src" 2>/dev/null || size_of "$src")
    [ -d "$src" ] && bytes=$(size_of "$src")
    case $tool in
        vault|vault-nodelta)
            if [ "$input" = tree ]; then measure "$tool" "$input" "backup$day" "$bytes" -- "$VAULT" -q -r "$repo" snapshot "$src"
            else measure "$tool" "$input" "backup$day" "$bytes" -- sh -c "'$VAULT' -q -r '$repo' snapshot --stdin --stdin-name data < '$src'"; fi ;;
        restic)
            if [ "$input" = tree ]; then measure "$tool" "$input" "backup$day" "$bytes" -- restic -q -r "$repo" --cache-dir "$WORK/cache/restic" backup "$src"
            else measure "$tool" "$input" "backup$day" "$bytes" -- sh -c "restic -q -r '$repo' --cache-dir '$WORK/cache/restic' backup --stdin --stdin-filename data < '$src'"; fi ;;
        borg-lz4|borg-zstd)
            local comp=lz4; [ "$tool" = borg-zstd ] && comp=zstd,3
            if [ "$input" = tree ]; then measure "$tool" "$input" "backup$day" "$bytes" -- borg create --compression "$comp" "$repo::day$day" "$src"
            else measure "$tool" "$input" "backup$day" "$bytes" -- sh -c "borg create --compression $comp '$repo::day$day' - < '$src'"; fi ;;
    esac
}

restore() { # tool repo input
    local tool=$1 repo=$2 input=$3 out="$WORK/out"
    rm -rf "$out"; mkdir -p "$out"
    local bytes
    if [ "$input" = tree ]; then bytes=$(size_of "$IN/tree"); else bytes=$(stat -L -c %s "$IN/${input}_day2."*); fi
    case $tool in
        vault|vault-nodelta)
            if [ "$input" = tree ]; then measure "$tool" "$input" restore "$bytes" -- "$VAULT" -q -r "$repo" restore latest --target "$out"
            else measure "$tool" "$input" restore "$bytes" -- sh -c "'$VAULT' -r '$repo' dump latest data > '$out/data'"; fi ;;
        restic)
            if [ "$input" = tree ]; then measure "$tool" "$input" restore "$bytes" -- restic -q -r "$repo" --cache-dir "$WORK/cache/restic" restore latest --target "$out"
            else measure "$tool" "$input" restore "$bytes" -- sh -c "restic -q -r '$repo' --cache-dir '$WORK/cache/restic' dump latest data > '$out/data'"; fi ;;
        borg-*)
            if [ "$input" = tree ]; then measure "$tool" "$input" restore "$bytes" -- sh -c "cd '$out' && borg extract '$repo::day2'"
            else measure "$tool" "$input" restore "$bytes" -- sh -c "borg extract --stdout '$repo::day2' > '$out/data'"; fi ;;
    esac
    # Every tool must give back what it was given.
    if [ "$input" = tree ]; then diff -rq "$IN/tree" "$out$IN/tree" >/dev/null 2>&1 || diff -rq "$IN/tree" "$out/${IN#/}/tree" >/dev/null 2>&1 || diff -rq "$IN/tree" "$out/tree" >/dev/null || { echo "$tool restored a different tree" >&2; exit 1; }
    else cmp -s "$out/data" "$IN/${input}_day2."*  || { echo "$tool restored different bytes for $input" >&2; exit 1; }; fi
}

init() { # tool repo
    case $1 in
        vault) "$VAULT" -q -r "$2" init ;;
        vault-nodelta) "$VAULT" -q -r "$2" init --no-delta ;;
        restic) restic -q -r "$2" init >/dev/null ;;
        borg-*) borg init -e repokey-blake2 "$2" ;;
    esac
}

for run in $(seq 1 "$RUNS"); do
    for input in $INPUTS; do
        for tool in $TOOLS; do
            repo="$WORK/repo-$tool"
            rm -rf "$repo" "$WORK/cache"; mkdir -p "$WORK/cache"
            init "$tool" "$repo"
            backup "$tool" "$repo" "$input" 1
            printf '%s\t%s\t%s\t0\t0\t%s\n' "$tool" "$input" repo1 "$(size_of "$repo")" >> "$RES"
            if [ "$input" = tree ]; then backup "$tool" "$repo" tree 2; else backup "$tool" "$repo" "$input" 2; fi
            printf '%s\t%s\t%s\t0\t0\t%s\n' "$tool" "$input" repo "$(size_of "$repo")" >> "$RES"
            restore "$tool" "$repo" "$input"
            echo "run $run/$RUNS: $tool $input done" >&2
        done
        # Rotate the order so no tool always runs first.
        TOOLS="$(echo $TOOLS | awk '{for (i = 2; i <= NF; i++) printf "%s ", $i; print $1}')"
    done
done
rm -rf "$WORK/out" "$WORK"/repo-* "$WORK/cache"

# A series of daily dumps: repository size after every day, per tool.
if [ "$SERIES" -gt 0 ]; then
    SER="$WORK/series-$SERIES-$SERIES_SCALE-$PCT"; make_dumps "$SER" "$SERIES" "$SERIES_SCALE" 0
    for tool in $TOOLS; do
        repo="$WORK/repo-$tool"
        rm -rf "$repo" "$WORK/cache"; mkdir -p "$WORK/cache"
        init "$tool" "$repo"
        for day in $(seq 1 "$SERIES"); do
            ln -sf "$SER/pgreal_day$day.sql" "$IN/series_day$day.sql"
            backup "$tool" "$repo" series "$day"
            printf '%s\t%s\t%s\t0\t0\t%s\n' "$tool" series "day$day" "$(size_of "$repo")" >> "$RES"
        done
        echo "series: $tool done" >&2
        rm -rf "$repo"
    done
    rm -f "$IN"/series_day*
    rm -rf "$WORK/cache"
fi

python3 - "$RES" "$MB" "$RUNS" <<'PY'
import collections, statistics, sys, subprocess
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
data = collections.defaultdict(list)
for tool, inp, step, secs, rss, nbytes in rows:
    data[(tool, inp, step)].append((float(secs), int(rss), int(nbytes)))
tools = list(dict.fromkeys(r[0] for r in rows))
cpu = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
print(f"Machine: {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; inputs {sys.argv[2]} MB; medians of {sys.argv[3]} interleaved runs\n")
def mbps(t, i, s):
    v = data.get((t, i, s))
    return statistics.median(b / 1e6 / max(sec, 1e-3) for sec, _, b in v) if v else None
def rss(t, i):
    v = [r for s in ("backup1", "backup2", "restore") for _, r, _ in data.get((t, i, s), [])]
    return max(v) / 1024 if v else None
def repo(t, i):
    v = data.get((t, i, "repo"))
    return statistics.median(b for _, _, b in v) / 1e6 if v else None
def repo1(t, i):
    v = data.get((t, i, "repo1"))
    return statistics.median(b for _, _, b in v) / 1e6 if v else None
def increment(t, i):
    a, b = repo1(t, i), repo(t, i)
    return b - a if a is not None and b is not None else None
labels = {"pg": "pg_dump-like SQL", "rdb": "RDB-like binary", "tree": "tree of small files",
          "pgreal": "real pg_dump (pgbench, random filler)", "rdbreal": "real redis-server dump.rdb"}
inputs = [i for i in labels if any(k[1] == i for k in data)]
for inp in inputs:
    print(f"### {labels[inp]}\n")
    print("| tool | backup day 1 MB/s | backup day 2 MB/s | restore MB/s | repo MB after day 1 | day-2 increment MB | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for t in tools:
        f = lambda v, fmt="{:.0f}": fmt.format(v) if v is not None else "-"
        print(f"| {t} | {f(mbps(t, inp, 'backup1'))} | {f(mbps(t, inp, 'backup2'))} | {f(mbps(t, inp, 'restore'))} | {f(repo1(t, inp), '{:.1f}')} | {f(increment(t, inp), '{:.2f}')} | {f(rss(t, inp))} |")
    if "vault" in tools:
        print()
        for t in tools:
            if t == "vault":
                continue
            def ratio(s):
                a, b = mbps("vault", inp, s), mbps(t, inp, s)
                return f"{a / b:.2f}x" if a and b else "-"
            r = repo("vault", inp) / repo(t, inp) if repo(t, inp) else 0
            a, b = increment("vault", inp), increment(t, inp)
            inc = f"{a / b:.3f}x" if a is not None and b else "-"
            print(f"- vault vs {t}: backup day 1 {ratio('backup1')}, day 2 {ratio('backup2')}, restore {ratio('restore')}, repository size {r:.2f}x, day-2 increment {inc}")
    print()
days = sorted({int(k[2][3:]) for k in data if k[1] == "series" and k[2].startswith("day")})
if days:
    print(f"### {days[-1]} daily real pg_dumps\n")
    print("| tool | repo MB after day 1 | after day " + str(days[-1]) + " | mean daily increment MB |")
    print("|---|---|---|---|")
    for t in tools:
        first = data.get((t, "series", "day1"))
        last = data.get((t, "series", f"day{days[-1]}"))
        if first and last:
            a, b = first[0][2] / 1e6, last[0][2] / 1e6
            print(f"| {t} | {a:.1f} | {b:.1f} | {(b - a) / max(len(days) - 1, 1):.2f} |")
    print()
PY
