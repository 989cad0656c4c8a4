#!/usr/bin/env bash
# Installs what ferry, its lab and its tests need on Debian 12, only what is missing, then
# installs the npm dependencies and builds. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=(redis-server redis-tools lxc busybox-static rsync openssh-server openssh-client iputils-arping iproute2 acl attr xfsprogs e2fsprogs criu util-linux procps rdfind jdupes gcc libc6-dev)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# sshd refuses to start without its privilege-separation directory.
mkdir -p /run/sshd

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent

# The change watcher (fanotify): lets a migration's passes skip walking the container's tree.
# Without it every pass after the first walks (correct, slower on trees of many files).
watch_src=apps/worker/native/fswatch.c
watch_bin=apps/worker/native/ferry-fswatch
if [ ! -x "$watch_bin" ] || [ "$watch_src" -nt "$watch_bin" ]; then
  cc -O2 -Wall -o "$watch_bin" "$watch_src" || echo "setup: could not build $watch_bin; passes will walk the tree instead" >&2
fi
# The metadata walk of the default verification, in C (the JavaScript fallback is ~2.5x slower on
# trees of many files, and it runs while the container is frozen).
meta_src=apps/worker/native/treemeta.c
meta_bin=apps/worker/native/ferry-treemeta
if [ ! -x "$meta_bin" ] || [ "$meta_src" -nt "$meta_bin" ]; then
  cc -O2 -Wall -o "$meta_bin" "$meta_src" || echo "setup: could not build $meta_bin; verification walks with find instead" >&2
fi
echo "setup: ready"
