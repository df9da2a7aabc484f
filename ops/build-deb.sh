#!/usr/bin/env bash
# Builds hocvu_<version>-<revision>_<arch>.deb with dpkg-deb: the binary (stripped; the Swift runtime
# and the commune list are inside it), both systemd units, example configuration, the docs, a manual
# page, copyright, changelog.Debian.gz, md5sums and lintian overrides. Maintainer scripts in ops/debian
# create the user, directories and keys, restart running services on upgrade, stop them on removal,
# and keep data and keys on purge. Depends comes from dpkg-shlibdeps (package dpkg-dev).
# Usage: ops/build-deb.sh [OUTDIR]   HOCVU=path to a built binary (default .build-release/release/hocvu,
# else .build/release/hocvu); HOCVU_DEB_REVISION=N builds <version>-N with a changelog entry of its own
# (tests of upgrades), otherwise the revision is the one at the top of ops/debian/changelog.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022
bin=${HOCVU:-}
if [ -z "$bin" ]; then
  bin=.build-release/release/hocvu; [ -x "$bin" ] || bin=.build/release/hocvu
fi
build="swift build -c release --product hocvu --static-swift-stdlib --scratch-path .build-release"
[ -x "$bin" ] || { echo "build first: $build" >&2; exit 1; }
# A commune PC has no Swift toolchain: the Swift runtime must be inside the binary.
if ldd "$bin" | grep -q libswiftCore; then
  echo "$bin links the Swift runtime dynamically; build with: $build" >&2
  exit 1
fi
command -v dpkg-shlibdeps > /dev/null || { echo "needs dpkg-shlibdeps: apt-get install dpkg-dev" >&2; exit 1; }
out=${1:-.}
upstream=$("$bin" --version)
top=$(sed -n '1s/^hocvu (\([^)]*\)).*/\1/p' ops/debian/changelog)
if [ -n "${HOCVU_DEB_REVISION:-}" ]; then
  version="$upstream-$HOCVU_DEB_REVISION"
else
  version=$top
  [ "${version%-*}" = "$upstream" ] || {
    echo "ops/debian/changelog starts at $top but the binary is $upstream: add an entry for $upstream-1" >&2; exit 1; }
fi
arch=$(dpkg --print-architecture)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root=$work/root
install -d -m 0755 "$root"
install -D -m 0755 "$bin" "$root/usr/bin/hocvu"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/hocvu"
install -D -m 0644 ops/systemd/hocvu-site.service "$root/lib/systemd/system/hocvu-site.service"
install -D -m 0644 ops/systemd/hocvu-hub.service "$root/lib/systemd/system/hocvu-hub.service"
install -D -m 0644 config/site.toml "$root/usr/share/hocvu/config/site.toml"
install -D -m 0644 config/hub.toml "$root/usr/share/hocvu/config/hub.toml"
doc=$root/usr/share/doc/hocvu
for f in README.md docs/*.md; do install -D -m 0644 "$f" "$doc/$(basename "$f")"; done
install -m 0644 ops/debian/copyright "$doc/copyright"
{
  if [ "$version" != "$top" ]; then
    printf 'hocvu (%s) bookworm; urgency=medium\n\n  * Rebuild of %s as revision %s.\n\n -- hocvu team <hocvu@example.vn>  %s\n\n' \
      "$version" "$upstream" "${version##*-}" "$(date -R)"
  fi
  cat ops/debian/changelog
} | gzip -9n > "$doc/changelog.Debian.gz"
install -d -m 0755 "$root/usr/share/man/man1"
gzip -9n < ops/debian/hocvu.1 > "$root/usr/share/man/man1/hocvu.1.gz"
install -D -m 0644 ops/debian/lintian-overrides "$root/usr/share/lintian/overrides/hocvu"
chmod 0644 "$doc/changelog.Debian.gz" "$root/usr/share/man/man1/hocvu.1.gz"

# Depends: the shared libraries the binary needs, as Debian's shlibs name them.
mkdir -p "$work/src/debian"
printf 'Source: hocvu\n\nPackage: hocvu\nArchitecture: any\n' > "$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -e "$root/usr/bin/hocvu" 2> /dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "dpkg-shlibdeps found no dependencies for $bin" >&2; exit 1; }

install -d -m 0755 "$root/DEBIAN"
install -m 0755 ops/debian/postinst ops/debian/prerm ops/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
cat > "$root/DEBIAN/control" <<CONTROL
Package: hocvu
Version: $version
Architecture: $arch
Maintainer: hocvu team <hocvu@example.vn>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $shlibs, adduser
Section: net
Priority: optional
Description: offline-first sync for the "Binh dan hoc vu so" programme
 A site daemon at each commune office keeps the curriculum and learners'
 results in SQLite and replicates with the national hub over ZeroMQ (CURVE),
 merging with CRDT rules; admins publish signed curriculum releases. Runs as
 the systemd services hocvu-site or hocvu-hub.
CONTROL
deb="$out/hocvu_${version}_${arch}.deb"
# HOCVU_DEB_ZOPTS: other dpkg-deb compression options (ops/package-test.sh's throwaway upgrade package).
# shellcheck disable=SC2086
dpkg-deb --root-owner-group ${HOCVU_DEB_ZOPTS:--Zxz --threads-max=$(nproc)} --build "$root" "$deb" > /dev/null
echo "$deb"
