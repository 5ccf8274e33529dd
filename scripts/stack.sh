# Starting and stopping one tfgit stack (the pool and nginx) with its files in one directory;
# sourced by scripts/run.sh (make run) and by the tests.
STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The user the workers run as: the pool drops to FCGI_USER when started as root.
stack_pool_user() {
	if [ "$(id -u)" -eq 0 ]; then echo "${FCGI_USER:-www-data}"; else id -un; fi
}

# stack_program NAME: the path of the program NAME (nginx, spawn-fcgi): $NGINX or $SPAWN_FCGI when
# set, else the PATH, else where Debian installs it (/usr/sbin is not on a normal user's PATH);
# fails, saying so, when there is none.
stack_program() {
	local var=${1^^} p
	var=${var//-/_}
	p=${!var:-$(PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin command -v "$1")} || true
	[ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return 0; }
	echo "stack: $1 not found (${!var:+$var=${!var}; }looked on the PATH, in /usr/local/sbin, /usr/sbin and /sbin):" \
		"install it (Debian: sudo apt-get install $1) or name it with $var=/path/to/$1" >&2
	return 1
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

# stack_output [FILE]: this shell's output (fd 1 and 2) appended to FILE; without one, both to
# its stderr as it is (not reopened by name: /dev/stderr may be a file another user owns)
stack_output() {
	if [ -n "${1:-}" ]; then exec >>"$1" 2>&1; else exec 1>&2; fi
}

# stack_start DIR PORT: starts the pool and nginx on 127.0.0.1:PORT in the background, with
# the socket, logs and (unless TFGIT_CACHE_DIR is set) the cache under DIR; TFGIT_CACHE_DIR set
# but empty: tfgit's own default (/dev/shm/tfgit-<uid>).
# Optional: STACK_NGINX_INCLUDE, a file included inside nginx's server { } (e.g. auth_basic);
# STACK_UMASK, the umask the pool is started with (nginx keeps the caller's).
# Sets STACK_POOL_PID, STACK_NGINX_PID and STACK_URL.
stack_start() {
	local dir=$1 port=$2 user_line="" nginx
	# found before anything starts: a missing program fails at once, not after a wait
	nginx=$(stack_program nginx) && SPAWN_FCGI=$(stack_program spawn-fcgi) || return 1
	export SPAWN_FCGI
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
	( [ -z "${STACK_UMASK:-}" ] || umask "$STACK_UMASK"; stack_output "${STACK_POOL_LOG:-}"
	  exec "$STACK_ROOT/scripts/pool.sh" ) &
	STACK_POOL_PID=$!
	STACK_NGINX_PID=
	# each wait ends as soon as its process is gone (its own message is above): no 10 s for nothing
	if ! wait_for 10 "the pool's socket" eval "! alive $STACK_POOL_PID || test -S $FCGI_SOCKET" ||
		! alive "$STACK_POOL_PID"; then
		echo "stack: the pool did not start (its output is above)" >&2
		stack_stop
		return 1
	fi
	( stack_output "${STACK_NGINX_LOG:-}"; exec "$nginx" -e stderr -p "$dir" -c "$dir/nginx.conf" ) &
	STACK_NGINX_PID=$!
	STACK_URL=http://127.0.0.1:$port/tfgit
	if ! wait_for 10 "nginx on port $port" eval "! alive $STACK_NGINX_PID || curl -s -o /dev/null http://127.0.0.1:$port/.tfgit-ready" ||
		! alive "$STACK_NGINX_PID"; then
		echo "stack: nginx did not start on 127.0.0.1:$port (its output is above)" >&2
		stack_stop # the port may have been taken meanwhile: the caller can try another
		return 1
	fi
}

stack_stop() {
	stop_pid "${STACK_NGINX_PID:-}"
	stop_pid "${STACK_POOL_PID:-}"
	STACK_NGINX_PID= STACK_POOL_PID=
}
