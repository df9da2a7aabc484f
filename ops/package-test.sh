#!/usr/bin/env bash
# The package as a commune PC or the hub gets it. Builds the release binary and the .deb (twice: A, and
# B with a bumped revision), runs lintian on it, installs A with apt into a clean Debian 12 root
# (debootstrap minbase: no build tree, no Swift toolchain) and runs the installed hocvu there, in a
# network namespace of its own (loopback only): keygen, a hub and a site (started as the user hocvu,
# as the units do; systemd does not run in a chroot), enrollment as root as documented, a signed
# release, an import, the site's status and the national report. Then it upgrades to B, purges (data,
# keys and the user stay), reinstalls on the kept keys, and erases as docs/operations.md says.
#   ops/package-test.sh                 needs root, network to deb.debian.org, debootstrap, lintian, dpkg-dev
# The pristine root from debootstrap is cached as a tarball in $HOCVU_ROOTFS_CACHE (default
# /var/cache/hocvu-package-test; empty: no cache) for 7 days; it is never in git.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot, mounts)" >&2; exit 1; }
t0=$SECONDS
step() { printf '\n==> [%4ds] %s\n' "$((SECONDS - t0))" "$*"; }
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/hocvu-package-test.XXXXXX")
root=$work/root
cleanup() {
  # Anything still running inside this test's root was started by this test: end it, by pid.
  local pids=() pid
  for pid in /proc/[0-9]*; do [ "$(readlink "$pid/root" 2> /dev/null)" = "$root" ] && pids+=("${pid#/proc/}"); done
  if ((${#pids[@]})); then
    echo "stopping processes left in the root: ${pids[*]}" >&2
    kill -TERM "${pids[@]}" 2> /dev/null || true; sleep 6; kill -KILL "${pids[@]}" 2> /dev/null || true
  fi
  if [ -d "$root/proc" ] && mountpoint -q "$root/proc"; then umount -l "$root/proc" || true; fi
  # Never delete through a mount that is still there.
  if [ -d "$root/proc" ] && mountpoint -q "$root/proc"; then echo "left $work: $root/proc still mounted" >&2; return; fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

step "release build (static Swift runtime)"
swift build -c release --product hocvu --static-swift-stdlib --scratch-path .build-release > "$work/build.log" 2>&1 \
  || { grep -E 'error:' "$work/build.log" | head -20; tail -5 "$work/build.log"; fail "release build"; }
tail -1 "$work/build.log"
bin=.build-release/release/hocvu
# What ships holds no test or benchmark code: those live in TestSupport and hocvu-bench, never linked into hocvu.
shipped_test_code=$(nm "$bin" | grep -cE 'TestSupport|hocvu_bench' || true)
[ "$shipped_test_code" = 0 ] || fail "$bin links test or benchmark code ($shipped_test_code TestSupport/hocvu_bench symbols)"

step "packages: A (as released) and B (a rebuild with a bumped revision, for the upgrade)"
ops/generate-admin-units.sh --check
deb_a=$(HOCVU=$bin ops/build-deb.sh "$work")
rev=$(sed -n '1s/^hocvu ([^)]*-\([^)-]*\)).*/\1/p' ops/debian/changelog)
deb_b=$(HOCVU=$bin HOCVU_DEB_REVISION="$rev+upgradetest1" HOCVU_DEB_ZOPTS="-Zgzip -z1" ops/build-deb.sh "$work")
ls -l "$deb_a" "$deb_b"
dpkg-deb --info "$deb_a" | sed -n '/Package:/,$p'

step "lintian (errors and warnings fail; overrides in ops/debian/lintian-overrides)"
# One run shows every tag with the overrides' reasons; an E: or W: line fails (lintian's own --fail-on
# would count the overridden ones too when they are shown).
lintian --display-info --pedantic --show-overrides "$deb_a" | grep -v '^N: ' | tee "$work/lintian.txt"
! grep -q '^[EW]: ' "$work/lintian.txt" || fail "lintian reports errors or warnings (above)"

step "a clean Debian 12 root (debootstrap --variant=minbase bookworm)"
cache=${HOCVU_ROOTFS_CACHE-/var/cache/hocvu-package-test}
tarball=$cache/bookworm-minbase.tar
mkdir -p "$root"
if [ -n "$cache" ] && [ -n "$(find "$tarball" -mtime -7 2> /dev/null)" ]; then
  tar -xpf "$tarball" -C "$root"
  echo "from $tarball"
else
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  if [ -n "$cache" ]; then mkdir -p "$cache" && tar -cpf "$tarball.new" -C "$root" . && mv "$tarball.new" "$tarball"; fi
fi
[ ! -e "$root/usr/bin/swift" ] && [ ! -e "$root$PWD" ] || fail "the root is not clean"
cp /etc/resolv.conf "$root/etc/resolv.conf"
echo 'Dpkg::Use-Pty "0";' > "$root/etc/apt/apt.conf.d/90hocvu-package-test"   # no /dev/pts in the root
mount -t proc proc "$root/proc"
cp "$deb_a" "$deb_b" "$root/tmp/"
cp -r curriculum/sample "$root/root/curriculum"   # test data for a release, not part of the package
deb_a=/tmp/$(basename "$deb_a"); deb_b=/tmp/$(basename "$deb_b")
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
# The daemons talk over loopback in a network namespace of their own: nothing else on this machine sees them.
in_netns() { unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# The commands run inside the root, by phase.
cat > "$root/root/scenario.sh" <<'SCENARIO'
#!/bin/bash
set -euo pipefail
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
# As the units run it (User=hocvu). setpriv execs the command, so `setpriv … &` leaves $! = the daemon's pid.
as_hocvu() { setpriv --reuid=hocvu --regid=hocvu --init-groups -- "$@"; }
owner() { stat -c %U:%G "$1"; }
mode() { stat -c %a "$1"; }
site=/srv/site-70
case "$1" in
installed)
  hocvu --version
  [ "$(owner /var/lib/hocvu)" = hocvu:hocvu ] && [ "$(mode /var/lib/hocvu)" = 750 ] || fail "/var/lib/hocvu: $(owner /var/lib/hocvu) $(mode /var/lib/hocvu)"
  [ "$(owner /etc/hocvu/keys/identity.key)" = hocvu:hocvu ] || fail "keys not owned by hocvu"
  [ "$(mode /etc/hocvu/keys)" = 700 ] || fail "/etc/hocvu/keys mode $(mode /etc/hocvu/keys)"
  for f in site hub; do [ "$(owner /etc/hocvu/$f.toml)" = root:hocvu ] && [ "$(mode /etc/hocvu/$f.toml)" = 640 ] || fail "/etc/hocvu/$f.toml"; done
  grep -q '^identity' /etc/hocvu/public-keys.txt || fail "no public keys"
  dpkg --verify hocvu || fail "dpkg --verify (md5sums)"
  find / -xdev -name '*.resources' -path '*hocvu*' | grep . && fail "a resource bundle was installed" || true
  echo "installed: user, directories, keys (0700, hocvu), configuration (0640, root:hocvu), md5sums verified"
  ;;
run)
  hubkey=$(awk '/^transport/ {print $2}' /etc/hocvu/public-keys.txt)
  hubid=$(awk '/^identity/ {print $2}' /etc/hocvu/public-keys.txt)
  echo "-- keygen for the site (commune 70), an admin and the trust file"
  install -d -o hocvu -g hocvu -m 0750 "$site"
  as_hocvu hocvu keygen --dir "$site/keys" > "$site/keys.txt"
  hocvu admin keygen --dir /root/admin --name "Quản trị viên A" > /dev/null
  hocvu admin trust --threshold 1 --out /etc/hocvu/trust.json /root/admin/admin.pub.json
  chgrp hocvu /etc/hocvu/trust.json && chmod 0640 /etc/hocvu/trust.json
  hocvu admin release sample-media /root/curriculum
  hocvu admin release build /root/curriculum --version 1 --out /root/release-1
  hocvu admin release sign /root/release-1 --keys /root/admin
  hocvu admin release verify /root/release-1 --trust /etc/hocvu/trust.json

  echo "-- hub enroll as root before the hub's first start (operations.md), then the unit's ExecStartPre=+"
  hocvu hub enroll --db /var/lib/hocvu/hocvu.sqlite --keys /etc/hocvu/keys --commune 70 \
    --identity "$(awk '/^identity/ {print $2}' "$site/keys.txt")" --transport "$(awk '/^transport/ {print $2}' "$site/keys.txt")"
  echo "database owner after a root enroll: $(owner /var/lib/hocvu/hocvu.sqlite)"
  chown root:root /var/lib/hocvu/hocvu.sqlite   # as a backup restored by root would leave it, at the latest
  pre=$(sed -n 's/^ExecStartPre=+//p' /lib/systemd/system/hocvu-hub.service)
  [ -n "$pre" ] || fail "hocvu-hub.service has no ExecStartPre=+"
  $pre
  [ "$(owner /var/lib/hocvu/hocvu.sqlite)" = hocvu:hocvu ] || fail "ExecStartPre did not give the database back to hocvu"
  hocvu hub sites --db /var/lib/hocvu/hocvu.sqlite --keys /etc/hocvu/keys

  echo "-- configuration: the installed examples, edited as an administrator would"
  sed -i 's#^endpoint = .*#endpoint = "tcp://127.0.0.1:7400"#' /etc/hocvu/hub.toml
  hocvu config check --strict /etc/hocvu/hub.toml
  sed -e "s#/var/lib/hocvu/hocvu.sqlite#$site/site.sqlite#; s#/etc/hocvu/keys#$site/keys#; s#/var/lib/hocvu/chunks#$site/chunks#" \
      -e 's#/run/hocvu/status.json#/run/hocvu/site-status.json#; s#^endpoint = .*#endpoint = "tcp://127.0.0.1:7400"#' \
      -e "s#^transport_key = .*#transport_key = \"$hubkey\"#; s#^identity_key = .*#identity_key = \"$hubid\"#" \
      /etc/hocvu/site.toml > "$site/site.toml"
  hocvu config check --strict "$site/site.toml"
  install -d -o hocvu -g hocvu -m 0750 /run/hocvu   # RuntimeDirectory= of the units

  echo "-- hocvu hub run and hocvu site run, as the user hocvu"
  setpriv --reuid=hocvu --regid=hocvu --init-groups -- hocvu hub run --config /etc/hocvu/hub.toml 2> /root/hub.log & hub=$!
  setpriv --reuid=hocvu --regid=hocvu --init-groups -- hocvu site run --config "$site/site.toml" 2> /root/site.log & sitepid=$!
  trap 'kill $hub $sitepid 2> /dev/null || true' EXIT
  sleep 1
  hocvu admin release publish /root/release-1 --hub tcp://127.0.0.1:7400 --hub-key "$hubkey" --keys /root/admin
  for _ in $(seq 1 150); do grep -q "Release installed" /root/site.log && break; sleep 0.2; done
  grep -q "Release installed" /root/site.log || { tail -20 /root/site.log; fail "the site did not install release 1"; }
  echo "site 70: release 1 installed"

  echo "-- learner events imported at the site (one bad line, reported)"
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ); start=$(date -u -d '-20 min' +%Y-%m-%dT%H:%M:%SZ)
  f=$site/events.jsonl; : > "$f"
  for i in $(seq 1 12); do
    nid=$(printf '001270%06d' "$i")
    echo "{\"type\":\"learner\",\"national_id\":\"$nid\",\"full_name\":\"Học viên $i\",\"role\":\"civil_servant\",\"unit\":\"UBND\",\"home_commune\":70}" >> "$f"
    echo "{\"type\":\"enroll\",\"national_id\":\"$nid\",\"course\":\"ksn-101\"}" >> "$f"
    if [ $((i % 3)) -ne 0 ]; then
      for l in ksn-101-l1 ksn-101-l2; do echo "{\"type\":\"progress\",\"national_id\":\"$nid\",\"lesson\":\"$l\",\"percent\":100,\"at\":\"$now\"}" >> "$f"; done
      echo "{\"type\":\"attempt\",\"national_id\":\"$nid\",\"quiz\":\"ksn-101-quiz\",\"answers\":[1,2,3,0,1],\"score\":9,\"max_score\":10,\"started_at\":\"$start\",\"finished_at\":\"$now\"}" >> "$f"
      [ $((i % 2)) -eq 0 ] && echo "{\"type\":\"certify\",\"national_id\":\"$nid\",\"course\":\"ksn-101\"}" >> "$f"
    fi
  done
  echo '{"type":"progress","national_id":"12345","lesson":"ksn-101-l1","percent":140}' >> "$f"
  chown hocvu:hocvu "$f"
  as_hocvu hocvu site import --db "$site/site.sqlite" --keys "$site/keys" "$f" || true

  echo "-- the site's results reach the hub"
  row=""
  for _ in $(seq 1 100); do
    row=$(hocvu hub report --format csv | grep '^commune,70,' || true)
    # learners,enrolled (docs/report-format.md, CSV columns 13 and 14)
    [ "$(echo "$row" | cut -d, -f13-14)" = 12,12 ] && break; sleep 0.2
  done
  [ "$(echo "$row" | cut -d, -f13-14)" = 12,12 ] || { tail -20 /root/hub.log /root/site.log; fail "commune 70 at the hub: '$row'"; }
  hocvu status --config "$site/site.toml" || true
  hocvu hub report
  kill -TERM $hub $sitepid
  hub_rc=0; site_rc=0; wait $hub || hub_rc=$?; wait $sitepid || site_rc=$?; trap - EXIT
  for pid in $hub $sitepid; do [ ! -e /proc/$pid ] || fail "process $pid still runs after SIGTERM"; done
  echo "hub and site stopped on SIGTERM (exit $hub_rc and $site_rc)"
  ;;
before-upgrade)
  md5sum /etc/hocvu/keys/* /etc/hocvu/hub.toml > /root/kept.md5
  hocvu hub report --format csv | grep '^commune,70,' | cut -d, -f1-16 > /root/report-before.csv
  # As `systemctl enable hocvu-hub` leaves it (systemd itself does not run here).
  install -d /etc/systemd/system/multi-user.target.wants
  ln -sf /lib/systemd/system/hocvu-hub.service /etc/systemd/system/multi-user.target.wants/hocvu-hub.service
  # What the maintainer scripts ask of systemd, through deb-systemd-invoke: a stand-in systemctl
  # (systemd is not installed in this root) records each call; hocvu-hub is enabled and running, hocvu-site neither.
  [ ! -e /usr/sbin/systemctl ] || fail "systemctl is installed in the root"
  install -d /run/systemd/system
  cat > /usr/sbin/systemctl <<'STUB'
#!/bin/sh
echo "$*" >> /root/systemctl.log
case "$*" in
  *is-enabled*hocvu-hub.service*) echo enabled ;;
  *is-enabled*) echo disabled; exit 1 ;;
  *is-active*hocvu-hub.service*) ;;
  *is-active*) exit 3 ;;
esac
exit 0
STUB
  chmod 0755 /usr/sbin/systemctl
  : > /root/systemctl.log
  ;;
after-upgrade)
  dpkg-query -W hocvu
  md5sum --quiet -c /root/kept.md5 || fail "the upgrade changed keys or the edited configuration"
  [ "$(hocvu hub report --format csv | grep '^commune,70,' | cut -d, -f1-16)" = "$(cat /root/report-before.csv)" ] || fail "the report changed on upgrade"
  dpkg --verify hocvu || fail "dpkg --verify after the upgrade"
  echo "upgraded: keys, configuration and the hub's records kept; the new binary reads them"
  echo "systemctl calls: $(grep -v '^--system is-\|^--system --quiet is-' /root/systemctl.log | paste -sd';')"
  grep -q 'restart hocvu-hub.service' /root/systemctl.log || fail "the upgrade did not restart the enabled, running hocvu-hub"
  ! grep -q 'restart hocvu-site.service\|start hocvu-site.service' /root/systemctl.log || fail "the upgrade started hocvu-site, neither enabled nor running"
  ! grep -q ' stop ' /root/systemctl.log && ! grep -q '^stop' /root/systemctl.log || fail "the upgrade stopped a service before the restart"
  : > /root/systemctl.log
  ;;
after-purge)
  [ "$(dpkg-query -W -f='${db:Status-Status}' hocvu 2> /dev/null || true)" != installed ] || fail "hocvu is still installed"
  [ ! -e /usr/bin/hocvu ] || fail "/usr/bin/hocvu is still there"
  for f in /var/lib/hocvu/hocvu.sqlite /etc/hocvu/keys/identity.key /etc/hocvu/keys/transport.key /etc/hocvu/hub.toml; do
    [ -e "$f" ] || fail "purge deleted $f"
  done
  getent passwd hocvu > /dev/null || fail "purge deleted the user hocvu"
  [ ! -e /etc/systemd/system/multi-user.target.wants/hocvu-hub.service ] || fail "purge left hocvu-hub enabled"
  md5sum --quiet -c /root/kept.md5 || fail "purge changed the keys"
  grep -q '^stop hocvu-hub.service' /root/systemctl.log && grep -q '^stop hocvu-site.service' /root/systemctl.log \
    || fail "removal did not stop the services: $(paste -sd';' /root/systemctl.log)"
  : > /root/systemctl.log
  echo "purged: the database, the keys, the configuration and the user are kept; the service is no longer enabled"
  ;;
reinstalled)
  md5sum --quiet -c /root/kept.md5 || fail "the reinstall changed the keys"
  ! grep -q 'start' /root/systemctl.log || fail "a fresh install started a service: $(paste -sd';' /root/systemctl.log)"
  rm -rf /usr/sbin/systemctl /run/systemd/system
  [ "$(hocvu hub report --format csv | grep '^commune,70,' | cut -d, -f1-16)" = "$(cat /root/report-before.csv)" ] || fail "the reinstall lost records"
  echo "reinstalled after purge: same keys, same records"
  ;;
erased)
  for p in /var/lib/hocvu /etc/hocvu /usr/bin/hocvu /lib/systemd/system/hocvu-hub.service; do [ ! -e "$p" ] || fail "$p is left"; done
  ! getent passwd hocvu > /dev/null || fail "the user hocvu is left"
  echo "erased: nothing of hocvu is left"
  ;;
esac
SCENARIO
chmod 0755 "$root/root/scenario.sh"

step "install A with apt (its Depends resolve from Debian)"
in_root apt-get update -q > "$work/apt.log" 2>&1 || { tail "$work/apt.log"; fail "apt-get update in the root"; }
in_root apt-get install -y -q --no-install-recommends "$deb_a" 2>&1 | grep -E '^(hocvu|Setting up|The following NEW)' || true
in_root /root/scenario.sh installed

step "keygen, hub, site, release, import, status, report: the installed hocvu, no build tree"
in_netns /root/scenario.sh run

step "upgrade A -> B with apt"
in_root /root/scenario.sh before-upgrade
in_root apt-get install -y -q "$deb_b" 2>&1 | grep -E '^(hocvu|Setting up|Unpacking)' || true
in_root /root/scenario.sh after-upgrade

step "purge: data, keys and the user stay"
in_root apt-get purge -y -q hocvu 2>&1 | grep -E '^(hocvu|Purging|Removing)' || true
in_root /root/scenario.sh after-purge

step "reinstall on the kept keys and database"
in_root apt-get install -y -q "$deb_a" 2>&1 | grep -E '^(hocvu|Setting up)' || true
in_root /root/scenario.sh reinstalled

step "erase for good, as docs/operations.md says"
in_root sh -c 'apt-get purge -y -q hocvu > /dev/null && rm -rf /var/lib/hocvu /etc/hocvu && deluser --system --quiet hocvu'
in_root /root/scenario.sh erased

step "package test passed"
