#!/usr/bin/env bash
# The whole test suite: installs the database servers the end-to-end tests
# start privately on 127.0.0.1, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --workspace --locked "$@"
