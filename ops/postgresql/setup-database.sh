#!/usr/bin/env bash
# Creates the role and the database that several hocvu hub processes share, on the PostgreSQL 15
# server of a Debian 12 database machine (docs/multi-hub.md; step by step: docs/operations.md, "Two
# hubs on PostgreSQL"). Run as root on the database machine:
#
#   ops/postgresql/setup-database.sh PASSWORD_FILE [ROLE [DATABASE]]      (defaults: hocvu hocvu)
#
# PASSWORD_FILE holds the role's password on one line, mode 0600: the same file goes to each hub as
# its [store] password_file. The password is read from the file and passed to psql through its
# standard input and environment, never on a command line (ps would show it).
#
# Safe to run again: it creates the role and the database only if they are missing, and sets the
# role's password from the file each time (so it also changes the password: then copy the file to
# every hub and restart them). It changes neither listen_addresses, TLS nor pg_hba.conf: it says
# what pg_hba.conf admits, and what is left to do.
set -euo pipefail

usage() {
    echo "usage: $0 PASSWORD_FILE [ROLE [DATABASE]]   (as root on the database machine; defaults: hocvu hocvu)" >&2
    exit 64
}
[ $# -ge 1 ] && [ $# -le 3 ] || usage
case "$1" in -h | --help) usage ;; esac
die() { echo "$0: $*" >&2; exit 1; }

role=${2:-hocvu}
database=${3:-hocvu}
# Plain lower-case identifiers only: they then mean the same in SQL, pg_hba.conf and hub.toml.
[[ $role =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "ROLE must be a lower-case name (letters, digits, _), not \"$role\""
[[ $database =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "DATABASE must be a lower-case name (letters, digits, _), not \"$database\""

[ "$(id -u)" -eq 0 ] || die "run it as root (sudo $0 …): it runs psql as the postgres user"
command -v psql >/dev/null && command -v pg_lsclusters >/dev/null || die "PostgreSQL is not installed: apt install postgresql"

[ -f "$1" ] || die "there is no password file at $1; make one, e.g. (umask 077; openssl rand -base64 32 > /root/hocvu-db-password)"
password_file=$(realpath -- "$1")
# The hub's own rule: a password file that group or others may read is refused.
mode=$(stat -c '%a' "$password_file")
(( (8#$mode & 8#077) == 0 )) || die "$password_file is readable by group or others (mode $mode): chmod 600 $password_file"
password=$(<"$password_file")
# Trimmed at both ends, as the hub trims it: a trailing newline is not part of the password.
password=${password#"${password%%[![:space:]]*}"}
password=${password%"${password##*[![:space:]]}"}
[ -n "$password" ] || die "$password_file is empty"
[[ $password != *$'\n'* ]] || die "$password_file must hold the password on one line"
[ ${#password} -ge 16 ] || echo "$0: warning: the password has ${#password} characters; 16 or more (openssl rand -base64 32) is better" >&2

# postgres may not enter root's working directory; psql would complain on every call.
cd /
as_postgres() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

as_postgres -At -c 'SELECT 1' >/dev/null 2>&1 \
    || die "cannot connect to PostgreSQL as postgres: is the cluster running? (pg_lsclusters; systemctl start postgresql@15-main)"
version=$(as_postgres -At -c 'SHOW server_version_num')
# \getenv (below) is psql 15's; the hubs are built and tested against PostgreSQL 15.
(( version >= 150000 )) || die "PostgreSQL $((version / 10000)) is too old: hocvu needs PostgreSQL 15 (Debian 12's)"
major=$((version / 10000))
# ALTER ROLE … PASSWORD would be written to the server log in clear under these settings.
log_statement=$(as_postgres -At -c 'SHOW log_statement')
case "$log_statement" in ddl | all) die "log_statement = '$log_statement' would write the password to the server log; set it to 'none' or 'mod' first" ;; esac
# pg_hba.conf's scram-sha-256 lines need the password stored as a SCRAM verifier.
encryption=$(as_postgres -At -c 'SHOW password_encryption')
[ "$encryption" = scram-sha-256 ] || die "password_encryption is '$encryption': set it to scram-sha-256 (PostgreSQL 15's default) first"

# CREATE DATABASE cannot run in a transaction: each statement runs on its own (\gexec, autocommit).
HOCVU_DB_PASSWORD=$password as_postgres -v role="$role" -v db="$database" <<'SQL'
\getenv password HOCVU_DB_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- The hubs need nothing more than to own their database: no superuser, no other databases.
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
-- Only its owner (and superusers) may connect, whatever pg_hba.conf says about other roles.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
owner=$(as_postgres -At -v db="$database" <<'SQL'
SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'db';
SQL
)
[ "$owner" = "$role" ] || echo "$0: warning: database $database already existed and belongs to $owner, not $role" >&2

# What pg_hba.conf admits for this role and database from the network, and its lines for them that
# cannot work (e.g. hostssl while ssl is off), as the server read the file at its last (re)load.
hba_rules() {
    as_postgres -At -v role="$role" -v db="$database" -v want="$1" <<'SQL'
SELECT string_agg(CASE WHEN :'want' = 'errors' THEN format('line %s: %s', line_number, error)
                       ELSE format('%s %s (%s)', type, address, auth_method) END,
                  CASE WHEN :'want' = 'errors' THEN '; ' ELSE ', ' END ORDER BY line_number)
FROM pg_hba_file_rules
WHERE (error IS NULL) = (:'want' = 'admitted') AND type LIKE 'host%' AND address IS NOT NULL
  AND address NOT IN ('127.0.0.1', '::1')
  AND user_name && ARRAY[:'role', 'all'] AND database && ARRAY[:'db', 'all'];
SQL
}
admitted=$(hba_rules admitted)
hba_errors=$(hba_rules errors)

echo "role $role (password from $password_file) and database $database (owner $owner) are ready."
if [ -n "$admitted" ]; then
    echo "pg_hba.conf admits $role to $database from: $admitted"
else
    echo "pg_hba.conf admits $role to $database from no network address yet."
fi
[ -z "$hba_errors" ] || echo "pg_hba.conf lines that cannot match yet: $hba_errors"
cat <<NEXT

Next (docs/operations.md, "Two hubs on PostgreSQL"):
  1. /etc/postgresql/$major/main/conf.d/hocvu.conf: listen_addresses, ssl = on and the server's
     certificate; then: systemctl restart postgresql@$major-main
  2. pg_hba.conf: a hostssl line per hub machine (ops/postgresql/pg_hba.conf.snippet); then:
     systemctl reload postgresql@$major-main
  3. On each hub: /etc/hocvu/db-password, a copy of $password_file (owner hocvu, mode 0600);
     the database's CA certificate in /usr/local/share/ca-certificates; [store] in
     /etc/hocvu/hub.toml (ops/postgresql/hub-a.toml.example, user = "$role", database = "$database").
  4. Once, on one hub: sudo -u hocvu hocvu hub migrate --config /etc/hocvu/hub.toml
NEXT
