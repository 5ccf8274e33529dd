# Starting and stopping one tfgit stack (the pool and nginx) with its files in one directory;
# sourced by scripts/run.sh (make run) and by the tests.
STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The user the workers run as: the pool drops to FCGI_USER when started as root.
stack_pool_user() {
	if [ "$(id -u)" -eq 0 ]; then echo "${FCGI_USER:-www-data}"; else id -un; fi
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds, at most SECONDS.
wait_for() {
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "stack: gave up waiting for $what after ${limit}s" >&2
			return 1
		fi
		sleep 0.05
	done
}

# alive PID: the process exists and is not a zombie (one nobody reaps is as good as gone);
# -PGID: some process of that group is.
alive() {
	local st
	if [[ $1 == -* ]]; then
		local p
		for p in $(pgrep -g "${1#-}"); do alive "$p" && return 0; done
		return 1
	fi
	st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]
}

# stop_pid PID: TERM, then KILL if it is still there after 10 s; reaps it.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM -- "$pid" 2>/dev/null || return 0
	if ! wait_for 10 "process $pid to stop" eval "! alive $pid"; then
		kill -KILL -- "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
}

# stack_start DIR PORT: starts the pool and nginx on 127.0.0.1:PORT in the background, with
# the socket, logs and (unless TFGIT_CACHE_DIR is set) the cache under DIR; TFGIT_CACHE_DIR set
# but empty: tfgit's own default (/dev/shm/tfgit-<uid>).
# Optional: STACK_NGINX_INCLUDE, a file included inside nginx's server { } (e.g. auth_basic);
# STACK_UMASK, the umask the pool is started with (nginx keeps the caller's).
# Sets STACK_POOL_PID, STACK_NGINX_PID and STACK_URL.
stack_start() {
	local dir=$1 port=$2 user_line=""
	# nothing checks a password without an include: nginx would still fill REMOTE_USER from any
	# Authorization: Basic header a client sends, and the ACL would trust it. Refused instead.
	local include='s|@INCLUDE@|default_type application/json; if ($http_authorization) { return 400 '"'"'{"error":"this server checks no credentials (no auth_basic in front: NGINX_INCLUDE), so it takes none: send the request without an Authorization header"}'"'"'; }|'
	mkdir -p "$dir"
	chmod 755 "$dir"
	export FCGI_SOCKET=$dir/tfgit.sock
	export TFGIT_CACHE_DIR=${TFGIT_CACHE_DIR-$dir/cache}
	if [ "$(id -u)" -eq 0 ]; then
		user_line="user ${FCGI_USER:-www-data} ${FCGI_GROUP:-www-data};"
	fi
	[ -z "${STACK_NGINX_INCLUDE:-}" ] || include="s|@INCLUDE@|include $STACK_NGINX_INCLUDE;|"
	sed -e "s|@USER@|$user_line|" -e "s|@RUN_DIR@|$dir|g" -e "s|@SOCKET@|$FCGI_SOCKET|" \
	    -e "s|@PORT@|$port|" -e "s|@ROOT@|$STACK_ROOT|" -e "$include" \
	    "$STACK_ROOT/nginx/nginx.conf.in" >"$dir/nginx.conf"
	# a socket left by an earlier run must not pass for this pool's (pool.sh removes it too,
	# but only once it runs)
	rm -f "$FCGI_SOCKET"
	# the subshell execs pool.sh: $! is the pool's pid
	( [ -z "${STACK_UMASK:-}" ] || umask "$STACK_UMASK"; exec "$STACK_ROOT/scripts/pool.sh" ) \
		>>"${STACK_POOL_LOG:-/dev/stderr}" 2>&1 &
	STACK_POOL_PID=$!
	STACK_NGINX_PID=
	if ! wait_for 10 "the pool's socket" eval "kill -0 $STACK_POOL_PID && test -S $FCGI_SOCKET"; then
		stack_stop
		return 1
	fi
	nginx -e stderr -p "$dir" -c "$dir/nginx.conf" >>"${STACK_NGINX_LOG:-/dev/stderr}" 2>&1 &
	STACK_NGINX_PID=$!
	STACK_URL=http://127.0.0.1:$port/tfgit
	if ! wait_for 10 "nginx on port $port" eval "kill -0 $STACK_NGINX_PID && curl -s -o /dev/null http://127.0.0.1:$port/.tfgit-ready"; then
		stack_stop # the port may have been taken meanwhile: the caller can try another
		return 1
	fi
}

stack_stop() {
	stop_pid "${STACK_NGINX_PID:-}"
	stop_pid "${STACK_POOL_PID:-}"
	STACK_NGINX_PID= STACK_POOL_PID=
}
