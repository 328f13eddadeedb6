#!/usr/bin/env python3
"""Seeds a versioned bucket with a small "incident" for the demo.

Before T: hotels/, cities/ and logos/ images, several versions each.
After T (the mistake): a job overwrites hotel images, deletes city images,
deletes and re-uploads some logos, and writes keys that did not exist.
Prints T (RFC 3339, UTC) on stdout.
"""
import argparse
import datetime
import json
import time

import boto3


def next_second(t: int) -> None:
    while int(time.time()) <= t:
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--keys", type=int, default=20, help="keys per prefix")
    parser.add_argument("--expected", help="write the state at T here (JSON: key -> content)")
    args = parser.parse_args()

    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    s3.create_bucket(Bucket=args.bucket)
    s3.put_bucket_versioning(Bucket=args.bucket, VersioningConfiguration={"Status": "Enabled"})

    state = {}

    def put(key: str, body: str) -> None:
        s3.put_object(Bucket=args.bucket, Key=key, Body=body.encode())
        state[key] = body

    n = args.keys
    for generation in range(3):
        for i in range(n):
            put(f"hotels/{i:04d}.jpg", f"hotel {i} v{generation}")
            put(f"cities/{i:04d}.jpg", f"city {i} v{generation}")
        for i in range(n // 4):
            put(f"logos/{i:04d}.png", f"logo {i} v{generation}")

    # LastModified has one-second resolution: T is a whole second, and the
    # incident starts in the next one.
    t = int(time.time())
    at_t = dict(state)
    next_second(t)

    for i in range(0, n, 2):
        put(f"hotels/{i:04d}.jpg", "OVERWRITTEN BY MISTAKE")
    for i in range(0, n, 3):
        s3.delete_object(Bucket=args.bucket, Key=f"cities/{i:04d}.jpg")
    for i in range(n // 4):
        s3.delete_object(Bucket=args.bucket, Key=f"logos/{i:04d}.png")
    # moto cannot order a delete marker and a version of one second.
    next_second(int(time.time()))
    for i in range(n // 4):
        put(f"logos/{i:04d}.png", "RE-UPLOADED WRONG LOGO")
    for i in range(n // 2):
        put(f"hotels/new-{i:04d}.jpg", "SHOULD NOT EXIST")

    if args.expected:
        with open(args.expected, "w") as f:
            json.dump({k: at_t.get(k) for k in sorted(set(state) | set(at_t))}, f, indent=1)
    print(datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


if __name__ == "__main__":
    main()
