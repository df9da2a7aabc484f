#!/usr/bin/env bash
# Installs hocvu from this checkout as a systemd service: `sudo ops/install.sh site` (or hub).
# Builds the binary if needed, creates the hocvu user, /etc/hocvu (config, keys), /var/lib/hocvu,
# installs the unit, and never overwrites existing keys or configuration. Same layout as the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
role=${1:-}
[ "$role" = site ] || [ "$role" = hub ] || { echo "usage: $0 site|hub" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (sudo $0 $role)" >&2; exit 1; }
bin=${HOCVU:-.build/release/hocvu}
if [ ! -x "$bin" ]; then
  apt-get install -y libsqlite3-dev libzmq3-dev libsodium-dev pkg-config
  swift build -c release --product hocvu --static-swift-stdlib
fi
install -m 0755 "$bin" /usr/bin/hocvu
install -d -m 0750 /var/lib/hocvu
getent passwd hocvu > /dev/null || adduser --system --group --home /var/lib/hocvu --no-create-home --shell /usr/sbin/nologin hocvu
install -d -o root -g hocvu -m 0750 /etc/hocvu
install -d -o hocvu -g hocvu -m 0750 /var/lib/hocvu
if [ ! -e /etc/hocvu/keys/identity.key ]; then
  hocvu keygen --dir /etc/hocvu/keys > /etc/hocvu/public-keys.txt
  echo "Created this node's keys; public keys in /etc/hocvu/public-keys.txt"
fi
chown -R hocvu:hocvu /etc/hocvu/keys && chmod 0700 /etc/hocvu/keys
[ -e "/etc/hocvu/$role.toml" ] || install -o root -g hocvu -m 0640 "config/$role.toml" "/etc/hocvu/$role.toml"
install -m 0644 "ops/systemd/hocvu-$role.service" /etc/systemd/system/
install -d /usr/share/doc/hocvu && install -m 0644 README.md docs/*.md /usr/share/doc/hocvu/
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
cat <<MSG
Installed hocvu ($role).
Next:
  1. edit /etc/hocvu/$role.toml, then: hocvu config check --strict /etc/hocvu/$role.toml
  2. $( [ "$role" = site ] && echo "send /etc/hocvu/public-keys.txt to the hub administrator for \`hocvu hub enroll\`" || echo "enroll sites: hocvu hub enroll --db /var/lib/hocvu/hocvu.sqlite --keys /etc/hocvu/keys …" )
  3. systemctl enable --now hocvu-$role && hocvu status --config /etc/hocvu/$role.toml
See /usr/share/doc/hocvu/operations.md.
MSG
