#!/usr/bin/env bash
# The pool supervises itself: N workers, a dead one replaced, SIGTERM lets in-flight requests
# finish; one flock per repository lets different repositories proceed in parallel; and the
# single-responder mode for web servers that manage processes themselves.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

R=$(new_remote pool)
OTHER=$(new_remote pool2)
blackhole
HANG="git://127.0.0.1:$HOLE_PORT/hang.git"
ALLOW="$T_DIR/remotes/*.git git://127.0.0.1:*/*.git"
stack_up pool TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ALLOWED_REPOS="$ALLOW" FCGI_WORKERS=3 TFGIT_REMOTE_TIMEOUT=3
SUP=$LAST_POOL_PID
workers() { pgrep -P "$SUP" | sort | tr '\n' ' '; }
count() { pgrep -P "$SUP" | wc -l; }

check "--workers 3 starts three workers" wait_for 5 "three workers" eval "[ \$(pgrep -P $SUP | wc -l) -eq 3 ]"
before=$(workers)
victim=$(pgrep -P "$SUP" | head -1)
kill -KILL "$victim"
check "a worker killed with SIGKILL is replaced (three again within 2 s)" \
	wait_for 2 "a new worker" eval "[ \$(pgrep -P $SUP | wc -l) -eq 3 ] && ! pgrep -P $SUP | grep -qx $victim"
check "... by a new process" eval "[ '$(workers)' != '$before' ]"
req LOCK "state=a.tfstate" --data '{"ID":"p-1"}'
check "... and the pool serves" expect_eq code 200 "$CODE"

# a request that hangs on one repository does not hold up another repository
curl -s -o "$T_DIR/hang.body" -w '%{http_code}' "$URL?repository=$HANG&state=x.tfstate" >"$T_DIR/hang.code" &
HANG_CURL=$!
wait_for 5 "the hanging request to reach its remote" grep -q accepted "$T_DIR/hole.out"
req LOCK "repository=$OTHER&state=b.tfstate" --data '{"ID":"p-2"}' --max-time 10
check "another repository is served while one hangs" expect_eq code 200 "$CODE"
check "... while the hanging request is still in flight" kill -0 "$HANG_CURL"
wait "$HANG_CURL"
check "the hanging request ends in 504" expect_eq code 504 "$(cat "$T_DIR/hang.code")"

# SIGTERM: stop accepting, let the in-flight request finish, exit
: >"$T_DIR/hole.out"
curl -s -o "$T_DIR/term.body" -w '%{http_code}' "$URL?repository=$HANG&state=y.tfstate" >"$T_DIR/term.code" &
TERM_CURL=$!
wait_for 5 "the in-flight request to reach its remote" grep -q accepted "$T_DIR/hole.out"
old_workers=$(workers)
kill -TERM "$SUP"
wait "$TERM_CURL"
check "SIGTERM lets the in-flight request finish with its own answer (504, not a cut connection)" \
	expect_eq code 504 "$(cat "$T_DIR/term.code")"
check "... a JSON body from tfgit" grep -q TFGIT_REMOTE_TIMEOUT "$T_DIR/term.body"
check "the pool exits after SIGTERM" wait_for 10 "the pool to exit" eval "! alive $SUP"
check "... and so do its workers" eval "for w in $old_workers; do ! alive \$w || exit 1; done"

if [ "$(id -u)" -eq 0 ]; then
	mkdir -m 700 "$T_DIR/private"
	cp "$TFGIT_BIN" "$T_DIR/private/"
	stack_up private TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_BIN="$T_DIR/private/tfgit.fcgi"
	req GET "state=a.tfstate"
	check "a build the pool's user cannot reach (a clone under /root) still serves" expect_eq code 204 "$CODE"
else
	skip "a build the pool's user cannot reach still serves" "needs root"
fi

stack_up recycle TFGIT_DEFAULT_REPOSITORY="$R" FCGI_WORKERS=1 TFGIT_MAX_REQUESTS=3
SUP=$LAST_POOL_PID
wait_for 5 "a worker" eval "[ -n \"\$(pgrep -P $SUP)\" ]"
first=$(pgrep -P "$SUP")
codes=""
for i in 1 2 3 4 5; do req GET "state=a.tfstate"; codes="$codes$CODE "; done
check "TFGIT_MAX_REQUESTS=3: every request is served across the replacement" expect_eq codes "204 204 204 204 204 " "$codes"
check "... by a new worker after three" eval "[ -n \"\$(pgrep -P $SUP)\" ] && [ \"\$(pgrep -P $SUP)\" != $first ]"

# a single responder, as mod_fcgid runs it: the web server bounds its life, SIGTERM between
# requests ends it at once, during one after the answer
stack_up single TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ALLOWED_REPOS="$ALLOW" FCGI_WORKERS=0 \
	TFGIT_MAX_REQUESTS=2 TFGIT_REMOTE_TIMEOUT=3
ONE=$LAST_POOL_PID
check "FCGI_WORKERS=0 runs one responder without a supervisor" expect_eq children 0 "$(pgrep -P "$ONE" | wc -l)"
req UNLOCK "state=a.tfstate" --data '{"ID":"p-1"}'
check "... and it serves" expect_eq code 200 "$CODE"
req GET "state=a.tfstate"
req GET "state=a.tfstate"
check "... past TFGIT_MAX_REQUESTS (a pool's bound; the web server bounds a responder)" \
	eval "[ '$CODE' = 204 ] && alive $ONE"
: >"$T_DIR/hole.out"
curl -s -o "$T_DIR/one.body" -w '%{http_code}' "$URL?repository=$HANG&state=z.tfstate" >"$T_DIR/one.code" &
ONE_CURL=$!
wait_for 5 "the in-flight request to reach its remote" grep -q accepted "$T_DIR/hole.out"
kill -TERM "$ONE"
wait "$ONE_CURL"
check "single responder: SIGTERM during a request lets it finish with its answer (504)" \
	expect_eq code 504 "$(cat "$T_DIR/one.code")"
check "... then it exits" wait_for 5 "the responder to exit" eval "! alive $ONE"
stack_up idle TFGIT_DEFAULT_REPOSITORY="$R" FCGI_WORKERS=0
req GET "state=a.tfstate"
kill -TERM "$LAST_POOL_PID"
check "single responder: SIGTERM between requests exits at once (within 2 s)" \
	wait_for 2 "the responder to exit" eval "! alive $LAST_POOL_PID"
finish
