#!/usr/bin/env bash
# Builds hocvu_<version>_<arch>.deb with dpkg-deb: the binary, both systemd units, example
# configuration and the docs; maintainer scripts in ops/debian create the user, directories and keys
# and stop the services on removal. Usage: ops/build-deb.sh [OUTDIR]   (HOCVU=path to a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HOCVU:-.build/release/hocvu}
[ -x "$bin" ] || { echo "build first: swift build -c release --product hocvu --static-swift-stdlib" >&2; exit 1; }
# A commune PC has no Swift toolchain: the Swift runtime must be inside the binary.
if ldd "$bin" | grep -q libswiftCore; then
  echo "$bin links the Swift runtime dynamically; build with: swift build -c release --product hocvu --static-swift-stdlib" >&2
  exit 1
fi
out=${1:-.}
version=$("$bin" --version)
arch=$(dpkg --print-architecture)
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bin" "$root/usr/bin/hocvu"
install -D -m 0644 ops/systemd/hocvu-site.service "$root/lib/systemd/system/hocvu-site.service"
install -D -m 0644 ops/systemd/hocvu-hub.service "$root/lib/systemd/system/hocvu-hub.service"
install -D -m 0644 config/site.toml "$root/usr/share/hocvu/config/site.toml"
install -D -m 0644 config/hub.toml "$root/usr/share/hocvu/config/hub.toml"
for doc in README.md docs/*.md; do install -D -m 0644 "$doc" "$root/usr/share/doc/hocvu/$(basename "$doc")"; done
install -d "$root/DEBIAN"
install -m 0755 ops/debian/postinst ops/debian/prerm ops/debian/postrm "$root/DEBIAN/"
cat > "$root/DEBIAN/control" <<CONTROL
Package: hocvu
Version: $version
Architecture: $arch
Maintainer: hocvu team <hocvu@example.vn>
Depends: libsqlite3-0, libzmq5, libsodium23, adduser
Section: net
Priority: optional
Description: offline-first sync for the "Binh dan hoc vu so" programme
 A site daemon at each commune office keeps the curriculum and learners' results in SQLite and
 replicates with the national hub over ZeroMQ (CURVE), merging with CRDT rules; admins publish
 signed curriculum releases. Runs as the systemd services hocvu-site or hocvu-hub.
CONTROL
dpkg-deb --root-owner-group --build "$root" "$out/hocvu_${version}_${arch}.deb" > /dev/null
echo "$out/hocvu_${version}_${arch}.deb"
