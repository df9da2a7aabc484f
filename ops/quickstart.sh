#!/usr/bin/env bash
# First command of the README: install what hocvu needs on Debian 12, build it, and show what it does.
# Safe to run again. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# curl: the demo opens the dashboard; postgresql and sqlite3: the tests (ops/test.sh) of the multi-hub
# database and of the hub view use a throwaway cluster and the sqlite3 shell.
packages=(libsqlite3-dev libzmq3-dev libsodium-dev pkg-config curl postgresql sqlite3)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "==> installing ${missing[*]}"
    $sudo apt-get update -q
    $sudo apt-get install -y -q "${missing[@]}"
fi

command -v swift >/dev/null || { echo "swift 6.x is not on PATH; install the Swift toolchain first (swift.org)" >&2; exit 1; }

echo "==> building hocvu (release; the first build takes a few minutes)"
swift build -c release --product hocvu

echo
./ops/demo.sh
