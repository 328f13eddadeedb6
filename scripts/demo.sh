#!/usr/bin/env bash
# The s3rewind story on a local S3 server (moto): seed an incident, scan it
# into a catalog, and show what the catalog holds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/demo"
bin="$root/target/debug/s3rewind"
rm -rf "$work" && mkdir -p "$work"

port=$("$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" S3REWIND_CATALOG="$work/catalog.db"
bucket=demo-photos

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "seeding s3://$bucket: three generations of images, then a bad job"
T=$("$root/.venv/bin/python" "$root/scripts/seed_incident.py" --endpoint-url "$AWS_ENDPOINT_URL" --bucket "$bucket")
echo "the bucket was right at T = $T"

step "s3rewind scan s3://$bucket --prefix hotels/ --prefix cities/ --prefix logos/"
"$bin" scan "s3://$bucket" --prefix hotels/ --prefix cities/ --prefix logos/

step "s3rewind status"
"$bin" status

step "what the catalog holds (plain SQL)"
sqlite3 -header -column "$S3REWIND_CATALOG" \
  "SELECT key, version_id, is_latest, last_modified, size FROM objects WHERE key = 'hotels/0000.jpg' ORDER BY seq;" 2>/dev/null \
  || echo "(install sqlite3 to query the catalog by hand)"
echo
echo "catalog: $S3REWIND_CATALOG"
