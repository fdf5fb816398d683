#!/usr/bin/env bash
# One throwaway PostgreSQL cluster of a test's own: for the TLS tests one that accepts TLS
# connections only, for the fault tests a plain one they restart and fill. Its state,
# certificates and log are under DIR.
#
#   scripts/pg-node.sh start DIR PORT   make a CA and a server certificate for `localhost`
#                                        (DIR/ca.pem), a second CA that signed nothing
#                                        (DIR/other-ca.pem), initdb once, start with ssl=on and
#                                        pg_hba allowing `hostssl` only; wait until it answers
#   scripts/pg-node.sh start DIR PORT plain
#                                        initdb once, start without TLS on 127.0.0.1, trusting
#                                        every local connection; wait until it answers
#   scripts/pg-node.sh restart DIR      stop (fast: sessions are cut) and start again
#   scripts/pg-node.sh stop DIR
#
# Uses Debian's PostgreSQL binaries (scripts/stack.sh installs them) and openssl.
source "$(dirname "$0")/lib.sh"

usage() { die "usage: scripts/pg-node.sh start DIR PORT [plain] | restart DIR | stop DIR"; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

start() {
  local dir=$1 port=$2 mode=${3:-tls} bin
  bin="$(pg_bin)"
  [[ -x "$bin/initdb" ]] || die "no PostgreSQL binaries under /usr/lib/postgresql; run scripts/stack.sh up first"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local options="-p $port -k $dir"
  if [[ $mode == plain ]]; then
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_pg_user "$dir" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
    fi
    options+=" -c listen_addresses=127.0.0.1"
  else
    test_certificates "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_pg_user "$dir" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
      printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n' \
        >"$dir/data/pg_hba.conf"
    fi
    options+=" -c listen_addresses=localhost -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
  fi
  echo "$options" >"$dir/options"
  as_pg_user "$dir" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -o "$options" start >/dev/null \
    || die "PostgreSQL did not start; see $dir/postgres.log"
}

restart() {
  local dir=$1 bin
  bin="$(pg_bin)"
  as_pg_user "$dir" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -m fast \
    -o "$(cat "$dir/options")" restart >/dev/null || die "PostgreSQL did not restart; see $dir/postgres.log"
}

stop() {
  local dir=$1 bin
  bin="$(pg_bin)"
  [[ -f "$dir/data/postmaster.pid" ]] || return 0
  as_pg_user "$dir" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
}

case "${1:-}" in
  start) [[ $# -eq 3 || $# -eq 4 ]] || usage; start "$2" "$3" "${4:-tls}" ;;
  restart) [[ $# -eq 2 ]] || usage; restart "$2" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  *) usage ;;
esac
