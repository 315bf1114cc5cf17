#!/usr/bin/env bash
# PostgreSQL for the storage tests: installed from Debian packages when missing, the
# cluster started, a role and a database created (idempotent). Prints the SQLAlchemy
# URL on standard output, everything else on standard error:
#   export SHOMEI_TEST_POSTGRES_URL="$(.ci/postgres.sh)"
# The cluster is left running: the machine may be reused, and another run on it may be
# using the same cluster (each test works in its own schema, so runs do not collide).
set -euo pipefail
exec 3>&1 1>&2

if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
fi

version="$(pg_lsclusters --no-header | awk 'NR == 1 {print $1}')"
cluster="$(pg_lsclusters --no-header | awk 'NR == 1 {print $2}')"
if [ -z "$version" ]; then
    version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    cluster=main
    pg_createcluster "$version" "$cluster" 3>&-
fi
if ! pg_lsclusters --no-header | awk -v v="$version" -v c="$cluster" \
        '$1 == v && $2 == c && $4 == "online" {found = 1} END {exit !found}'; then
    # 3>&-: the server must not inherit the caller's $(…) pipe, or the caller never
    # sees end of file and waits for ever.
    pg_ctlcluster "$version" "$cluster" start 3>&-
fi

psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -qAt $*"; }
port="$(pg_lsclusters --no-header | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $3}')"
for _ in $(seq 50); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 0.1
done

# A random password, made once per machine and kept beside the clusters (root and
# postgres only): not in the repository, and stable so concurrent runs keep working.
secret=/var/lib/postgresql/shomei-ci.password
if [ ! -s "$secret" ]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(16))' >"$secret")
fi
password="$(cat "$secret")"
if [ -z "$(psql_admin "-p $port -c \"SELECT 1 FROM pg_roles WHERE rolname = 'shomei'\"")" ]; then
    psql_admin "-p $port -c \"CREATE ROLE shomei LOGIN\""
fi
psql_admin "-p $port -c \"ALTER ROLE shomei WITH LOGIN PASSWORD '$password'\""
if [ -z "$(psql_admin "-p $port -c \"SELECT 1 FROM pg_database WHERE datname = 'shomei_test'\"")" ]; then
    psql_admin "-p $port -c \"CREATE DATABASE shomei_test OWNER shomei\""
fi

echo "postgresql+psycopg://shomei:${password}@127.0.0.1:${port}/shomei_test" >&3
