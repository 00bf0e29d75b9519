#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a developer's: installs what
# the tests need when it is missing, builds the release binary, runs every test.
# CI runs exactly this (.ci/run). Keep it under 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

apt_install() {
  # Install Debian packages that are missing; `apt-get update` only when needed.
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q "${missing[@]}" >/dev/null
  }
}

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
# The tests need only the toolchain and procps (pkill/kill) today; later roles add
# docker.io and friends here.
apt_install procps

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
