#!/usr/bin/env bash
# tools/pgbouncer.sh: a throwaway PgBouncer in transaction mode in front of
# the local PostgreSQL (127.0.0.1:5432), for the tests that run Latch
# through a pooler.
#
#   tools/pgbouncer.sh start   installs Debian's pgbouncer if missing (root),
#                              starts it on a free loopback port as the
#                              postgres user with its own ini, and prints
#                              export LATCH_TEST_PGBOUNCER_URL=postgres://...
#   tools/pgbouncer.sh stop    stops the one started from this checkout
#
# Any database name is forwarded (a "*" entry), so each test run's fresh
# database is reachable through it. Use: eval "$(tools/pgbouncer.sh start)".
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${PGBOUNCER_DIR:-/tmp/latch-pgbouncer}"

say() { echo "pgbouncer.sh: $*" >&2; }

case "${1:-}" in
start)
	if [ ! -x /usr/sbin/pgbouncer ]; then
		say "installing Debian's pgbouncer"
		sudo=""
		[ "$(id -u)" -ne 0 ] && sudo=sudo
		$sudo apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y pgbouncer >/dev/null
	fi
	if [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
		echo "export LATCH_TEST_PGBOUNCER_URL=$(cat "$dir/url")"
		exit 0
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
	echo '"postgres" ""' >"$dir/users.txt"
	cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=5432
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
max_db_connections = 40
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
	chown -R postgres "$dir" 2>/dev/null || true
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- /usr/sbin/pgbouncer -d "$dir/pgbouncer.ini"
	else
		/usr/sbin/pgbouncer -d "$dir/pgbouncer.ini"
	fi
	for _ in $(seq 1 50); do
		pg_isready -h 127.0.0.1 -p "$port" -q 2>/dev/null && break
		sleep 0.1
	done
	pg_isready -h 127.0.0.1 -p "$port" -q || { say "PgBouncer did not start; see $dir/pgbouncer.log"; tail -20 "$dir/pgbouncer.log" >&2; exit 1; }
	url="postgres://postgres@127.0.0.1:$port/postgres"
	echo "$url" >"$dir/url"
	say "transaction-mode PgBouncer on 127.0.0.1:$port"
	echo "export LATCH_TEST_PGBOUNCER_URL=$url"
	;;
stop)
	if [ -f "$dir/pgbouncer.pid" ]; then
		kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
	fi
	;;
*)
	echo "usage: tools/pgbouncer.sh start|stop" >&2
	exit 2
	;;
esac
