#!/usr/bin/env bash
# Install the Debian packages the integration tests use, once; skip what is installed.
set -u
pkgs=$(grep -v '^#' "$(dirname "$0")/apt-packages.txt" | tr '\n' ' ')
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: cannot install$missing (not root or no apt-get); their tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
# Daemons from these packages must not start on install: tests start their own.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
apt-get install -y -qq --no-install-recommends $missing >/tmp/watcher-apt.log 2>&1 \
  || echo "system-deps: apt-get install failed, see /tmp/watcher-apt.log; their tests will skip" >&2
rm -f /usr/sbin/policy-rc.d
exit 0
