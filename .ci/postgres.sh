# Sourced by .ci/run: a throwaway PostgreSQL cluster on 127.0.0.1 (a free port) for the store and
# service tests, which read its URL from FORWARDLAB_TEST_POSTGRES_URL. Runs as root on Debian 12;
# the server runs as the `postgres` user that Debian's package creates. Stopped and removed on exit.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
PG_DIR=$(mktemp -d /tmp/forwardlab-pg.XXXXXX)
chown postgres:postgres "$PG_DIR"
PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PG_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pwfile"
chown postgres:postgres "$PG_DIR/pwfile"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -E UTF8 \
  --auth=scram-sha-256 --pwfile="$PG_DIR/pwfile" >/dev/null
rm -f "$PG_DIR/pwfile"
# fsync off: a throwaway cluster trades crash safety for test speed.
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c max_connections=200" >/dev/null
stop_test_postgres() {
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap stop_test_postgres EXIT
PGPASSWORD=$PG_PASSWORD "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres forwardlab_test
export FORWARDLAB_TEST_POSTGRES_URL="postgresql+psycopg://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/forwardlab_test"
echo "test PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
