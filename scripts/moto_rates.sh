#!/bin/bash
# Rates of scan and apply against moto, the S3 server the test suite runs on
# (`just setup` installs it). Small buckets: moto answers one request at a
# time and copies and sorts the whole bucket for every listing page, so its
# figures say how moto behaves, not how s3rewind does; `just bench` measures
# s3rewind against s3sim.
#   usage: scripts/moto_rates.sh      (after `just setup` and a release build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cd "$WORK"
PORT=${MOTO_PORT:-5077}
"$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$PORT" > moto.log 2>&1 &
MP=$!
trap 'kill $MP; rm -rf "$WORK"' EXIT
until curl -s "http://127.0.0.1:$PORT" > /dev/null; do sleep 0.2; done
export AWS_ACCESS_KEY_ID=t AWS_SECRET_ACCESS_KEY=t AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
T=$("$ROOT/.venv/bin/python" - <<'PY'
import boto3, time, datetime
from concurrent.futures import ThreadPoolExecutor
s3 = boto3.client("s3")
for b in ("copies", "deletes"):
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
def put(args):
    b, k, body = args
    s3.put_object(Bucket=b, Key=k, Body=body)
with ThreadPoolExecutor(8) as ex:
    list(ex.map(put, [("deletes", f"p{i%8}/k{i:05d}", b"v1") for i in range(2500)]))
    list(ex.map(put, [("deletes", f"p{i%8}/k{i:05d}", b"v2") for i in range(2500)]))
    list(ex.map(put, [("copies", f"p{i%8}/k{i:05d}", b"good") for i in range(1000)]))
t = int(time.time())
while int(time.time()) <= t: time.sleep(0.05)
with ThreadPoolExecutor(8) as ex:
    list(ex.map(put, [("copies", f"p{i%8}/k{i:05d}", b"bad") for i in range(1000)]))
print(datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
PY
)
R="$ROOT/target/release/s3rewind"
printf 'p%d/\n' 0 1 2 3 4 5 6 7 > prefixes.txt
echo "# 5,000 versions, 8 prefixes, pages of 1000 and then of 100"
$R --catalog d.db scan s3://deletes --prefixes prefixes.txt
$R --catalog d.db scan s3://deletes --prefixes prefixes.txt --fresh --yes --page-size 100
$R --catalog d.db plan expire --noncurrent-older-than 0s --as-of 2030-01-01 --name e | head -1
echo "# 2,500 noncurrent versions deleted"
$R --catalog d.db apply e --yes | tail -1
echo "# 1,000 keys restored by CopyObject"
$R --catalog c.db scan s3://copies --prefixes prefixes.txt
$R --catalog c.db plan restore --to $T --name r | head -1
$R --catalog c.db apply r --yes | tail -1
