#!/usr/bin/env bash
# One throwaway PostgreSQL cluster that accepts TLS connections only, for the TLS tests. Its
# state, certificates and log are under DIR.
#
#   scripts/pg-node.sh start DIR PORT   make a CA and a server certificate for `localhost`
#                                        (DIR/ca.pem), a second CA that signed nothing
#                                        (DIR/other-ca.pem), initdb once, start with ssl=on and
#                                        pg_hba allowing `hostssl` only; wait until it answers
#   scripts/pg-node.sh stop DIR
#
# Uses Debian's PostgreSQL binaries (scripts/stack.sh installs them) and openssl.
source "$(dirname "$0")/lib.sh"

usage() { die "usage: scripts/pg-node.sh start DIR PORT | stop DIR"; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

start() {
  local dir=$1 port=$2 bin
  bin="$(pg_bin)"
  [[ -x "$bin/initdb" ]] || die "no PostgreSQL binaries under /usr/lib/postgresql; run scripts/stack.sh up first"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  test_certificates "$dir"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_pg_user "$dir" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
    printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n' \
      >"$dir/data/pg_hba.conf"
  fi
  as_pg_user "$dir" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -o \
    "-p $port -k $dir -c listen_addresses=localhost -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
    start >/dev/null || die "PostgreSQL did not start; see $dir/postgres.log"
}

stop() {
  local dir=$1 bin
  bin="$(pg_bin)"
  [[ -f "$dir/data/postmaster.pid" ]] || return 0
  as_pg_user "$dir" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
}

case "${1:-}" in
  start) [[ $# -eq 3 ]] || usage; start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  *) usage ;;
esac
