#!/usr/bin/env bash
# Builds the docker image the tests run, `meso-test/busybox:latest`, without a
# registry: a root filesystem of /bin/busybox (busybox-static) and one symlink
# per applet (sh, sleep, httpd, echo, cat, env, ...), fed to `docker import`.
# Does nothing when the image already exists; `--force` rebuilds it.
set -euo pipefail

IMAGE=meso-test/busybox:latest
BUSYBOX=${BUSYBOX:-/bin/busybox}

if [ "${1:-}" != "--force" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
[ -x "$BUSYBOX" ] || { echo "error: $BUSYBOX not found; install busybox-static" >&2; exit 1; }
# A dynamically linked busybox would need its libc inside the image too.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "error: $BUSYBOX is dynamically linked; the image needs busybox-static" >&2
  exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/www"
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
  docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
echo "built $IMAGE" >&2
