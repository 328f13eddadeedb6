#!/usr/bin/env bash
# The s3rewind story on a local S3 server (moto): seed an incident, scan it
# into a catalog, plan the rewind, review it, apply it, and check that the
# bucket is back to how it was.
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
T=$("$root/.venv/bin/python" "$root/scripts/seed_incident.py" --endpoint-url "$AWS_ENDPOINT_URL" --bucket "$bucket" --expected "$work/expected.json")
echo "the bucket was right at T = $T"

step "s3rewind scan s3://$bucket --prefix hotels/ --prefix cities/ --prefix logos/"
"$bin" scan "s3://$bucket" --prefix hotels/ --prefix cities/ --prefix logos/

step "s3rewind status"
"$bin" status

step "s3rewind plan restore --to $T --name incident"
"$bin" plan restore --to "$T" --name incident

step "s3rewind plan show incident"
"$bin" plan show incident

step "review with SQL: what happens under hotels/?"
"$bin" sql "SELECT action, count(*) AS actions FROM plan_review WHERE plan = 'incident' AND key LIKE 'hotels/%' GROUP BY action"

step "s3rewind apply incident --yes"
"$bin" apply incident --yes

step "is the bucket back to T?"
"$root/.venv/bin/python" "$root/scripts/check_restored.py" --endpoint-url "$AWS_ENDPOINT_URL" --bucket "$bucket" --expected "$work/expected.json"

step "s3rewind status"
"$bin" status
echo
echo "catalog: $S3REWIND_CATALOG (query it with sqlite3; see docs/review.md)"
