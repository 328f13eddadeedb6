#!/usr/bin/env python3
"""Checks that a bucket is back to the state recorded by seed_incident.py:
every key that existed at T has its content of T, and every key that did not
is hidden (GET answers 404). Exits 1 and names the keys that differ."""
import argparse
import json
import sys

import boto3
from botocore.exceptions import ClientError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--expected", required=True)
    args = parser.parse_args()
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    expected = json.load(open(args.expected))
    wrong = []
    for key, content in expected.items():
        try:
            now = s3.get_object(Bucket=args.bucket, Key=key)["Body"].read().decode()
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("NoSuchKey", "404"):
                raise
            now = None
        if now != content:
            wrong.append(f"{key}: expected {content!r}, found {now!r}")
    if wrong:
        print(f"{len(wrong)} of {len(expected)} keys are not as they were at T:")
        print("\n".join("  " + w for w in wrong[:20]))
        sys.exit(1)
    live = sum(1 for c in expected.values() if c is not None)
    print(f"the bucket is back: all {len(expected)} keys are as they were at T "
          f"({live} with their content of then, {len(expected) - live} hidden again)")


if __name__ == "__main__":
    main()
