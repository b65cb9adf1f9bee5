#!/usr/bin/env bash
# Quick start: builds vault, then backs up a sample directory and a generated
# SQL stream into a new local repository, restores both and checks that every
# byte came back. Everything happens in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building vault"
cargo build --quiet --locked -p vault-cli
vault="$PWD/target/debug/vault"

work=$(mktemp -d "${TMPDIR:-/tmp}/vault-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export VAULT_REPOSITORY="$work/repo"
export VAULT_CACHE_DIR="$work/cache"
export VAULT_PASSWORD="demo password, keep it safe"

run() { echo; echo "\$ vault $*"; "$vault" "$@"; }

mkdir -p "$work/sample"
cp -r README.md docs crates/core/src "$work/sample/"
ln -s README.md "$work/sample/link-to-readme"
seq 1 300000 | awk '{ printf "INSERT INTO accounts VALUES (%d, %d, '"'"'customer %d'"'"');\n", $1, $1 * 7 % 1000, $1 }' > "$work/db.sql"

run init
run snapshot "$work/sample" --tag config
echo; echo "\$ vault snapshot --stdin --stdin-name db.sql < db.sql"
"$vault" snapshot --stdin --stdin-name db.sql --tag postgres < "$work/db.sql"
run snapshot --command "cat $work/db.sql" --stdin-name db.sql --tag postgres
run snapshots
run restore latest --tag config --target "$work/restored"
diff -r "$work/sample" "$work/restored$work/sample"
echo; echo "\$ vault dump latest db.sql --tag postgres | cmp - db.sql"
"$vault" dump latest db.sql --tag postgres | cmp - "$work/db.sql"
echo
echo "==> the directory and the stream were restored byte for byte"
