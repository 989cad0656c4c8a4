#!/usr/bin/env bash
# Installs what ferry, its lab and its tests need on Debian 12, only what is missing, then
# installs the npm dependencies and builds. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the dashboard's tests open it in a headless browser (puppeteer-core drives /usr/bin/chromium).
# redis-sentinel: the redis tier's Sentinel failover test.
need_pkgs=(redis-server redis-tools redis-sentinel lxc busybox-static rsync openssh-server openssh-client iputils-arping iproute2 nftables acl attr xfsprogs e2fsprogs criu util-linux procps rdfind jdupes gcc libc6-dev chromium)
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

# `ferry` on PATH: a link $FERRY_BIN_DIR/ferry (default /usr/local/bin) to scripts/ferry, which runs
# this checkout's build. Made again only when it points elsewhere; a `ferry` there that is not a
# link is left alone.
ferry_bin_dir=${FERRY_BIN_DIR:-/usr/local/bin}
ferry_link="$ferry_bin_dir/ferry"
ferry_launcher="$PWD/scripts/ferry"
if [ "$(readlink "$ferry_link" 2>/dev/null)" != "$ferry_launcher" ]; then
  if [ -e "$ferry_link" ] && [ ! -L "$ferry_link" ]; then
    echo "setup: $ferry_link exists and is not a link; left as it is (this checkout's ferry: $ferry_launcher)" >&2
  elif mkdir -p "$ferry_bin_dir" 2>/dev/null && ln -sfn "$ferry_launcher" "$ferry_link" 2>/dev/null; then
    echo "setup: ferry is on PATH: $ferry_link -> $ferry_launcher"
  else
    echo "setup: could not link $ferry_link (run as root, or set FERRY_BIN_DIR); this checkout's ferry: $ferry_launcher" >&2
  fi
fi

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

# The lab's in-memory service (what live migration keeps), static so it runs in busybox containers.
memsvc_src=apps/lab/native/memsvc.c
memsvc_bin=apps/lab/native/ferry-memsvc
if [ ! -x "$memsvc_bin" ] || [ "$memsvc_src" -nt "$memsvc_bin" ]; then
  cc -O2 -Wall -static -o "$memsvc_bin" "$memsvc_src" || echo "setup: could not build $memsvc_bin; lab containers with --memory-mb are unavailable" >&2
fi

# CRIU, for live migration (checkpoint/restore). Debian 12's criu (3.17) fails `criu check` on
# recent kernels; it is left as installed. A working CRIU is, in this order: ferry's private build
# (/usr/local/lib/ferry/criu/sbin/criu), a system criu that passes `criu check` (kept as it is),
# or one built here from the source tarball named by FERRY_CRIU_SRC (its sha256 in
# "<tarball>.sha256" beside it) into that private prefix. The worker runs the private build when
# it exists (FERRY_CRIU overrides), and offers live mode only with FERRY_LIVE=1 (see the README).
# Where none works, one line says why and live migration stays unavailable; the rest goes on.
criu_prefix=/usr/local/lib/ferry/criu
criu_bin=$criu_prefix/sbin/criu
criu_log=/usr/local/lib/ferry/criu-build.log
criu_deps=(libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libnl-3-dev libnet1-dev libcap-dev pkg-config make gcc iptables)
# First real error of `criu check` (empty when it passes).
criu_why() {
  "$1" check 2>&1 | sed -n 's/^Error ([^)]*): *//p' | grep -v '^exited, status=' | head -n 1 || true
}
criu_ok() { "$1" check >/dev/null 2>&1; }
criu_version() { "$1" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n 1; }
setup_criu() {
  if [ -x "$criu_bin" ] && criu_ok "$criu_bin"; then
    echo "setup: CRIU $(criu_version "$criu_bin") at $criu_bin passes criu check"
    return 0
  fi
  local sys sys_why
  sys=$(command -v criu || true)
  if [ -n "$sys" ] && criu_ok "$sys"; then
    echo "setup: CRIU $(criu_version "$sys") at $sys (system) passes criu check; kept"
    return 0
  fi
  if [ -n "$sys" ]; then
    sys_why="system $sys $(criu_version "$sys") fails criu check: $(criu_why "$sys")"
  else
    sys_why="no criu installed"
  fi
  local src=${FERRY_CRIU_SRC:-}
  if [ -z "$src" ]; then
    echo "setup: no working CRIU ($sys_why; set FERRY_CRIU_SRC to a CRIU source tarball to build one): live migration unavailable"
    return 0
  fi
  if [ ! -f "$src" ] || [ ! -f "$src.sha256" ]; then
    echo "setup: no working CRIU ($sys_why; FERRY_CRIU_SRC=$src: tarball or its $src.sha256 missing): live migration unavailable"
    return 0
  fi
  local want got
  want=$(awk 'NR == 1 { print $1 }' "$src.sha256")
  got=$(sha256sum <"$src" | awk '{ print $1 }')
  if [ "$want" != "$got" ]; then
    echo "setup: $src does not match its checksum ($got, expected $want in $src.sha256); refusing to build it" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: no working CRIU ($sys_why; building one from $src needs root): live migration unavailable"
    return 0
  fi
  local p missing_deps=()
  for p in "${criu_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing_deps+=("$p")
  done
  if ((${#missing_deps[@]})); then
    echo "setup: installing CRIU build dependencies: ${missing_deps[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_deps[@]}" >/dev/null
  fi
  local start=$SECONDS work
  mkdir -p "$(dirname "$criu_log")"
  work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-criu-build.XXXXXX")
  # && throughout: errexit does not apply inside a command list tested by `if`.
  if mkdir "$work/src" && tar xzf "$src" -C "$work/src" --strip-components=1 &&
    make -C "$work/src" -j2 criu >"$criu_log" 2>&1 &&
    make -C "$work/src" install-criu PREFIX="$criu_prefix" >>"$criu_log" 2>&1; then
    rm -rf "$work"
  else
    rm -rf "$work"
    echo "setup: no working CRIU ($sys_why; building $(basename "$src") failed, see $criu_log): live migration unavailable"
    return 0
  fi
  if criu_ok "$criu_bin"; then
    echo "setup: CRIU $(criu_version "$criu_bin") built from $(basename "$src") into $criu_prefix in $((SECONDS - start)) s; passes criu check"
  else
    echo "setup: no working CRIU (built $(basename "$src") into $criu_prefix, but it fails criu check: $(criu_why "$criu_bin")): live migration unavailable"
  fi
}
setup_criu
echo "setup: ready"
