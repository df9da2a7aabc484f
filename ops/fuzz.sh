#!/usr/bin/env bash
# Builds the libFuzzer harness for the wire decoders (Fuzz/Sources/FuzzDecoders) with
# SanitizerCoverage and AddressSanitizer into .build-fuzz, checks that the build really is
# coverage-guided, and runs it on a fresh copy of the seed corpus (Fuzz/corpus).
#   ops/fuzz.sh 60             fuzz for 60 seconds (random seed)
#   ops/fuzz.sh ci             CI smoke: fixed seed, 400k runs (~1 min after the build)
#   FUZZ_CLEAN=1 ops/fuzz.sh … start from an empty .build-fuzz
# Exits non-zero on any crash (the crashing input is written to ./crash-*), and when the
# instrumentation check fails. (The stateful session fuzzer is a Swift Testing test that
# `swift test` runs: Tests/NodeTests/SessionFuzzTests.swift.)
#
# Why coverage used to come and go ("0 new units" at ~88k exec/s on some clean builds):
#  1. With `swift build --sanitize=fuzzer --sanitize=address`, SwiftPM keeps the sanitizers in a
#     Set, so the two -sanitize= flags reach swiftc in a random order in each `swift build`
#     process, and the Swift driver forwards only the LAST -sanitize= option to every compile job:
#       swiftc -c -sanitize=fuzzer -sanitize=address x.swift -driver-print-jobs   →  -sanitize=address
#       swiftc -c -sanitize=address -sanitize=fuzzer x.swift -driver-print-jobs   →  -sanitize=fuzzer
#     About half of all builds compiled every module with ASan only: no SanitizerCoverage counters
#     at all, so libFuzzer ran blind (no "Loaded N modules" line, 0 new units, very fast). The
#     other half had coverage but no ASan checks in Swift code. Fix: one comma-joined flag,
#     -Xswiftc -sanitize=fuzzer,address, which comes last on every swiftc command line and which
#     the driver forwards whole. (--sanitize=fuzzer alone stays: it tells SwiftPM this is a
#     libFuzzer build, so it links libFuzzer's main rather than renaming the harness module's.)
#  Not the cause, checked: SwiftPM does recompile when the sanitizer flags change (a .build-fuzz
#  built with other flags is rebuilt), every module (dependencies included) gets the flags, and
#  the corpus is a fresh copy of Fuzz/corpus each run (never reused).
# Every run checks the build before fuzzing: each object of the modules the decoders run through
# (the harness, Merge, Wire, SwiftProtobuf) that holds code has SanitizerCoverage counters and ASan
# instrumentation (if not, .build-fuzz is wiped and rebuilt once); the binary starts libFuzzer;
# libFuzzer loads enough counters; the seed corpus reaches a minimum coverage. `ci` also requires
# new coverage units.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-60}
export HOCVU_FUZZ=1 SWIFT_BACKTRACE=enable=no
scratch=.build-fuzz
build=(swift build --scratch-path "$scratch" --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product FuzzDecoders)
min_counters=20000  # ~100k with coverage and ASan in Wire, Model, Merge, Release, Sodium and SwiftProtobuf (no store linked); the harness alone has a few dozen
min_seed_cov=300    # the seed corpus covers ~740 edges when the decoders are instrumented

fail() { echo "fuzz.sh: FAILED: $*" >&2; exit 1; }

run_build() {
  local log status
  log=$(mktemp)
  set +e
  "${build[@]}" > "$log" 2>&1
  status=$?
  set -e
  # ld.gold warns about every ASan helper symbol; say the rest.
  grep -v "Cannot export local symbol" "$log" | tail -$([ $status = 0 ] && echo 1 || echo 40)
  rm -f "$log"
  [ $status = 0 ] || fail "the instrumented build failed"
}

# Objects of the decoders' modules that hold code but lack SanitizerCoverage or ASan.
uninstrumented() {
  local m o
  for m in FuzzDecoders Merge Wire SwiftProtobuf; do
    ls "$scratch"/debug/$m.build/*.o > /dev/null 2>&1 || { echo "$m: no objects"; continue; }
    for o in "$scratch"/debug/$m.build/*.o; do
      objdump -h "$o" | awk '$2 ~ /^\.text/ && $3 !~ /^0+$/ { code = 1 } $2 == "__sancov_cntrs" { cov = 1 }
        END { exit !(code && !cov) }' && { echo "$o: no SanitizerCoverage counters"; continue; }
      if objdump -h "$o" | awk '$2 ~ /^\.text/ && $3 !~ /^0+$/ { code = 1 } END { exit !code }' \
        && [ "$(nm -u "$o" | grep -c ' __asan_')" = 0 ]; then  # not grep -q: with pipefail, nm's SIGPIPE would count
        echo "$o: no AddressSanitizer instrumentation"
      fi
    done
  done
}

if [ "${FUZZ_CLEAN:-0}" = 1 ]; then rm -rf "$scratch"; fi
run_build
bad=$(uninstrumented)
if [ -n "$bad" ]; then
  echo "fuzz.sh: $(echo "$bad" | wc -l) objects are not instrumented; rebuilding $scratch from scratch:"
  echo "$bad" | sed -n 1,5p
  rm -rf "$scratch"
  run_build
  bad=$(uninstrumented)
  [ -z "$bad" ] || fail "objects not instrumented after a clean build:
$bad"
fi
bin=$scratch/debug/FuzzDecoders

work=$(mktemp -d)
trap 'rm -rf "$work" "$work.log" "$work.probe"' EXIT
cp Fuzz/corpus/* "$work/"

# Coverage check: libFuzzer must load counters, and the seed corpus must reach some coverage.
# (Every reader below reads its whole input: with pipefail, an early exit would fail the script.)
"$bin" -runs=0 -max_len=4096 "$work" > "$work.probe" 2>&1 || true
[ "$(grep -c '^INFO: Seed:' "$work.probe")" != 0 ] \
  || fail "$bin did not start libFuzzer (its main is not libFuzzer's): $(sed -n 1,3p "$work.probe")"
counters=$(sed -n 's/.*Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$work.probe" | sed -n 1p)
seed_cov=$(sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' "$work.probe" | sed -n 1p)
if [ -z "$counters" ] || [ "$counters" -lt $min_counters ] || [ -z "$seed_cov" ] || [ "$seed_cov" -lt $min_seed_cov ]; then
  grep "INFO: Loaded\|INITED" "$work.probe" >&2 || true
  fail "the harness is not coverage-instrumented: ${counters:-0} inline 8-bit counters (need ≥ $min_counters), seed corpus coverage ${seed_cov:-0} (need ≥ $min_seed_cov)"
fi
echo "fuzz.sh: coverage check OK: $counters inline 8-bit counters, the seed corpus covers $seed_cov edges"

# ci: 400k runs, about 45–70 s on a 2-core runner (6–9k exec/s with coverage and ASan); the time
# cap only guards against a much slower machine (then fewer runs). Deterministic hashing fixes
# Swift's Set and Dictionary orders; new-unit counts still vary by a few percent between runs
# (address-dependent comparisons), while a crash-* input always replays exactly.
if [ "$mode" = ci ]; then
  export SWIFT_DETERMINISTIC_HASHING=1
  limits=(-seed=1 -runs=400000 -max_total_time=110)
else
  limits=(-max_total_time="$mode")
fi
set +e
"$bin" "${limits[@]}" -max_len=4096 -print_final_stats=1 "$work" > "$work.log" 2>&1
status=$?
set -e
tail -6 "$work.log"
new_units=$(sed -n 's/^stat::new_units_added: *\([0-9]*\).*/\1/p' "$work.log")
final_cov=$(grep -o 'cov: [0-9]*' "$work.log" | tail -1 | cut -d' ' -f2)
echo "fuzz.sh: seed corpus coverage $seed_cov → $final_cov edges, ${new_units:-0} new units"
[ $status = 0 ] || exit $status
if [ "$mode" = ci ] && [ "${new_units:-0}" -eq 0 ]; then
  fail "no new coverage units: the run was not coverage-guided"
fi
