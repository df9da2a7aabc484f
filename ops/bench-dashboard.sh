#!/usr/bin/env bash
# Latency of the hub dashboard's pages under 20 concurrent viewers (issue 12, item 7), with wrk:
#   ops/bench-dashboard.sh http://127.0.0.1:9480 USER PASSWORD_FILE [PROVINCE_CODE] [SECONDS]
# Signs in once through the form (CSRF token and cookie like a browser), then runs wrk on the
# national page and one province's page with that session, and prints p50/p99 and requests/s.
# Needs curl and wrk (apt-get install wrk). Loopback only: point it at the hub's own dashboard.
# With HOCVU_BENCH=path/to/hocvu-bench, each page is also measured against its raw baseline in the same
# run: the same bytes served from memory by the same HTTP server (hocvu-bench serve-static, Hummingbird).
set -euo pipefail
base=${1:?dashboard URL, e.g. http://127.0.0.1:9480}
user=${2:?dashboard user}
pwfile=${3:?file holding the password}
province=${4:-1}
seconds=${5:-30}
case "$base" in http://127.*|http://localhost*) ;; *) echo "refusing a non-loopback target: $base" >&2; exit 64 ;; esac

jar=$(mktemp)
pages=$(mktemp -d)
static_pid=""
trap 'rm -rf "$jar" "$pages"; [ -z "$static_pid" ] || kill "$static_pid" 2>/dev/null || true' EXIT
csrf=$(curl -fsS -c "$jar" "$base/sign-in" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="\([0-9a-f]*\)"/\1/')
curl -fsS -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "name=$user" \
    --data-urlencode "password=$(head -1 "$pwfile")" "$base/sign-in"
session=$(awk '$6 == "hocvu_session" { print $7 }' "$jar")
[ -n "$session" ] || { echo "sign-in failed (wrong password, or the account is locked)" >&2; exit 1; }

measure() {  # URL [cookie] -> "p50 p99 req/s non2xx"
    local out header=()
    [ -z "${2:-}" ] || header=(-H "Cookie: $2")
    out=$(wrk -t2 -c20 -d"${seconds}s" --latency "${header[@]}" "$1")
    echo "$(awk '$1 == "50%" { print $2 }' <<<"$out") $(awk '$1 == "99%" { print $2 }' <<<"$out") $(awk '/Requests\/sec/ { print $2 }' <<<"$out") $(awk '/Non-2xx/ { print $NF }' <<<"$out")"
}

i=0
names=()
for path in /national "/province/$province" "/national?format=csv"; do
    i=$((i + 1))
    curl -fsS -b "hocvu_session=$session" -o "$pages/page-$i" "$base$path"
    names+=("$path")
done
if [ -n "${HOCVU_BENCH:-}" ]; then
    "$HOCVU_BENCH" serve-static --port 9490 "$pages"/page-* &
    static_pid=$!
    for _ in $(seq 1 50); do curl -fsS -o /dev/null http://127.0.0.1:9490/page-1 2>/dev/null && break; sleep 0.1; done
fi
printf '%-24s %10s  %-10s %-10s %10s   %s\n' page bytes p50 p99 req/s "baseline (same bytes, same server): p50 p99 req/s"
for n in $(seq 1 $i); do
    path=${names[$((n - 1))]}
    read -r p50 p99 rps non2xx <<<"$(measure "$base$path" "hocvu_session=$session")"
    base_line=""
    if [ -n "$static_pid" ]; then
        read -r b50 b99 brps _ <<<"$(measure "http://127.0.0.1:9490/page-$n")"
        base_line="$b50 $b99 $brps"
    fi
    printf '%-24s %10s  %-10s %-10s %10s   %s%s\n' "$path" "$(wc -c < "$pages/page-$n")" "$p50" "$p99" "$rps" "$base_line" "${non2xx:+  non-2xx: $non2xx}"
done
