#!/usr/bin/env bash
# The end-to-end suites once more against moto, a second S3 implementation
# (Python): a local virtualenv `.venv/` with moto is made if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/moto_server ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi
.venv/bin/python scripts/moto_key_marker.py
S3REWIND_TEST_SERVER=moto cargo test -j2 --test scan --test plan --test apply --test replan
