#!/usr/bin/env bash
# make run as the README says: builds, serves on PORT with a default repository under
# STATE_DIR, prints the backend block, and leaves no process behind after SIGTERM to make.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
state=$T_DIR/run-state
(cd "$ROOT" && exec make --no-print-directory run PORT="$port" STATE_DIR="$state" BUILD="${BUILD:-build}") \
	>"$T_DIR/run.out" 2>&1 &
MAKE_PID=$!
if wait_for 60 "make run" grep -q 'unlock_address' "$T_DIR/run.out"; then
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
kill -TERM "$MAKE_PID"
if wait_for 20 "make run to stop" eval "! kill -0 $MAKE_PID"; then
	pass "SIGTERM to make stops make run"
else
	fail "SIGTERM to make stops make run"
	kill -KILL "$MAKE_PID"
fi
wait "$MAKE_PID" 2>/dev/null
check "no process of make run is left" expect_eq left "" "$(run_pids | tr '\n' ' ')"
check "nothing listens on $port any more" eval "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
# a second make run on the same STATE_DIR (the default one is always the same): what the
# first left there (its socket) must not pass for the new pool's
: >"$T_DIR/run2.out"
(cd "$ROOT" && exec make --no-print-directory run PORT="$port" STATE_DIR="$state" BUILD="${BUILD:-build}") \
	>"$T_DIR/run2.out" 2>&1 &
MAKE_PID=$!
if wait_for 60 "make run again" grep -q 'unlock_address' "$T_DIR/run2.out"; then
	req GET "${addr#*\?}"
	check "make run again on the same STATE_DIR serves" expect_eq code 200 "$CODE"
else
	fail "make run again on the same STATE_DIR serves" "$(tail -5 "$T_DIR/run2.out")"
fi
kill -TERM "$MAKE_PID"
wait_for 20 "make run to stop" eval "! kill -0 $MAKE_PID"
wait "$MAKE_PID" 2>/dev/null
check "make run's start-up probe left no line in nginx's error output" \
	eval "! grep -E '\[(error|warn|crit|alert|emerg)\]' '$T_DIR/run.out'"

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
finish
