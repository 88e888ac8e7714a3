#!/usr/bin/env bash
# A PostgreSQL server from Debian's packages in a data directory this script owns.
#   scripts/infra/postgres.sh start|stop|status|env
# Listens on 127.0.0.1:$POSTGRES_PORT (default 25432) with database, user and password `dither`
# (scram-sha-256 over TCP). As root, the server runs as the `postgres` system user (PostgreSQL
# refuses to run as root). `env` prints the POSTGRES_* variables the services read.
source "$(dirname "$0")/common.sh"

PORT=${POSTGRES_PORT:-25432}
DIR=$RUN_DIR/postgres
DATA=$DIR/data
USER_NAME=dither
PASSWORD=dither
DB=dither

bin_dir() {
  local initdb
  initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)
  [[ -n $initdb ]] || die "PostgreSQL is not installed (scripts/setup.sh installs it)"
  dirname "$initdb"
}

# Runs a command as the server's owner.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() { [[ -f $DATA/postmaster.pid ]] && as_owner "$(bin_dir)/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  local bin
  bin=$(bin_dir)
  mkdir -p "$DIR"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$DIR"
    runuser -u postgres -- test -w "$DIR" ||
      die "postgres: the postgres user cannot reach $DIR (a parent directory is private): choose another DITHER_INFRA_RUN"
  fi
  if [[ ! -f $DATA/PG_VERSION ]]; then
    log "postgres: creating a cluster in $DATA"
    local pwfile=$DIR/pw
    echo "$PASSWORD" >"$pwfile"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$pwfile"; fi
    as_owner "$bin/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
      die "postgres: initdb failed, see $DIR/initdb.log"
    rm -f "$pwfile"
    cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 200
fsync = on
shared_buffers = 128MB
log_min_messages = warning
CONF
  fi
  if running; then
    log "postgres: already running on port $PORT"
  else
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$DIR/server.log" -o "-p $PORT" -w -t 60 start \
      >/dev/null || die "postgres: start failed, see $DIR/server.log"
  fi
  local psql=("$bin/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
  if [[ -z $(as_owner "${psql[@]}" -c "select 1 from pg_roles where rolname='$USER_NAME'") ]]; then
    as_owner "${psql[@]}" -c "create role $USER_NAME login password '$PASSWORD'" >/dev/null
  fi
  if [[ -z $(as_owner "${psql[@]}" -c "select 1 from pg_database where datname='$DB'") ]]; then
    as_owner "${psql[@]}" -c "create database $DB owner $USER_NAME" >/dev/null
  fi
  log "postgres: ready on 127.0.0.1:$PORT (database, user and password: $DB)"
}

stop() {
  if running; then
    as_owner "$(bin_dir)/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
    log "postgres: stopped"
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "postgres: running on port $PORT"; else echo "postgres: stopped"; exit 1; fi ;;
  env)
    echo "POSTGRES_HOST=127.0.0.1"
    echo "POSTGRES_PORT=$PORT"
    echo "POSTGRES_USER=$USER_NAME"
    echo "POSTGRES_PASSWORD=$PASSWORD"
    echo "POSTGRES_DB=$DB"
    ;;
  *) die "usage: postgres.sh start|stop|status|env" ;;
esac
