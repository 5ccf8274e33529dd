#!/usr/bin/env bash
# make run as the README says: builds, serves on PORT with a default repository under
# STATE_DIR, prints the backend block, and leaves no process behind after SIGTERM to make.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/servers.sh"

# start_run OUT [make variables...]: make run in the background on a free port (PORT) with
# STATE_DIR=$state, its output in OUT, its pid in MAKE_PID; succeeds once it printed the block.
start_run() {
	local out=$1
	shift
	port=$(free_port)
	: >"$out"
	(cd "$ROOT" && exec make --no-print-directory run PORT="$port" STATE_DIR="$state" BUILD="${BUILD:-build}" "$@") \
		>"$out" 2>&1 &
	MAKE_PID=$!
	wait_for 60 "make run" grep -q 'unlock_address' "$out"
}
# stop_run: SIGTERM to make, as an operator's Ctrl-C; succeeds when make run ended.
stop_run() {
	kill -TERM "$MAKE_PID"
	wait_for 20 "make run to stop" eval "! kill -0 $MAKE_PID" || { kill -KILL "$MAKE_PID"; wait "$MAKE_PID" 2>/dev/null; return 1; }
	wait "$MAKE_PID" 2>/dev/null
	return 0
}

state=$T_DIR/run-state
if start_run "$T_DIR/run.out"; then
	pass "make run starts and prints the backend block"
else
	fail "make run starts and prints the backend block" "$(tail -20 "$T_DIR/run.out")"
fi
check "the printed address is on 127.0.0.1:$port" grep -q "address *= \"http://127.0.0.1:$port/tfgit?" "$T_DIR/run.out"
check "the default repository was created under STATE_DIR" test -f "$state/repo.git/HEAD"
addr=$(sed -n 's/^ *address *= "\(.*\)"$/\1/p' "$T_DIR/run.out")
URL=${addr%%\?*}
req LOCK "${addr#*\?}" --data '{"ID":"run-1"}'
check "it serves LOCK" expect_eq code 200 "$CODE"
req POST "${addr#*\?}&ID=run-1" --data '{"version":4,"serial":1,"lineage":"t"}'
check "it serves POST into the default repository" expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$(g "$state/repo.git" show master:default.tfstate)"
# failed_request QUERY: a POST of a state that is not locked (428); its X-Request-Id in FAIL_ID
failed_request() {
	FAIL_ID=$(curl -s -D - -o /dev/null -X POST --data '{"version":4,"serial":1,"lineage":"f"}' "$URL?$1" |
		sed -n 's/^X-Request-Id: \([0-9a-f]*\)\r$/\1/Ip')
}
failed_request "state=unlocked.tfstate"
# the tfgit command make run prints for its stack, run as printed: it sees the stack's state
admin=$(sed -n '/^The tfgit command (README: Operating it) for this stack:$/{n;s/^  //;p}' "$T_DIR/run.out")
check "make run prints the tfgit command of its stack" eval "[ -n \"\$admin\" ]"
admin_out=$(eval "$admin" 2>&1)
check "... which, run as printed, lists the state it serves" \
	eval "grep -q '^default.tfstate ' <<<\"\$admin_out\" || { echo \"\$admin: \$admin_out\"; false; }"
# listed OUT ID STATE: make run's output OUT lists, under the failures' heading, the 428 of ID on STATE
listed() {
	sed -n '/requests that failed while it served/,$p' "$1" |
		grep -qE "$2 +POST +428 +$3 .*state $3 must be locked before it is written" || { tail -8 "$1"; return 1; }
}
# the processes of this make run: nginx names STATE_DIR on its command line, the pool in its
# environment (FCGI_SOCKET)
run_pids() {
	pgrep -f "$state/nginx.conf"
	for e in /proc/[0-9]*/environ; do
		grep -qsz "^FCGI_SOCKET=$state/" "$e" && echo "${e//[^0-9]/}"
	done
}
before=$(run_pids | wc -l)
check "make run started nginx and the pool (supervisor and workers)" eval "[ $before -ge 4 ]"
check "SIGTERM to make stops make run" stop_run
check "... and lists the requests that failed while it served: the 428's id, state and message" \
	listed "$T_DIR/run.out" "$FAIL_ID" unlocked.tfstate
check "... with no line for the requests that succeeded (LOCK, POST)" \
	eval "[ \$(sed -n '/requests that failed while it served/,\$p' '$T_DIR/run.out' | grep -c ' POST \| LOCK ') = 1 ]"
check "no process of make run is left" expect_eq left "" "$(run_pids | tr '\n' ' ')"
check "nothing listens on $port any more" eval "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
# a second make run on the same STATE_DIR (the default one is always the same): what the
# first left there (its socket) must not pass for the new pool's
if start_run "$T_DIR/run2.out"; then
	URL=http://127.0.0.1:$port/tfgit
	req GET "${addr#*\?}"
	check "make run again on the same STATE_DIR serves" expect_eq code 200 "$CODE"
else
	fail "make run again on the same STATE_DIR serves" "$(tail -5 "$T_DIR/run2.out")"
fi
stop_run
check "... stopped, it says no request failed while it served (the first run's failure is not this one's)" \
	eval "grep -qx 'make run: no request failed while it served.' '$T_DIR/run2.out' && ! grep -q '$FAIL_ID' '$T_DIR/run2.out'"

# behind an ACL that grants anonymous nothing, then behind basic auth too (issue 18): make run
# starts (its probe is the pool's health address, not an anonymous GET of the state) and says
# what a client will meet
printf 'alice  all  *  *\n' >"$T_DIR/run.acl"
htpasswd_line alice Al-pass-1 >"$T_DIR/run.htpasswd"
printf 'auth_basic "tfgit";\nauth_basic_user_file %s;\n' "$T_DIR/run.htpasswd" >"$T_DIR/run-auth.conf"
chmod 644 "$T_DIR/run.acl" "$T_DIR/run.htpasswd" "$T_DIR/run-auth.conf"
export TFGIT_ACL_FILE=$T_DIR/run.acl
if start_run "$T_DIR/run-acl.out"; then
	pass "make run with an ACL granting anonymous nothing starts and prints the block"
	URL=http://127.0.0.1:$port/tfgit
	check "... its health address answers" expect_eq code 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
	req GET "${addr#*\?}"
	check "... an anonymous GET is the ACL's 403" expect_eq code 403 "$CODE"
	check "... make run said so: the ACL must grant anonymous what Terraform needs, nothing authenticates" \
		grep -q "refused (403): an anonymous request may not read state default.tfstate.*every request is anonymous" \
		<<<"$(tr '\n' ' ' <"$T_DIR/run-acl.out")"
else
	fail "make run with an ACL granting anonymous nothing starts and prints the block" "$(tail -8 "$T_DIR/run-acl.out")"
fi
stop_run
if start_run "$T_DIR/run-auth.out" NGINX_INCLUDE="$T_DIR/run-auth.conf"; then
	pass "make run with basic auth (NGINX_INCLUDE) and the ACL starts and prints the block"
	URL=http://127.0.0.1:$port/tfgit
	req GET "${addr#*\?}"
	check "... a GET without credentials is nginx's 401" expect_eq code 401 "$CODE"
	check "... make run said requests need credentials" \
		grep -q "^Requests need credentials: nginx answers 401 without them (auth_basic in $T_DIR/run-auth.conf)" "$T_DIR/run-auth.out"
	q="type=git&ref=master&state=auth.tfstate"
	req LOCK "$q" -u alice:Al-pass-1 --data '{"ID":"run-auth"}'
	codes=$CODE
	req POST "$q&ID=run-auth" -u alice:Al-pass-1 --data '{"version":4,"serial":1,"lineage":"a"}'
	codes="$codes $CODE"
	req GET "$q" -u alice:Al-pass-1
	check "... alice (granted by the ACL) is served: LOCK, POST, GET 200" \
		expect_eq "codes and state" '200 200 200 {"version":4,"serial":1,"lineage":"a"}' "$codes $CODE $BODY"
	health=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/.tfgit-ready/health?deep=1&state=auth.tfstate")
	check "... the probe's address answers without credentials, the pool's health and nothing else" \
		eval "grep -q '\"status\":\"ok\"}.* 200\$' <<<'$health' && ! grep -q lineage <<<'$health'"
	check "... while /tfgit/health stays behind the auth" \
		expect_eq code 401 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
else
	fail "make run with basic auth (NGINX_INCLUDE) and the ACL starts and prints the block" "$(tail -8 "$T_DIR/run-auth.out")"
fi
stop_run
unset TFGIT_ACL_FILE
check "make run's start-up probe left no line in nginx's error output" \
	eval "! grep -hE '\[(error|warn|crit|alert|emerg)\]' '$T_DIR'/run*.out"

# a STATE_DIR the pool's user cannot reach (inside a 0700 directory, as under /root): make run
# says so and stops, instead of printing a block whose every request would be a 502
if [ "$(id -u)" -eq 0 ]; then
	mkdir -m 700 "$T_DIR/closed"
	port=$(free_port)
	if (cd "$ROOT" && exec timeout 60 make --no-print-directory run PORT="$port" \
		STATE_DIR="$T_DIR/closed/state" BUILD="${BUILD:-build}") >"$T_DIR/closed.out" 2>&1; then
		fail "make run with an unreachable STATE_DIR fails" "$(tail -5 "$T_DIR/closed.out")"
	else
		pass "make run with an unreachable STATE_DIR fails"
	fi
	check "it says which user cannot reach STATE_DIR and how to fix it" \
		grep -q "cannot reach STATE_DIR=$T_DIR/closed/state.*make run STATE_DIR=" "$T_DIR/closed.out"
	check "it printed no backend block" eval "! grep -q unlock_address '$T_DIR/closed.out'"
	# a STATE_DIR another user made first (in /var/tmp, say), or a symlink: refused
	mkdir -m 777 "$T_DIR/theirs"
	chown nobody "$T_DIR/theirs"
	ln -s "$T_DIR/theirs" "$T_DIR/link"
	for sd in theirs link; do
		if (cd "$ROOT" && exec timeout 60 make --no-print-directory run PORT="$(free_port)" \
			STATE_DIR="$T_DIR/$sd" BUILD="${BUILD:-build}") >"$T_DIR/$sd.out" 2>&1; then
			fail "make run refuses a STATE_DIR that is $sd" "$(tail -5 "$T_DIR/$sd.out")"
		else
			check "make run refuses a STATE_DIR that is $sd, saying why" \
				grep -q "STATE_DIR=$T_DIR/$sd \(must belong to you\|is a symlink\)" "$T_DIR/$sd.out"
		fi
	done
	check "... and wrote nothing into it" expect_eq files "" "$(ls -A "$T_DIR/theirs")"
else
	skip "make run with an unreachable STATE_DIR fails" "needs root (the pool drops to another user)"
fi

# --- make run as a normal user (issue 20): nginx and spawn-fcgi found in /usr/sbin though a
# user's PATH lacks it; a missing program fails at once, saying which ------------------------
USER_PATH=/usr/local/bin:/usr/bin:/bin # a normal user's PATH: no sbin
as_user=()
if [ "$(id -u)" -eq 0 ]; then
	RUN_USER=tfgit-run-test
	id "$RUN_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
	trap 'userdel "$RUN_USER" 2>/dev/null; cleanup' EXIT
	as_user=(setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --clear-groups --)
else
	RUN_USER=$(id -un)
fi
# the user's own copy of the tree and of the build (mtimes kept: make has nothing to rebuild),
# its home and its STATE_DIR: a clone under /root is out of its reach
home=$T_DIR/user
install -d -m 755 -o "$RUN_USER" "$home" "$home/src"
b=${BUILD:-build}
(cd "$ROOT" && tar cf - Makefile spawn-fcgi.conf scripts nginx core fcgi cli "$b/tfgit" "$b/tfgit.fcgi" "$b/core" "$b/fcgi" "$b/cli") |
	"${as_user[@]}" tar xf - -C "$home/src"
# user_run OUT [VAR=value...]: make run as RUN_USER with a user's PATH, on a free port, its
# STATE_DIR under its home; MAKE_PID is make's pid (the subshell execs into it)
user_run() {
	local out=$1
	shift
	port=$(free_port)
	# CFLAGS kept when set (make sanitize): what make rebuilds for this user (settings.o, when
	# the stamp of SYSCONFDIR is not the copied build's) is built as the rest of it was
	(cd "$home/src" && exec "${as_user[@]}" env -i PATH=$USER_PATH HOME="$home" ${CFLAGS:+CFLAGS="$CFLAGS"} "$@" \
		make --no-print-directory run PORT="$port" STATE_DIR="$home/state" BUILD="$b") >"$out" 2>&1 &
	MAKE_PID=$!
}
state=$home/state
user_run "$T_DIR/user.out"
wait_for 60 "make run as $RUN_USER" eval "grep -q unlock_address '$T_DIR/user.out' || ! kill -0 $MAKE_PID"
if grep -q unlock_address "$T_DIR/user.out"; then
	pass "make run as $RUN_USER (PATH=$USER_PATH) starts and prints the backend block"
else
	fail "make run as $RUN_USER (PATH=$USER_PATH) starts and prints the backend block" "$(tail -20 "$T_DIR/user.out")"
fi
URL=http://127.0.0.1:$port/tfgit
req LOCK "state=user.tfstate" --data '{"ID":"u-1"}'
codes=$CODE
req POST "state=user.tfstate&ID=u-1" --data '{"version":4,"serial":1,"lineage":"u"}'
check "... it serves: LOCK, POST 200 into its default repository" \
	expect_eq "codes and state" '200 200 {"version":4,"serial":1,"lineage":"u"}' "$codes $CODE $(g "$state/repo.git" show master:user.tfstate)"
check "... nginx and the pool run as $RUN_USER" \
	eval "[ \"\$(run_pids | xargs -r ps -o uid= -p | sort -u | tr -d ' ')\" = '$(id -u "$RUN_USER")' ]"
check "... no 'command not found'" eval "! grep -q 'not found' '$T_DIR/user.out'"
failed_request "state=user-unlocked.tfstate"
check "SIGTERM to make stops it" stop_run
check "... and it lists the request that failed (its own tfgit failures, as $RUN_USER)" \
	listed "$T_DIR/user.out" "$FAIL_ID" user-unlocked.tfstate
check "... and no process of it is left" expect_eq left "" "$(run_pids | tr '\n' ' ')"
start=$SECONDS
user_run "$T_DIR/nonginx.out" NGINX="$home/no-such-nginx"
wait_for 9 "make run to fail" eval "! kill -0 $MAKE_PID"
fast=$?
wait "$MAKE_PID"
rc=$?
check "make run with no nginx (NGINX names none) fails at once (exit $rc), not after a 10 s wait" \
	eval "[ $fast = 0 ] && [ $rc != 0 ]"
check "... saying which program is missing and how to get it (took $((SECONDS - start)) s)" \
	grep -q "nginx not found (NGINX=$home/no-such-nginx; .*apt-get install nginx" "$T_DIR/nonginx.out"
check "... printing no backend block, leaving no process" \
	eval "! grep -q unlock_address '$T_DIR/nonginx.out' && [ -z \"\$(run_pids)\" ]"
finish
