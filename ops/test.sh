#!/usr/bin/env bash
# The test command (README): `swift test`, with a throwaway PostgreSQL 15 cluster for the tests of the
# hub's shared database (Tests/HubPostgresTests; docs/multi-hub.md). Without PostgreSQL's server
# installed those tests are skipped and say so; everything else runs as `swift test` alone.
# Extra arguments go to `swift test` (e.g. --filter HubPostgresTests).
set -euo pipefail
cd "$(dirname "$0")/.."
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    cluster=$(mktemp -d /tmp/hocvu-pg.XXXXXX)
    trap 'ops/pg-test-cluster.sh stop "$cluster"' EXIT
    # A free port: one in use makes the start fail, so try a few.
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 20000))
        if settings=$(ops/pg-test-cluster.sh start "$cluster" "$port"); then break; fi
        ops/pg-test-cluster.sh halt "$cluster" >/dev/null 2>&1 || true
        rm -rf "$cluster" && mkdir -p "$cluster"
        [ "$attempt" -lt 5 ] || { echo "could not start a PostgreSQL test cluster" >&2; exit 1; }
    done
    export "$settings"
    echo "PostgreSQL test cluster: $HOCVU_TEST_POSTGRES"
else
    echo "note: PostgreSQL is not installed (apt-get install postgresql): the shared-database tests are skipped" >&2
fi
swift test "$@"
