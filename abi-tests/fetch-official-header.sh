#!/usr/bin/env bash
# Fetches the official FUSE 7.46 uapi header (Linux 7.3's include/uapi/linux/fuse.h, shipped in
# Debian's linux-libc-dev 7.3~rc7-1~exp1 from experimental) into
# target/official-headers/7.46/linux/fuse.h, where abi-tests' build script looks for it.
#
# The machine's apt configuration is not touched: a private sources list, state and cache
# directory under target/, then `apt-get download` and `dpkg-deb -x`. Needs network access to
# deb.debian.org; about 2 MB. Idempotent: does nothing when the header is already there.
set -euo pipefail

VERSION="7.3~rc7-1~exp1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/target/official-headers/7.46"
HEADER="$DEST/linux/fuse.h"
if [[ -f "$HEADER" ]]; then
    echo "official header present: $HEADER"
    exit 0
fi
APT="$ROOT/target/official-headers/apt"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$DEST/linux"
echo "deb http://deb.debian.org/debian experimental main" > "$APT/sources.list"
OPTS=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o "Dir::Etc::sourceparts=-"
      -o "Dir::State::lists=$APT/lists" -o "Dir::Cache::archives=$APT/archives"
      -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Architecture=amd64"
      -o "Debug::NoLocking=1")
apt-get "${OPTS[@]}" -qq update
(cd "$APT" && apt-get "${OPTS[@]}" -qq download "linux-libc-dev=$VERSION" 2>&1 | grep -v "unsandboxed" || true)
DEB="$(ls "$APT"/linux-libc-dev_*.deb)"
rm -rf "$APT/root"
dpkg-deb -x "$DEB" "$APT/root"
cp "$APT/root/usr/include/linux/fuse.h" "$HEADER"
grep -q '#define FUSE_KERNEL_MINOR_VERSION 46' "$HEADER" || {
    echo "error: $HEADER is not protocol 7.46" >&2
    exit 1
}
echo "fetched $(basename "$DEB"): $HEADER (sha256 $(sha256sum "$HEADER" | cut -d' ' -f1))"
