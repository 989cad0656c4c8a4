#!/usr/bin/env bash
# Installs what ferry, its lab and its tests need on Debian 12, only what is missing, then
# installs the npm dependencies and builds. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=(redis-server redis-tools lxc busybox-static rsync openssh-server openssh-client iputils-arping iproute2 acl attr xfsprogs e2fsprogs criu util-linux procps rdfind jdupes)
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
echo "setup: ready"
