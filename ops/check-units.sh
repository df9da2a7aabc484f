#!/usr/bin/env bash
# Checks the systemd units as CI does: `systemd-analyze verify` must print nothing (its exit code
# ignores unknown keys) and `systemd-analyze security --offline=true` must rate each unit ≤ 2.0.
# verify also checks that ExecStart exists, so the units are checked with the built hocvu in its place.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${HOCVU:-.build/debug/hocvu}")
[ -x "$bin" ] || { echo "build hocvu first (swift build)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
status=0
for unit in ops/systemd/*.service; do
  name=$(basename "$unit")
  sed "s#/usr/bin/hocvu#$bin#g" "$unit" > "$work/$name"
  out=$(systemd-analyze verify --man=no "$work/$name" 2>&1 || true)
  if [ -n "$out" ]; then echo "$name: systemd-analyze verify says:"; echo "$out"; status=1; fi
  exposure=$(systemd-analyze security --offline=true "$work/$name" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  echo "$name: exposure $exposure"
  awk -v e="$exposure" 'BEGIN { exit !(e != "" && e + 0 <= 2.0) }' || { echo "$name: exposure $exposure is above 2.0" >&2; status=1; }
done
exit $status
