# Sourced by scripts/test.sh and scripts/bench/lib.sh: installs what they need
# when it is missing, and starts the Docker engine. The caller defines
# `log MESSAGE`.

# Installs the Debian packages that are missing; `apt-get update` only when
# the install fails without it.
apt_install() { # PACKAGE...
  local missing=() pkg sudo=""
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (Debian)"
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; } ||
    { echo "error: could not install ${missing[*]} with apt-get" >&2; return 1; }
}

# A running Docker engine and the local test image (no registry is assumed
# reachable: scripts/test-image.sh imports it).
docker_ready() {
  apt_install docker.io busybox-static || return 1
  if ! docker info >/dev/null 2>&1; then
    local sudo="" dlog=/tmp/meso-test-dockerd.log
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    if [ -d /run/systemd/system ]; then
      log "starting docker (systemd)"
      $sudo systemctl start docker
    else
      # No init system (a container, a CI VM): run the daemon by hand, in its
      # own session so that it outlives the caller; its log stays for a look.
      log "starting dockerd (log: $dlog)"
      $sudo setsid nohup dockerd >"$dlog" 2>&1 </dev/null &
    fi
    local waited=0
    until docker info >/dev/null 2>&1; do
      if [ "$waited" -ge 30 ]; then
        echo "error: the docker engine did not come up within 30 s; see $dlog" >&2
        tail -n 20 "$dlog" >&2 2>/dev/null || true
        return 1
      fi
      sleep 1
      waited=$((waited + 1))
    done
  fi
  bash "$(dirname "${BASH_SOURCE[0]}")/test-image.sh"
}
