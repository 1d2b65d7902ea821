#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL and Redis for `make run` and `make test`.
#
#   services.sh start DIR   start both (or reuse running ones) with their data under DIR,
#                           then write DIR/services.env with DATABASE_URL and REDIS_URL
#   services.sh stop DIR    stop both
#
# Both listen on 127.0.0.1 only, on free ports chosen at first start, with generated passwords.
# PostgreSQL refuses to run as root, so under root it runs as the `postgres` account.
set -euo pipefail

die() { echo "services: $*" >&2; exit 1; }

# die_with_log fails with message $1 and the end of log file $2, since callers such as the
# benchmark may remove the folder that contains the log.
die_with_log() {
	echo "services: $1; the end of $2:" >&2
	tail -n 20 "$2" >&2 2>/dev/null
	exit 1
}

apt_install() {
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		die "missing $1: install the Debian packages '$2' (apt-get install -y $2)"
	fi
	echo "services: installing $2 for $1" >&2
	if ! { apt-get install -y -qq $2 >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $2 >/dev/null; }; }; then
		die "could not install $2; install it by hand (apt-get install -y $2)"
	fi
}

pg_bindir() {
	local dir
	dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
		apt_install "the PostgreSQL server" "postgresql"
		dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	fi
	[ -x "$dir/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
	echo "$dir"
}

redis_bin() {
	command -v redis-server >/dev/null || apt_install "redis-server" "redis-server"
	command -v redis-server
}

free_port() {
	local port
	for _ in $(seq 1 200); do
		# Below Linux's default range of local ports for outgoing connections (32768 and up),
		# which a listener cannot bind while a connection uses them.
		port=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	die "no free port found on 127.0.0.1"
}

new_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# as_pg runs a command as the PostgreSQL owner: the `postgres` account under root, else the caller.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# pg_dir picks the data folder: DIR/postgres, unless the `postgres` account cannot reach DIR
# (a clone in a private home folder), then a folder under /var/tmp named after DIR.
pg_dir() {
	local dir="$1/postgres"
	if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$1"; then
		dir="/var/tmp/estela-postgres-$(echo -n "$1" | md5sum | cut -c1-12)"
	fi
	echo "$dir"
}

start_postgres() {
	local dir="$1" bindir pgdata port password
	bindir=$(pg_bindir)
	pgdata=$(pg_dir "$dir")
	if [ ! -f "$pgdata/PG_VERSION" ]; then
		mkdir -p "$pgdata"
		password=$(new_secret)
		echo "$password" >"$dir/postgres.password"
		chmod 600 "$dir/postgres.password"
		install -m 600 "$dir/postgres.password" "$pgdata.pwfile"
		[ "$(id -u)" -eq 0 ] && chown postgres "$pgdata" "$pgdata.pwfile"
		chmod 700 "$pgdata"
		as_pg "$bindir/initdb" -D "$pgdata" -U estela --auth=scram-sha-256 --pwfile="$pgdata.pwfile" \
			-E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || die_with_log "initdb failed" "$dir/initdb.log"
		rm -f "$pgdata.pwfile"
		free_port >"$dir/postgres.port"
	fi
	port=$(cat "$dir/postgres.port")
	if ! as_pg "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
		as_pg "$bindir/pg_ctl" -D "$pgdata" -w -t 60 -l "$pgdata/server.log" \
			-o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c max_connections=300 -c fsync=${ESTELA_PG_FSYNC:-on}" \
			start >/dev/null || die_with_log "PostgreSQL did not start" "$pgdata/server.log"
	fi
}

start_redis() {
	local dir="$1" bin port
	bin=$(redis_bin)
	[ -f "$dir/redis.port" ] || free_port >"$dir/redis.port"
	[ -f "$dir/redis.password" ] || { new_secret >"$dir/redis.password"; chmod 600 "$dir/redis.password"; }
	port=$(cat "$dir/redis.port")
	if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
		return
	fi
	# The password goes through a config file so that it does not show in the process list.
	printf 'requirepass %s\n' "$(cat "$dir/redis.password")" >"$dir/redis.conf"
	chmod 600 "$dir/redis.conf"
	"$bin" "$dir/redis.conf" --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$dir" \
		--pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no >/dev/null \
		|| die_with_log "redis-server did not start" "$dir/redis.log"
	for _ in $(seq 1 50); do
		[ -f "$dir/redis.pid" ] && return
		sleep 0.1
	done
	die_with_log "redis-server did not write its pid file" "$dir/redis.log"
}

write_env() {
	local dir="$1"
	umask 077
	cat >"$dir/services.env" <<ENV
DATABASE_URL=postgres://estela:$(cat "$dir/postgres.password")@127.0.0.1:$(cat "$dir/postgres.port")/postgres?sslmode=disable
REDIS_URL=redis://:$(cat "$dir/redis.password")@127.0.0.1:$(cat "$dir/redis.port")/0
ENV
}

stop_all() {
	local dir="$1" pgdata bindir pid stopped=""
	pgdata=$(pg_dir "$dir")
	if [ -f "$pgdata/postmaster.pid" ]; then
		bindir=$(pg_bindir)
		as_pg "$bindir/pg_ctl" -D "$pgdata" -m fast stop >/dev/null || true
		stopped="Postgres"
	fi
	if [ -f "$dir/redis.pid" ]; then
		pid=$(cat "$dir/redis.pid")
		kill "$pid" 2>/dev/null || true
		# Redis writes its last log lines after the signal: wait, so that a caller that
		# removes the folder next does not race with them.
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		rm -f "$dir/redis.pid"
		stopped="${stopped:+$stopped and }Redis"
	fi
	echo "services: ${stopped:-nothing was running}${stopped:+ stopped} in $dir" >&2
}

[ $# -eq 2 ] || die "usage: services.sh start|stop DIR"
mkdir -p "$2"
dir=$(cd "$2" && pwd)
case "$1" in
start)
	start_postgres "$dir"
	start_redis "$dir"
	write_env "$dir"
	;;
stop) stop_all "$dir" ;;
*) die "unknown command $1; use start or stop" ;;
esac
