#!/usr/bin/env bash
# Installs what the end-to-end tests need from Debian's packages: PostgreSQL
# (initdb, pg_ctl, pgbench, pg_dump) and redis-server. Idempotent; needs root
# (or sudo) when something is missing.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)

if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The S3 tests run against moto's server mode on 127.0.0.1, from PyPI, in a
# virtualenv inside the checkout (git-ignored).
venv="$(cd "$(dirname "$0")/.." && pwd)/.venv-moto"
if [ ! -x "$venv/bin/moto_server" ]; then
    echo "installing moto (S3 test server) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[s3]==5.2.5" flask flask-cors
fi
echo "test dependencies present: $venv/bin/moto_server, \
$(ls -d /usr/lib/postgresql/*/bin | tail -1), $(redis-server --version | cut -d' ' -f1-3)"
