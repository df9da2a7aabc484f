#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests and benchmarks (docs/multi-hub.md, "Tests"):
#   ops/pg-test-cluster.sh start DIR [PORT]   creates and starts a cluster in DIR, prints its settings
#   ops/pg-test-cluster.sh stop DIR           stops it and removes DIR
#   ops/pg-test-cluster.sh restart DIR        fast stop and start
#   ops/pg-test-cluster.sh halt DIR           fast stop, keeping DIR (the fault tests: database down)
#   ops/pg-test-cluster.sh resume DIR         start it again after halt
# Run as root it runs the server as the `postgres` user (initdb refuses root). It listens on a Unix
# socket in DIR and on 127.0.0.1:PORT, trusting local connections only: never a production setup.
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL server not installed: apt-get install -y postgresql" >&2; exit 1; }
cmd=${1:?usage: $0 start|stop|restart DIR [PORT]}
dir=${2:?usage: $0 start|stop|restart DIR [PORT]}
port=${3:-54329}
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Durability as in production (commit = acknowledged); no other tuning.
    echo "-k $dir -p $port -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on -c synchronous_commit=on" >"$dir/options"
    # No descriptor of ours is left to the server (a caller reading our output to its end would wait forever).
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start </dev/null >/dev/null 2>"$dir/pg_ctl.err" \
        || { cat "$dir/pg_ctl.err" "$dir/server.log" >&2; exit 1; }
    echo "HOCVU_TEST_POSTGRES=host=$dir port=$port user=postgres"
    ;;
halt)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    ;;
resume)
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start </dev/null >/dev/null 2>"$dir/pg_ctl.err" \
        || { cat "$dir/pg_ctl.err" >&2; exit 1; }
    ;;
restart)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart </dev/null >/dev/null 2>"$dir/pg_ctl.err" \
        || { cat "$dir/pg_ctl.err" >&2; exit 1; }
    ;;
stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*) echo "usage: $0 start|stop|restart|halt|resume DIR [PORT]" >&2; exit 64 ;;
esac
