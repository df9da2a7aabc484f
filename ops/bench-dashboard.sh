#!/usr/bin/env bash
# Latency of the hub dashboard's pages under 20 concurrent viewers (issue 12, item 7), with wrk:
#   ops/bench-dashboard.sh http://127.0.0.1:9480 USER PASSWORD_FILE [PROVINCE_CODE] [SECONDS]
# Signs in once through the form (CSRF token and cookie like a browser), then runs wrk on the
# national page and one province's page with that session, and prints p50/p99 and requests/s.
# Needs curl and wrk (apt-get install wrk). Loopback only: point it at the hub's own dashboard.
set -euo pipefail
base=${1:?dashboard URL, e.g. http://127.0.0.1:9480}
user=${2:?dashboard user}
pwfile=${3:?file holding the password}
province=${4:-1}
seconds=${5:-30}
case "$base" in http://127.*|http://localhost*) ;; *) echo "refusing a non-loopback target: $base" >&2; exit 64 ;; esac

jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
csrf=$(curl -fsS -c "$jar" "$base/sign-in" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="\([0-9a-f]*\)"/\1/')
curl -fsS -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "name=$user" \
    --data-urlencode "password=$(head -1 "$pwfile")" "$base/sign-in"
session=$(awk '$6 == "hocvu_session" { print $7 }' "$jar")
[ -n "$session" ] || { echo "sign-in failed (wrong password, or the account is locked)" >&2; exit 1; }

for path in /national "/province/$province" "/national?format=csv"; do
    size=$(curl -fsS -b "hocvu_session=$session" -o /dev/null -w '%{size_download}' "$base$path")
    out=$(wrk -t2 -c20 -d"${seconds}s" --latency -H "Cookie: hocvu_session=$session" "$base$path")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
    printf '%-24s %8s bytes  p50 %-9s p99 %-9s %8s req/s%s\n' "$path" "$size" "$p50" "$p99" "$rps" "${non2xx:+  non-2xx: $non2xx}"
done
