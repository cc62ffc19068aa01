#!/bin/bash
# Entry point of phantom-sync's offline PostgreSQL image. It keeps the contract
# of the official image: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB /
# POSTGRES_HOST_AUTH_METHOD / POSTGRES_INITDB_ARGS, scripts in
# /docker-entrypoint-initdb.d, extra arguments handed to `postgres`, and the
# line "database system is ready to accept connections" on stdout during
# initialisation and on stderr once the final server is up.
set -Eeuo pipefail

BAKED=/opt/phantom-sync/baked
BAKED_PASSWORD=postgres

bake() {
    local pwfile
    pwfile=$(mktemp)
    printf '%s\n' "$BAKED_PASSWORD" > "$pwfile"
    initdb --pgdata="$BAKED" --username=postgres --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    listen_everywhere "$BAKED"
}

# As in the official image, the server listens on every interface.
listen_everywhere() {
    printf "\nlisten_addresses = '*'\n" >> "$1/postgresql.conf"
}

has_init_scripts() {
    compgen -G '/docker-entrypoint-initdb.d/*' >/dev/null
}

# The baked cluster fits only the default credentials and no init scripts.
can_use_baked() {
    [ -f "$BAKED/PG_VERSION" ] || return 1
    [ "${POSTGRES_USER:-postgres}" = postgres ] || return 1
    [ "${POSTGRES_DB:-postgres}" = postgres ] || return 1
    [ -z "${POSTGRES_INITDB_ARGS:-}" ] || return 1
    has_init_scripts && return 1
    [ "${POSTGRES_PASSWORD:-}" = "$BAKED_PASSWORD" ] || [ "${POSTGRES_HOST_AUTH_METHOD:-}" = trust ]
}

host_auth_method() {
    if [ -n "${POSTGRES_HOST_AUTH_METHOD:-}" ]; then
        echo "$POSTGRES_HOST_AUTH_METHOD"
    else
        echo scram-sha-256
    fi
}

run_init_scripts() {
    local f
    local psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc --dbname "$POSTGRES_DB")
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)     echo "$0: running $f"; . "$f" ;;
            *.sql)    echo "$0: running $f"; "${psql[@]}" -f "$f"; echo ;;
            *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql[@]}"; echo ;;
            *)        echo "$0: ignoring $f" ;;
        esac
    done
}

initialise() {
    export POSTGRES_USER="${POSTGRES_USER:-postgres}"
    export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
        echo >&2 'error: database is uninitialized and superuser password is not specified.'
        echo >&2 '       Set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without one.'
        exit 1
    fi
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    if can_use_baked; then
        cp -a "$BAKED/." "$PGDATA/"
        echo "$PGDATA initialised from the cluster baked into the image; database system is ready to accept connections"
    else
        local pwfile
        pwfile=$(mktemp)
        printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
        # shellcheck disable=SC2086
        initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
            --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-}
        rm -f "$pwfile"
        listen_everywhere "$PGDATA"
    fi
    printf '\nhost all all all %s\n' "$(host_auth_method)" >> "$PGDATA/pg_hba.conf"
    if [ ! -f "$BAKED/PG_VERSION" ] || ! can_use_baked; then
        pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
        if [ "$POSTGRES_DB" != postgres ]; then
            echo 'CREATE DATABASE :"db";' | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
                --no-password --no-psqlrc --dbname postgres --set db="$POSTGRES_DB"
        fi
        run_init_scripts
        pg_ctl -D "$PGDATA" -m fast -w stop
        echo 'PostgreSQL init process complete; ready for start up.'
    fi
}

if [ "${1:-}" = --bake ]; then
    bake
    exit 0
fi
if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
fi
# Like the official image: start as root, own the data directory (a tmpfs or a
# volume mounted by root), then carry on as the postgres user.
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    initialise
fi
exec "$@"
