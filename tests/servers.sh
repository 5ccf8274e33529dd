# Real git servers on 127.0.0.1 for the remote tests, each in its own directory under T_DIR and
# stopped at exit with the stacks: smart HTTP(S) (nginx + fcgiwrap + git http-backend behind
# auth_basic), OpenSSH sshd, and a server that accepts and never answers. Sourced after lib.sh.

# as_pool COMMAND...: runs COMMAND as the user the workers run as (setpriv execs it in place,
# so a background as_pool's pid is the command's own).
as_pool() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid="$POOL_USER" --regid="$(id -g "$POOL_USER")" --init-groups -- "$@"
	else
		"$@"
	fi
}

# nginx_head DIR 'LOG FORMAT': the start of a test nginx's configuration, files under DIR, up to
# the opening of http { } and its access log in that format; the caller adds server { } and
# closes http { }.
nginx_head() {
	[ "$(id -u)" -eq 0 ] && echo "user $POOL_USER;"
	cat <<CONF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log stderr warn;
events { worker_connections 128; }
http {
    log_format test $2;
    access_log $1/access.log test;
    client_body_temp_path $1/body;
    fastcgi_temp_path $1/fastcgi;
    proxy_temp_path $1/proxy;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
CONF
}

# htpasswd_line USER PASSWORD
htpasswd_line() { echo "$1:$(openssl passwd -apr1 "$2")"; }

# make_ca: a CA and a certificate for localhost signed by it, in $T_DIR/tls.
make_ca() {
	local d=$T_DIR/tls
	[ -f "$d/ca.crt" ] && return 0
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 \
		-subj /CN=tfgit-test-ca 2>/dev/null || return 1
	openssl req -newkey rsa:2048 -nodes -keyout "$d/srv.key" -out "$d/srv.csr" \
		-subj /CN=localhost 2>/dev/null || return 1
	printf 'subjectAltName=DNS:localhost\n' >"$d/ext"
	openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-out "$d/srv.crt" -days 2 -extfile "$d/ext" 2>/dev/null || return 1
	chmod 644 "$d"/*.crt
}

# git_http_server NAME tls|plain: serves $T_DIR/NAME/repos; sets GIT_PORT and GIT_DIR_ROOT.
# Users are added with htpasswd lines in $T_DIR/NAME/htpasswd. GIT_HTTP_EXTRA, when set, is
# nginx configuration added to the server block before its git location (e.g. a location that
# redirects). GIT_HTTP_KEEPALIVE: nginx's keepalive_timeout (75s); GIT_HTTP_BACKEND: the CGI program
# in place of git http-backend (a wrapper). Each access log line ends with c=<connection number>,
# then "r" on a TLS connection that resumed a session ("." one that did not, "-" plain HTTP).
git_http_server() {
	local name=$1 mode=$2 d=$T_DIR/$1 ssl="" port
	mkdir -p "$d/repos"
	chmod 755 "$d"
	: >"$d/htpasswd"
	chmod 644 "$d/htpasswd"
	if [ "$mode" = tls ]; then
		make_ca || { fail "a test CA is made"; exit 1; }
		ssl="ssl; ssl_certificate $T_DIR/tls/srv.crt; ssl_certificate_key $T_DIR/tls/srv.key"
		chmod 644 "$T_DIR/tls/srv.key"
	fi
	# one process (no -c): a forked fcgiwrap child outlives its stopped parent
	if [ "${FCGIWRAP_CHILDREN:-1}" -gt 1 ]; then
		# forked children outlive a stopped parent: a process group of its own, stopped whole
		(umask 000; exec setsid fcgiwrap -c "$FCGIWRAP_CHILDREN" -s "unix:$d/fcgiwrap.sock") \
			>>"$d/fcgiwrap.log" 2>&1 &
		STACKS+=("-$!")
	else
		(umask 000; exec fcgiwrap -s "unix:$d/fcgiwrap.sock") >>"$d/fcgiwrap.log" 2>&1 &
		STACKS+=("$!")
	fi
	wait_for 10 "fcgiwrap" test -S "$d/fcgiwrap.sock" || { fail "fcgiwrap starts"; exit 1; }
	port=$(free_port)
	cat >"$d/nginx.conf" <<CONF
$(nginx_head "$d" "'\$msec \$request_time \$request_method \$request_uri \$status c=\$connection\$ssl_session_reused'")
    server {
        listen 127.0.0.1:$port ${ssl:+$ssl};
        client_max_body_size 0;
        keepalive_timeout ${GIT_HTTP_KEEPALIVE:-75s};
${GIT_HTTP_EXTRA:-}
        location / {
            auth_basic "git";
            auth_basic_user_file $d/htpasswd;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME ${GIT_HTTP_BACKEND:-/usr/lib/git-core/git-http-backend};
            fastcgi_param GIT_PROJECT_ROOT $d/repos;
            fastcgi_param GIT_HTTP_EXPORT_ALL "";
            fastcgi_param PATH_INFO \$uri;
            fastcgi_param REMOTE_USER \$remote_user;
            fastcgi_pass unix:$d/fcgiwrap.sock;
        }
    }
}
CONF
	nginx -e stderr -p "$d" -c "$d/nginx.conf" >>"$d/nginx.log" 2>&1 &
	STACKS+=("$!")
	local scheme=http
	[ "$mode" = tls ] && scheme=https
	wait_for 10 "the git server" curl -sk -o /dev/null "$scheme://127.0.0.1:$port/" ||
		{ fail "git server $name starts" "$(cat "$d/nginx.log")"; exit 1; }
	GIT_PORT=$port
	GIT_DIR_ROOT=$d/repos
}

# bare_repo DIR [BRANCH]: an empty bare repository (HEAD on BRANCH) the server can write.
bare_repo() {
	git init -q --bare ${2:+--initial-branch="$2"} "$1"
	git --git-dir="$1" config http.receivepack true
}

# blackhole: a port that accepts connections and never answers; sets HOLE_PORT.
blackhole() {
	HOLE_PORT=$(free_port)
	"$BUILD_DIR/tools/blackhole" "$HOLE_PORT" >>"$T_DIR/hole.out" 2>&1 &
	STACKS+=("$!")
	wait_for 10 "the blackhole" grep -q ready "$T_DIR/hole.out"
}

SSH_USER=tfgitssh
# ssh_server: OpenSSH sshd on 127.0.0.1 for SSH_USER with a client key; sets SSH_PORT,
# SSH_DIR (repos under $SSH_DIR/repos), CLIENT_KEY (readable by the pool), HOST_PUB.
# SSH_LOGLEVEL=VERBOSE makes $SSH_DIR/sshd.log name each connection ("Accepted publickey") and
# each command it runs ("Starting session: command").
ssh_server() {
	local d=$T_DIR/ssh
	SSH_DIR=$d
	mkdir -p "$d/repos" /run/sshd
	chmod 755 "$d"
	if [ "$(id -u)" -eq 0 ]; then
		id "$SSH_USER" >/dev/null 2>&1 ||
			useradd --system --create-home --home-dir "/var/lib/$SSH_USER" --shell /bin/sh "$SSH_USER"
		usermod -p '*' "$SSH_USER" # no password, but not locked: sshd refuses locked accounts
	else
		SSH_USER=$(id -un)
	fi
	ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519" -C host
	ssh-keygen -q -t ed25519 -N '' -f "$d/client_key" -C client
	ssh-keygen -q -t ed25519 -N '' -f "$d/other_key" -C other
	cp "$d/client_key.pub" "$d/authorized_keys"
	chmod 644 "$d/authorized_keys"
	[ "$(id -u)" -eq 0 ] && chown "$POOL_USER" "$d/client_key" "$d/other_key"
	CLIENT_KEY=$d/client_key
	HOST_PUB=$(cut -d' ' -f1,2 "$d/host_ed25519.pub")
	SSH_PORT=$(free_port)
	cat >"$d/sshd_config" <<CONF
ListenAddress 127.0.0.1:$SSH_PORT
HostKey $d/host_ed25519
AuthorizedKeysFile $d/authorized_keys
PidFile $d/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowUsers $SSH_USER
LogLevel ${SSH_LOGLEVEL:-ERROR}
CONF
	/usr/sbin/sshd -D -e -f "$d/sshd_config" >>"$d/sshd.log" 2>&1 &
	STACKS+=("$!")
	wait_for 10 "sshd" eval "(exec 3<>/dev/tcp/127.0.0.1/$SSH_PORT) 2>/dev/null" ||
		{ fail "sshd starts" "$(cat "$d/sshd.log")"; exit 1; }
}

# ssh_repo NAME: a bare repository the SSH user owns; prints its path.
ssh_repo() {
	local r=$SSH_DIR/repos/$1.git
	git init -q --bare "$r"
	[ "$(id -u)" -eq 0 ] && chown -R "$SSH_USER" "$r"
	echo "$r"
}

# http_stub NAME 'NGINX LINES': an nginx on 127.0.0.1 with NGINX LINES inside its server { }
# (e.g. 'return 302 http://...;'); its $T_DIR/NAME/access.log records every request with its
# Authorization header, as: METHOD URI STATUS "AUTHORIZATION". Sets STUB_PORT.
http_stub() {
	local d=$T_DIR/$1 port
	mkdir -p "$d"
	chmod 755 "$d"
	: >"$d/access.log"
	port=$(free_port)
	cat >"$d/nginx.conf" <<CONF
$(nginx_head "$d" "'\$request_method \$request_uri \$status \"\$http_authorization\"'")
    server {
        listen 127.0.0.1:$port;
        location = /stub-ready { access_log off; return 204; }
        location / { $2 }
    }
}
CONF
	nginx -e stderr -p "$d" -c "$d/nginx.conf" >>"$d/nginx.log" 2>&1 &
	STACKS+=("$!")
	wait_for 10 "the stub $1" curl -s -o /dev/null "http://127.0.0.1:$port/stub-ready" ||
		{ fail "stub $1 starts" "$(cat "$d/nginx.log")"; exit 1; }
	STUB_PORT=$port
}

# hole_accepted: how many connections the blackhole has accepted so far.
hole_accepted() { grep -c '^accepted' "$T_DIR/hole.out" 2>/dev/null; }
