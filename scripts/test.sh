#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a developer's: installs what
# the tests need when it is missing, builds the release binary, runs every test.
# CI runs exactly this (.ci/run). Keep it under 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# shellcheck source=scripts/ready.sh
source scripts/ready.sh

python_ready() {
  # The Marathon API is tested through the real Python client `marathon`.
  if ! command -v python3 >/dev/null; then
    apt_install python3 python3-pip
  fi
  if ! python3 -c 'import marathon' >/dev/null 2>&1; then
    log "installing the Python client marathon==0.13.0"
    python3 -m pip install -q marathon==0.13.0 2>/dev/null ||
      python3 -m pip install -q --break-system-packages marathon==0.13.0
  fi
}

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
# procps for pkill/kill; openssl for the HTTPS health check's certificate;
# docker for the docker containerizer's tests; dig for the README quickstart's.
apt_install procps openssl bind9-dnsutils
docker_ready
python_ready

log "cargo fmt --check"
cargo fmt --all -- --check

log "building (release)"
cargo build --release --all-targets --locked 2>&1 | tail -n 3

log "running the tests"
# Integration tests start real meso processes; they pick their own loopback
# addresses, so test binaries run in parallel safely.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test --release --locked --no-fail-fast 2>&1 | tee "$out" || status=$?
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$out"
exit "$status"
