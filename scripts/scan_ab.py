#!/usr/bin/env python3
"""Compares s3rewind binaries on the same s3sim bucket, runs interleaved so
that the machine's drift hits them alike; prints median wall and CPU.

  .venv-bench/bin/python scripts/scan_ab.py PREFIXES BINARY [BINARY ...]

1,000,000 versions, 0 ms latency, PREFIXES prefixes (1 lists the whole bucket
as one), 4 rounds. Copy target/release/s3rewind aside to keep a version.
"""
import statistics
import sys

from bench import WORK, Sim, run, shutil

prefixes, binaries = int(sys.argv[1]), sys.argv[2:]
results = {b: [] for b in binaries}
try:
    with Sim("big", 500_000, prefixes=prefixes, latency_ms=0) as sim:
        for _ in range(4):
            for b in binaries:
                for p in WORK.glob("ab.db*"):
                    p.unlink()
                cmd = [b, "--catalog", WORK / "ab.db", "--endpoint-url", sim.endpoint, "scan", "s3://big"]
                if prefixes > 1:
                    cmd += ["--prefixes", sim.prefix_file]
                before = sim.cpu()
                r = run(cmd)
                results[b].append((r.seconds, r.cpu, sim.cpu() - before, r.rss_kb / 1024))
    for b, rs in results.items():
        med = lambda i: statistics.median(x[i] for x in rs)
        print(f"{b}: wall {med(0):.2f} s, s3rewind CPU {med(1):.2f} s, s3sim CPU {med(2):.2f} s, "
              f"peak RSS {max(x[3] for x in rs):.0f} MiB; walls {[round(x[0], 2) for x in rs]}")
finally:
    shutil.rmtree(WORK, ignore_errors=True)
