#!/usr/bin/env bash
# The shipped systemd units and make install: systemd-analyze verifies the installed units;
# systemd-socket-activate (systemd's launcher: the socket on fd 3, LISTEN_FDS=1, no systemd as
# PID 1 needed) starts the unit's ExecStart at the first connection and it serves nginx; make
# install puts every file where documented, with its mode, and keeps changed configuration.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

# install_to DESTDIR PREFIX [umask]: make install, output in $T_DIR/install.log
install_to() {
	(umask "${3:-022}" && make -C "$ROOT" --no-print-directory install BUILD="${BUILD:-build}" \
		DESTDIR="$1" PREFIX="$2") >>"$T_DIR/install.log" 2>&1
}

# ---- make install ---------------------------------------------------------------------------
D=$T_DIR/dest
check "make install DESTDIR=... PREFIX=/usr (under umask 000)" install_to "$D" /usr 000
# every file make install documents (Makefile, "make install"), with its mode
expected="755 usr/libexec/tfgit/tfgit.fcgi
755 usr/libexec/tfgit/pool.sh
755 usr/sbin/tfgit-pool
755 usr/bin/tfgit
640 etc/tfgit/spawn-fcgi.conf
640 etc/tfgit/tfgit.env
640 etc/tfgit/tfgit.conf
644 usr/share/tfgit/spawn-fcgi.conf
644 usr/share/tfgit/tfgit.conf
644 usr/share/tfgit/tfgit.env
644 usr/share/tfgit/nginx/tfgit-location.conf
644 usr/lib/systemd/system/tfgit.socket
644 usr/lib/systemd/system/tfgit.service
644 usr/lib/sysusers.d/tfgit.conf
644 usr/share/doc/tfgit/README.md"
[ -x "$BUILD_DIR/static/tfgit.fcgi" ] && expected+=$'\n'"755 usr/libexec/tfgit/tfgit-static.fcgi"
for f in "$ROOT"/apache/*; do
	[ -f "$f" ] && expected+=$'\n'"644 usr/share/tfgit/apache/${f##*/}"
done
actual=$(cd "$D" && find . -type f -printf '%m %P\n' | sort -k2)
check "every file is where documented, with its mode (and nothing else)" \
	expect_eq files "$(sort -k2 <<<"$expected")" "$actual"
check "... every directory is 755" expect_eq dirs "" "$(cd "$D" && find . -type d ! -perm 755 -printf '%m %P\n')"
check "... the binary is the build's" cmp "$D/usr/libexec/tfgit/tfgit.fcgi" "$BUILD_DIR/tfgit.fcgi"
check "no @NAME@ is left in an installed text file" \
	expect_eq left "" "$(cd "$D" && grep -rlI '@[A-Z]*DIR@\|@PREFIX@' . 2>&1)"
check "the service runs the installed binary" grep -qx 'ExecStart=/usr/libexec/tfgit/tfgit.fcgi --workers ${FCGI_WORKERS}' \
	"$D/usr/lib/systemd/system/tfgit.service"
check "... with the settings in /etc/tfgit/tfgit.env" grep -qx 'EnvironmentFile=-/etc/tfgit/tfgit.env' \
	"$D/usr/lib/systemd/system/tfgit.service"
check "tfgit-pool starts pool.sh with /etc/tfgit/spawn-fcgi.conf and the installed binary" \
	eval "grep -q 'TFGIT_CONF:=/etc/tfgit/spawn-fcgi.conf' '$D/usr/sbin/tfgit-pool' &&
	      grep -q 'TFGIT_BIN:=/usr/libexec/tfgit/tfgit.fcgi' '$D/usr/sbin/tfgit-pool' &&
	      grep -q 'exec /usr/libexec/tfgit/pool.sh' '$D/usr/sbin/tfgit-pool'"
echo "# changed by the admin" >>"$D/etc/tfgit/spawn-fcgi.conf"
echo "TFGIT_DEFAULT_REF=main" >>"$D/etc/tfgit/tfgit.env"
chmod 600 "$D/etc/tfgit/tfgit.env"
printf 'stale' >"$D/usr/libexec/tfgit/tfgit.fcgi"
check "a second make install" install_to "$D" /usr
check "... keeps the changed spawn-fcgi.conf" grep -qx '# changed by the admin' "$D/etc/tfgit/spawn-fcgi.conf"
check "... and the changed tfgit.env, with its mode" \
	eval "grep -qx TFGIT_DEFAULT_REF=main '$D/etc/tfgit/tfgit.env' && [ \$(stat -c %a '$D/etc/tfgit/tfgit.env') = 600 ]"
check "... and says so" grep -q "etc/tfgit/spawn-fcgi.conf exists: kept" "$T_DIR/install.log"
check "... but replaces the binary" cmp "$D/usr/libexec/tfgit/tfgit.fcgi" "$BUILD_DIR/tfgit.fcgi"
L=$T_DIR/dest-local
install_to "$L" /usr/local
check "PREFIX=/usr/local: configuration in /usr/local/etc/tfgit, units in /usr/local/lib/systemd/system" \
	eval "test -f '$L/usr/local/etc/tfgit/spawn-fcgi.conf' &&
	      grep -qx 'EnvironmentFile=-/usr/local/etc/tfgit/tfgit.env' '$L/usr/local/lib/systemd/system/tfgit.service' &&
	      grep -qx 'ExecStart=/usr/local/libexec/tfgit/tfgit.fcgi --workers \${FCGI_WORKERS}' '$L/usr/local/lib/systemd/system/tfgit.service'"
check "make uninstall removes all but the configuration" eval "make -C '$ROOT' --no-print-directory -s uninstall \
	DESTDIR='$L' PREFIX=/usr/local >>'$T_DIR/install.log' 2>&1 &&
	[ \"\$(cd '$L' && find . -type f | sort | tr '\n' ' ')\" = './usr/local/etc/tfgit/spawn-fcgi.conf ./usr/local/etc/tfgit/tfgit.conf ./usr/local/etc/tfgit/tfgit.env ' ]"

# installed in place (no DESTDIR) under $T_DIR/pfx: the units then name files that exist
P=$T_DIR/pfx
install_to "" "$P"
UNIT=$P/lib/systemd/system/tfgit.service
SOCK_UNIT=$P/lib/systemd/system/tfgit.socket

# ---- systemd-analyze ------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null; then
	skip "systemd-analyze verify on the installed units" "systemd-analyze is not installed"
else
	# can it verify anything here? a unit that is surely valid tells
	printf '[Service]\nExecStart=/bin/true\n' >"$T_DIR/tfgit-probe.service"
	if ! probe=$(systemd-analyze verify --man=no "$T_DIR/tfgit-probe.service" 2>&1); then
		skip "systemd-analyze verify on the installed units" "it cannot verify a valid unit here: $probe"
	else
		check "systemd-analyze verify on the installed tfgit.socket and tfgit.service" \
			systemd-analyze verify --man=no "$SOCK_UNIT" "$UNIT"
		# 0 is the best, 10 the worst; systemd's own hardened units are around 1-2
		check "systemd-analyze security: the service's exposure is at most 2.0" \
			systemd-analyze security --offline=yes --threshold=20 "$UNIT"
	fi
fi
if command -v systemd-sysusers >/dev/null; then
	mkdir -p "$T_DIR/sysroot/etc"
	check "the installed sysusers.d/tfgit.conf makes the unit's User= and Group=" eval "
		systemd-sysusers --root='$T_DIR/sysroot' '$P/lib/sysusers.d/tfgit.conf' >>'$T_DIR/install.log' 2>&1 &&
		u=\$(sed -n 's/^User=//p' '$UNIT') && g=\$(sed -n 's/^Group=//p' '$UNIT') &&
		grep -q \"^\$u:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin\$\" '$T_DIR/sysroot/etc/passwd' &&
		grep -q \"^\$g:x:\" '$T_DIR/sysroot/etc/group'"
else
	skip "the installed sysusers.d/tfgit.conf makes the unit's user" "systemd-sysusers is not installed"
fi
check "the socket is for nginx's group only (SocketGroup=www-data, SocketMode=0660)" \
	eval "grep -qx SocketGroup=www-data '$SOCK_UNIT' && grep -qx SocketMode=0660 '$SOCK_UNIT'"
check "... and handed over on fd 3 (no StandardInput=socket)" \
	eval "! grep -q '^StandardInput=socket' '$UNIT' && grep -qx Sockets=tfgit.socket '$UNIT'"
check "the service stops after the pool's 30 s grace" \
	eval "[ \$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' '$UNIT') -gt 30 ]"

# ---- socket activation ----------------------------------------------------------------------
# nginx_front NAME SOCKET: nginx (nginx/nginx.conf.in, as scripts/stack.sh fills it in) on a free
# port in front of the FastCGI socket SOCKET; sets URL. The probe on / does not touch SOCKET.
nginx_front() {
	local d=$T_DIR/nginx-$1 port tries=0 user_line=""
	mkdir -p "$d"
	chmod 755 "$d"
	[ "$(id -u)" -ne 0 ] || user_line="user $POOL_USER $(id -gn "$POOL_USER");"
	while :; do
		port=$(free_port)
		sed -e "s|@USER@|$user_line|" -e "s|@RUN_DIR@|$d|g" -e "s|@SOCKET@|$2|" -e "s|@PORT@|$port|" \
			-e "s|@ROOT@|$ROOT|" -e '/@INCLUDE@/d' "$ROOT/nginx/nginx.conf.in" >"$d/nginx.conf"
		nginx -e stderr -p "$d" -c "$d/nginx.conf" >>"$T_DIR/nginx.log" 2>&1 &
		local pid=$!
		STACKS+=("$pid")
		wait_for 10 "nginx on $port" eval "kill -0 $pid && curl -s -o /dev/null http://127.0.0.1:$port/" && break
		stop_pid "$pid"
		tries=$((tries + 1))
		[ $tries -lt 3 ] || { fail "nginx starts in front of $2" "$(tail -n 20 "$T_DIR/nginx.log")"; exit 1; }
	done
	URL=http://127.0.0.1:$port/tfgit
}

# activate NAME COMMAND...: systemd-socket-activate listening on $T_DIR/NAME/tfgit.sock, as the
# pool's user (the unit's User=), passing COMMAND only the settings in SETTINGS (as the unit's
# Environment= would) and the checkers' options of make sanitize; COMMAND runs at the first
# connection. Sets SOCK and LAUNCHER (its pid: the launcher execs COMMAND in place, as its
# LISTEN_PID says).
activate() {
	local name=$1
	shift
	local d=$T_DIR/$name envs=() kv
	mkdir -p "$d"
	chown "$POOL_USER" "$d"
	SOCK=$d/tfgit.sock
	for kv in "${SETTINGS[@]}"; do envs+=(-E "$kv"); done
	for kv in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do [ -z "${!kv:-}" ] || envs+=(-E "$kv"); done
	local as=()
	[ "$(id -u)" -ne 0 ] || as=(setpriv --reuid="$POOL_USER" --regid="$(id -g "$POOL_USER")" --init-groups --)
	(cd / && exec "${as[@]}" systemd-socket-activate -l "$SOCK" "${envs[@]}" -E TFGIT_CACHE_DIR="$d/cache" "$@") \
		>>"$T_DIR/pool.log" 2>&1 &
	LAUNCHER=$!
	STACKS+=("$LAUNCHER")
	wait_for 10 "systemd-socket-activate's socket" eval "kill -0 $LAUNCHER && test -S $SOCK"
}

if ! command -v systemd-socket-activate >/dev/null; then
	skip "socket activation" "systemd-socket-activate is not installed (Debian's systemd package)"
	finish
	exit
fi
# the unit's command line, ${FCGI_WORKERS} as its Environment= would give it (2 here)
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
read -ra CMD <<<"${exec_start//'${FCGI_WORKERS}'/2}"
check "ExecStart names the installed binary" expect_eq binary "$P/libexec/tfgit/tfgit.fcgi" "${CMD[0]}"

R=$(new_remote systemd)
SETTINGS=(TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_REMOTE_TIMEOUT=20)
activate sd "${CMD[@]}" || { fail "systemd-socket-activate listens" "$(tail -n 20 "$T_DIR/pool.log")"; exit 1; }
pass "systemd-socket-activate listens on the socket"
nginx_front sd "$SOCK"
check "... and starts nothing before the first connection" \
	expect_eq process systemd-socket-activate "$(readlink /proc/$LAUNCHER/exe | xargs basename)"
STATE='{"version":4,"serial":1,"lineage":"systemd"}'
req LOCK "state=sd.tfstate" --data '{"ID":"sd-1"}' --max-time 15
check "the first request starts the unit's ExecStart and is answered (LOCK 200)" expect_eq code 200 "$CODE"
req POST "state=sd.tfstate&ID=sd-1" --data "$STATE" --max-time 15
check "POST through nginx to the socket-activated pool is 200" expect_eq code 200 "$CODE"
req GET "state=sd.tfstate" --max-time 15
check "... and GET returns it" expect_eq body "$STATE" "$BODY"
check "... from the remote" expect_eq state "$STATE" "$(g "$R" show master:sd.tfstate)"
req UNLOCK "state=sd.tfstate" --data '{"ID":"sd-1"}' --max-time 15
check "UNLOCK is 200" expect_eq code 200 "$CODE"
check "the launcher's process is now tfgit.fcgi (LISTEN_PID is its pid)" \
	expect_eq exe "$P/libexec/tfgit/tfgit.fcgi" "$(readlink "/proc/$LAUNCHER/exe")"
check "... the supervisor of --workers 2" \
	wait_for 5 "two workers" eval "[ \$(pgrep -P $LAUNCHER | wc -l) -eq 2 ]"
check "... serving on fd 0, systemd's fd 3 moved there" \
	eval "readlink /proc/$LAUNCHER/fd/0 | grep -q '^socket:'"
check "... as the unit's user, not root" expect_eq user "$POOL_USER" "$(ps -o user= -p "$LAUNCHER")"
workers=$(pgrep -P "$LAUNCHER" | tr '\n' ' ')
kill -TERM "$LAUNCHER"
check "SIGTERM (KillMode=mixed: the supervisor alone) stops the pool" \
	wait_for 10 "the pool to stop" eval "! alive $LAUNCHER"
check "... and its workers" eval "for w in $workers; do ! alive \$w || exit 1; done"

# the static binary, without --workers: a single responder, socket-activated the same way
if [ -x "$BUILD_DIR/static/tfgit.fcgi" ]; then
	cp "$BUILD_DIR/static/tfgit.fcgi" "$P/libexec/tfgit/tfgit-static.fcgi"
	activate single "$P/libexec/tfgit/tfgit-static.fcgi"
	nginx_front single "$SOCK"
	req GET "state=sd.tfstate" --max-time 15
	check "the static binary without --workers, socket-activated, serves GET" expect_eq body "$STATE" "$BODY"
	check "... as a single responder (no workers)" expect_eq children 0 "$(pgrep -P "$LAUNCHER" | wc -l)"
else
	skip "the static binary, socket-activated" "$BUILD_DIR/static/tfgit.fcgi is not built (make static)"
fi

# ---- tfgit-pool: the installed spawn-fcgi pool with the installed configuration ----------------
echo "TFGIT_DEFAULT_REPOSITORY=$R" >>"$P/etc/tfgit/spawn-fcgi.conf"
install_to "" "$P"
(exec env FCGI_SOCKET="$T_DIR/pool/tfgit.sock" TFGIT_CACHE_DIR="$T_DIR/pool/cache" FCGI_WORKERS=1 \
	"$P/sbin/tfgit-pool") >>"$T_DIR/pool.log" 2>&1 &
POOL=$!
STACKS+=("$POOL")
if wait_for 10 "tfgit-pool's socket" eval "kill -0 $POOL && test -S $T_DIR/pool/tfgit.sock"; then
	nginx_front pool "$T_DIR/pool/tfgit.sock"
	req GET "state=sd.tfstate" --max-time 15
	check "the installed tfgit-pool serves with the installed spawn-fcgi.conf (kept across installs)" \
		expect_eq body "$STATE" "$BODY"
else
	fail "the installed tfgit-pool starts" "$(tail -n 20 "$T_DIR/pool.log")"
fi

# ---- one settings file for the service and the tfgit command: $(SYSCONFDIR)/tfgit/tfgit.conf ----
CONF=$P/etc/tfgit/tfgit.conf
check "make install (as root) made tfgit.conf 0640 root:www-data: the pool's group reads it" \
	expect_eq conf "640 root:www-data" "$(stat -c '%a %U:%G' "$CONF")"
check "... and said so" grep -q "0640 root:www-data: the service's group reads it" "$T_DIR/install.log"
echo "TFGIT_DEFAULT_REPOSITORY=$R" >>"$CONF"
SETTINGS=(TFGIT_REMOTE_TIMEOUT=20)
activate conf "${CMD[@]}"
nginx_front conf "$SOCK"
req GET "state=sd.tfstate" --max-time 15
check "the service with no repository in its environment reads it from the installed tfgit.conf" \
	expect_eq body "$STATE" "$BODY"
(cd / && as_pool env -i PATH=/usr/bin:/bin TFGIT_CACHE_DIR="$T_DIR/conf/cache" "$P/bin/tfgit" states) >"$T_DIR/states.out" 2>&1
check "sudo -u $POOL_USER tfgit states, its environment empty: the same file, the same repository" \
	grep -q '^sd.tfstate ' "$T_DIR/states.out"
chmod 660 "$CONF"
(cd / && as_pool env -i PATH=/usr/bin:/bin "$P/bin/tfgit" states) >"$T_DIR/states.out" 2>&1
rc=$?
check "... a tfgit.conf its group may write is refused (exit 2, naming it)" eval \
	"[ $rc = 2 ] && grep -q 'settings file $CONF must be a file .* writable by no one else' '$T_DIR/states.out'"
chmod 640 "$CONF"
finish
