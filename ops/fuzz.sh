#!/usr/bin/env bash
# Builds the libFuzzer harness for the wire decoders (Fuzz/Sources/FuzzDecoders) with
# AddressSanitizer into .build-fuzz and runs it on a copy of the seed corpus (Fuzz/corpus).
#   ops/fuzz.sh 60        fuzz for 60 seconds (random seed)
#   ops/fuzz.sh ci        CI smoke: fixed seed, 1.5M runs (~20 s), reproducible
# Exits non-zero on any crash; the crashing input is written to ./crash-*.
# Known limit: SwiftPM's --sanitize=fuzzer does not add coverage counters to the library modules
# here, so libFuzzer mutates without coverage feedback (it still found an overlong-varint bug).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-60}
export HOCVU_FUZZ=1 SWIFT_BACKTRACE=enable=no
swift build --scratch-path .build-fuzz --sanitize=fuzzer --sanitize=address --product FuzzDecoders 2>&1 | tail -2
work=$(mktemp -d)
cp Fuzz/corpus/* "$work/"
if [ "$mode" = ci ]; then limits=(-seed=1 -runs=1500000); else limits=(-max_total_time="$mode"); fi
set +e
./.build-fuzz/debug/FuzzDecoders "${limits[@]}" -max_len=4096 -print_final_stats=1 "$work" > "$work.log" 2>&1
status=$?
set -e
tail -6 "$work.log"
rm -rf "$work" "$work.log"
exit $status
