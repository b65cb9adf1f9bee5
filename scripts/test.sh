#!/usr/bin/env bash
# The whole test suite: installs the database servers and the S3 server the
# end-to-end tests start privately on 127.0.0.1, then runs every test of the
# workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
export VAULT_MOTO_SERVER="$PWD/.venv-moto/bin/moto_server"
cargo test --workspace --locked "$@"
