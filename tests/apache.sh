# A self-contained Apache 2.4 for the tests: its own ServerRoot, pid file, logs, mutexes,
# scoreboard and mod_fcgid/mod_cgid runtime files in one directory under T_DIR, listening on
# 127.0.0.1 only, children running as the pool's user when started as root. It serves the
# shipped apache/*.conf files (Included as they are; their paths are set with Define).
# Sourced after tests/lib.sh and tests/servers.sh.

APACHE_MODULES=/usr/lib/apache2/modules

# apache_available: Apache 2.4, mod_fcgid and mod_cgid are installed.
apache_available() {
	command -v apache2 >/dev/null && [ -f "$APACHE_MODULES/mod_fcgid.so" ] &&
		[ -f "$APACHE_MODULES/mod_cgid.so" ]
}

# apache_bin DIR BIN: a copy of the tfgit binary BIN in DIR/bin that Apache's user can run
# (the build may lie in a directory it cannot reach); prints its path.
apache_bin() {
	local d=$1/bin
	mkdir -p "$d"
	chmod 755 "$d"
	install -m 755 "$2" "$d/tfgit.fcgi"
	echo "$d/tfgit.fcgi"
}

# apache_writable_dir DIR: DIR made and owned by the pool's user, 0700 (a cache, a document
# root the pool's user owns, as on a shared host).
apache_writable_dir() {
	mkdir -p "$1"
	chmod 700 "$1"
	[ "$(id -u)" -ne 0 ] || chown "$POOL_USER:$(id -gn "$POOL_USER")" "$1"
}

# apache_conf DIR PORT FILE...: writes DIR/apache2.conf, a complete configuration whose one
# virtual host on 127.0.0.1:PORT Includes each FILE, in order (a shipped apache/*.conf as it is,
# or a file of the test's own lines). APACHE_DEFINES: Define lines written before the virtual
# host; APACHE_SERVER: lines for the server config (outside the virtual host).
apache_conf() {
	local dir=$1 port=$2 f user_lines=""
	shift 2
	if [ "$(id -u)" -eq 0 ]; then
		user_lines="User $POOL_USER
Group $(id -gn "$POOL_USER")"
	fi
	{
		cat <<CONF
# written by tests/apache.sh
ServerRoot "$dir"
ServerName 127.0.0.1
DefaultRuntimeDir "$dir/run"
PidFile "$dir/run/apache2.pid"
ScoreBoardFile "$dir/run/scoreboard"
Mutex file:$dir/run default
ErrorLog "$dir/error.log"
LogLevel warn
Listen 127.0.0.1:$port
$user_lines
CONF
		local m
		for m in mpm_event authz_core authz_host authz_user authn_core authn_file auth_basic \
			alias mime env setenvif headers log_config dir fcgid cgid; do
			[ "$m" = log_config ] && continue # compiled in
			[[ " ${APACHE_SKIP_MODULES:-} " == *" $m "* ]] && continue
			echo "LoadModule ${m}_module $APACHE_MODULES/mod_$m.so"
		done
		cat <<CONF
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 1
MaxSpareThreads 32
Timeout 300
KeepAlive On
TypesConfig /etc/mime.types
FcgidIPCDir "$dir/fcgid"
FcgidProcessTableFile "$dir/run/fcgid_shm"
<IfModule cgid_module>
ScriptSock "$dir/run/cgisock"
</IfModule>
DocumentRoot "$dir/htdocs"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<FilesMatch "^\\.ht">
    Require all denied
</FilesMatch>
<Directory "$dir/htdocs">
    Require all granted
</Directory>
# a site's usual access log format, the request line (%r) with its query string; a virtual host
# that has tfgit keeps tfgit's requests out of such a log (CustomLog ... env=!tfgit)
LogFormat "%h %u %t \"%r\" %>s %b" common
${APACHE_DEFINES:-}
${APACHE_SERVER:-}
<VirtualHost 127.0.0.1:$port>
    ServerName 127.0.0.1
CONF
		for f in "$@"; do echo "    Include \"$f\""; done
		echo "</VirtualHost>"
	} >"$dir/apache2.conf"
}

# apache_start DIR FILE...: starts Apache on a free port, each FILE Included in its virtual
# host (see apache_conf), in the foreground of a background job, its logs in DIR.
# Waits until it answers (bounded), registers its pid for cleanup; sets APACHE_PORT,
# APACHE_PID and APACHE_URL (http://127.0.0.1:PORT).
apache_start() {
	local dir=$1 tries=0 port
	shift
	mkdir -p "$dir/run" "$dir/htdocs" "$dir/fcgid"
	chmod 755 "$dir" "$dir/run" "$dir/htdocs"
	[ "$(id -u)" -ne 0 ] || chown "$POOL_USER" "$dir/fcgid"
	while :; do
		port=$(free_port) || return 1
		apache_conf "$dir" "$port" "$@"
		if ! apache2 -t -f "$dir/apache2.conf" >"$dir/configtest.out" 2>&1; then
			echo "apache2 -t: $(cat "$dir/configtest.out")"
			return 1
		fi
		apache2 -f "$dir/apache2.conf" -DFOREGROUND >>"$dir/apache.out" 2>&1 &
		APACHE_PID=$!
		if wait_for 15 "Apache on port $port" \
			eval "kill -0 $APACHE_PID && curl -s -o /dev/null http://127.0.0.1:$port/"; then
			break
		fi
		stop_pid "$APACHE_PID" # the port may have been taken meanwhile: try another
		tries=$((tries + 1))
		if [ $tries -ge 3 ]; then
			echo "Apache does not start: $(tail -n 20 "$dir/error.log" "$dir/apache.out" 2>&1)"
			return 1
		fi
	done
	STACKS+=("$APACHE_PID")
	APACHE_PORT=$port
	APACHE_URL=http://127.0.0.1:$port
}

# apache_stop PID: stops an Apache started by apache_start (its children and mod_fcgid's
# processes end with it).
apache_stop() {
	stop_pid "$1"
}

# apache_children BIN: the pids of the processes running the program BIN (mod_fcgid's
# processes, CGI processes), e.g. the copy apache_bin made.
apache_children() {
	find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$1" 2>/dev/null | cut -d/ -f3
}
