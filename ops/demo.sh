#!/usr/bin/env bash
# A hub and three commune sites on loopback: keys, enrollment, curriculum, learner events, sync,
# and the national report. Everything lives in ./demo (deleted and recreated). Needs a built hocvu.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HOCVU:-.build/release/hocvu}
[ -x "$bin" ] || { echo "build first: swift build -c release --product hocvu" >&2; exit 1; }

rm -rf demo && mkdir -p demo/hub demo/site-70 demo/site-73 demo/site-4
say() { printf '\n==> %s\n' "$*"; }

say "keys for the hub and three sites (Phường Hoàn Kiếm 70, Phường Cửa Nam 73, Phường Ba Đình 4)"
"$bin" keygen --dir demo/hub/keys | tee demo/hub/keys.txt
for c in 70 73 4; do "$bin" keygen --dir "demo/site-$c/keys" > "demo/site-$c/keys.txt"; done
hubkey=$(awk '/^transport/ {print $2}' demo/hub/keys.txt)
hubid=$(awk '/^identity/ {print $2}' demo/hub/keys.txt)

say "two curriculum admins; the trust file every node pins: both must sign a release"
"$bin" admin keygen --dir demo/admin-a --name "Quản trị viên A" > /dev/null
"$bin" admin keygen --dir demo/admin-b --name "Quản trị viên B" > /dev/null
"$bin" admin trust --threshold 2 --out demo/trust.json demo/admin-a/admin.pub.json demo/admin-b/admin.pub.json

say "release 1 of the sample Vietnamese curriculum (with a generated 6 MiB lesson video): build, sign twice, verify"
cp -r curriculum/sample demo/curriculum-src
"$bin" admin release sample-media demo/curriculum-src
"$bin" admin release build demo/curriculum-src --version 1 --out demo/release-1
"$bin" admin release sign demo/release-1 --keys demo/admin-a
"$bin" admin release sign demo/release-1 --keys demo/admin-b
"$bin" admin release verify demo/release-1 --trust demo/trust.json

say "enroll the three sites at the hub"
for c in 70 73 4; do
  "$bin" hub enroll --db demo/hub/hub.sqlite --keys demo/hub/keys --commune "$c" \
    --identity "$(awk '/^identity/ {print $2}' "demo/site-$c/keys.txt")" \
    --transport "$(awk '/^transport/ {print $2}' "demo/site-$c/keys.txt")"
done

say "start the hub and the sites"
"$bin" hub run --db demo/hub/hub.sqlite --keys demo/hub/keys --bind tcp://127.0.0.1:7400 \
  --trust demo/trust.json --chunks demo/hub/chunks --dashboard 127.0.0.1:9480 2> demo/hub/log &
pids=($!)
for c in 70 73 4; do
  portal=(); [ "$c" = 70 ] && portal=(--portal 127.0.0.1:8480)  # commune 70's learner portal
  "$bin" site run --db "demo/site-$c/site.sqlite" --keys "demo/site-$c/keys" --hub tcp://127.0.0.1:7400 --hub-key "$hubkey" \
    --hub-identity "$hubid" --trust demo/trust.json --chunks "demo/site-$c/chunks" "${portal[@]}" 2> "demo/site-$c/log" &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
sleep 1

say "the hub imports the demo communes' rosters (the officials each must train: the denominator of every rate)"
"$bin" hub roster import --db demo/hub/hub.sqlite --keys demo/hub/keys ops/sample/roster.csv

say "admin A publishes release 1 to the hub (over CURVE); the hub checks it and announces it to the sites"
"$bin" admin release publish demo/release-1 --hub tcp://127.0.0.1:7400 --hub-key "$hubkey" --keys demo/admin-a
for c in 70 73 4; do
  for _ in $(seq 1 150); do grep -q "Release installed" "demo/site-$c/log" && break; sleep 0.2; done
  grep -q "Release installed" "demo/site-$c/log" && echo "site $c: release 1 installed" || { echo "site $c did not install the release; see demo/site-$c/log" >&2; exit 1; }
done

say "learner events at each site (one line is deliberately bad: it is reported, the rest kept)"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ); start=$(date -u -d '-20 min' +%Y-%m-%dT%H:%M:%SZ)
for c in 70 73 4; do
  f="demo/site-$c/events.jsonl"; : > "$f"
  for i in $(seq 1 12); do
    nid=$(printf '0012%02d%06d' "$((c % 100))" "$i")
    echo "{\"type\":\"learner\",\"national_id\":\"$nid\",\"full_name\":\"Học viên $i\",\"role\":\"civil_servant\",\"unit\":\"UBND\",\"home_commune\":$c}" >> "$f"
    echo "{\"type\":\"enroll\",\"national_id\":\"$nid\",\"course\":\"ksn-101\"}" >> "$f"
    if [ $((i % 3)) -ne 0 ]; then  # two in three learners finish the course
      for l in ksn-101-l1 ksn-101-l2; do echo "{\"type\":\"progress\",\"national_id\":\"$nid\",\"lesson\":\"$l\",\"percent\":100,\"at\":\"$now\"}" >> "$f"; done
      echo "{\"type\":\"attempt\",\"national_id\":\"$nid\",\"quiz\":\"ksn-101-quiz\",\"answers\":[1,2,3,0,1],\"score\":9,\"max_score\":10,\"started_at\":\"$start\",\"finished_at\":\"$now\"}" >> "$f"
      [ $((i % 2)) -eq 0 ] && echo "{\"type\":\"certify\",\"national_id\":\"$nid\",\"course\":\"ksn-101\"}" >> "$f"
    fi
  done
  echo '{"type":"progress","national_id":"12345","lesson":"ksn-101-l1","percent":140}' >> "$f"
  "$bin" site import --db "demo/site-$c/site.sqlite" --keys "demo/site-$c/keys" "$f" || true
done

sleep 3

say "the web dashboard (Vietnamese, loopback): a national viewer's account, then the national page"
umask 077; printf 'demo-dashboard-2026\n' > demo/dashboard-password; umask 022
"$bin" hub user add demo --scope national --db demo/hub/hub.sqlite --keys demo/hub/keys --password-file demo/dashboard-password
if command -v curl > /dev/null; then
  jar=demo/cookies.txt
  csrf=$(curl -fsS -c "$jar" http://127.0.0.1:9480/sign-in | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="\([0-9a-f]*\)"/\1/')
  curl -fsS -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "name=demo" \
    --data-urlencode "password=demo-dashboard-2026" http://127.0.0.1:9480/sign-in
  curl -fsS -b "$jar" -o demo/national.html http://127.0.0.1:9480/national
  curl -fsS -b "$jar" -o demo/national.json 'http://127.0.0.1:9480/national?format=json'
  echo "the national page is in demo/national.html ($(wc -c < demo/national.html) bytes; its figures as JSON: demo/national.json)"
fi
echo "(to browse it: http://127.0.0.1:9480 while the demo runs, user demo, password in demo/dashboard-password)"

say "commune 70's learner portal: an operator account, then (through the operator's pages) a learner with a PIN"
umask 077; printf 'demo-operator-2026\n' > demo/operator-password; umask 022
"$bin" site user add operator --db demo/site-70/site.sqlite --keys demo/site-70/keys --password-file demo/operator-password
if command -v curl > /dev/null; then
  jar=demo/portal-cookies.txt; p=http://127.0.0.1:8480
  token() { grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="\([0-9a-f]*\)"/\1/'; }
  csrf=$(curl -fsS -c "$jar" $p/operator/sign-in | token)
  curl -fsS -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "name=operator" \
    --data-urlencode "secret=demo-operator-2026" $p/operator/sign-in
  csrf=$(curl -fsS -b "$jar" $p/operator | token)
  curl -fsS -b "$jar" -o demo/portal-registered.html --data-urlencode "csrf=$csrf" --data-urlencode "national_id=001270999001" \
    --data-urlencode "full_name=Nguyễn Thị Học Viên" --data-urlencode "role=commune_council_delegate" --data-urlencode "unit=HĐND phường" \
    --data-urlencode "home_commune=70" --data-urlencode "pin=246810" $p/operator/learners || true
  code=$(grep -o 'Mã học viên: [0-9]\{8\}' demo/portal-registered.html | grep -o '[0-9]\{8\}' || true)
  if [ -n "$code" ]; then
    echo "learner portal of commune 70: $p  (learner code $code, PIN 246810; operator: $p/operator/sign-in, user operator, password in demo/operator-password)"
    echo "$code" > demo/learner-code
  else
    echo "the portal did not register the sample learner; see demo/portal-registered.html and demo/site-70/log" >&2
  fi
fi
if [ -t 0 ] && [ -z "${HOCVU_DEMO_NO_WAIT:-}" ]; then
  read -r -p "The hub, the sites and the portal are running: open the portal now; press Enter to stop them and print the report. " _ || true
fi
kill -TERM "${pids[@]}"; wait || true; trap - EXIT

say "national report (the hub's view; read-only, no keys needed): certified officials on the rosters ÷ roster size"
"$bin" hub report --db demo/hub/hub.sqlite
"$bin" hub report --db demo/hub/hub.sqlite --format csv > demo/report.csv
echo "(all 3,321 communes, as CSV for Excel: demo/report.csv)"

say "commune 70's operator: who on its roster has not started (the roster came with the hub's home feed)"
"$bin" site roster --db demo/site-70/site.sqlite --keys demo/site-70/keys --not-started
echo
echo "Also: '$bin hub report --format json|csv', '$bin hub sites', logs in demo/*/log; docs/releases.md for how releases travel, docs/ for the rest."
