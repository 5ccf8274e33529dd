#!/usr/bin/env bash
# Direct pushes on kept connections (TFGIT_KEEP_CONNECTIONS): once a worker has seen a smart-HTTP
# repository, a LOCK, POST, DELETE or UNLOCK is one POST .../git-receive-pack built from the
# cache's view, without the advertisement, on a connection kept open between requests. A stale
# view (another host wrote) is refused by the server's compare-and-swap and the write is done
# again after the advertisement, with the same answer as before; a server that closes idle
# connections, or refuses a push it did not advertise for, costs a new connection or the old
# path, never an answer. The git server's access log names each request's connection.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

git_http_server githttp plain
PW='Dp-pw-22'
htpasswd_line tfuser "$PW" >>"$T_DIR/githttp/htpasswd"
ROOT_H=$GIT_DIR_ROOT PORT_H=$GIT_PORT
ACCESS=$T_DIR/githttp/access.log
bare_repo "$ROOT_H/state.git"
R=$ROOT_H/state.git
# served NAME MODE REPO: another git server (git_http_server NAME MODE, with GIT_HTTP_BACKEND or
# GIT_HTTP_KEEPALIVE as given) that lets tfuser in, and its empty repository REPO.git
served() {
	git_http_server "$1" "$2"
	htpasswd_line tfuser "$PW" >>"$T_DIR/$1/htpasswd"
	bare_repo "$GIT_DIR_ROOT/$3.git"
}
REPO=http://127.0.0.1:$PORT_H/state.git
ALLOW="http://127.0.0.1:*/*.git https://localhost:*/*.git"
CREDS=(GIT_USERNAME=tfuser GIT_PASSWORD="$PW")
# one worker per host: every request of a host meets the same kept connection
FCGI_WORKERS=1 stack_up a TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}"
URL_A=$URL
FCGI_WORKERS=1 stack_up b TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}"
URL_B=$URL
URL=$URL_A
Q="repository=$REPO&state=app.tfstate"
LOCK='{"ID":"d-1","Who":"a@ci","Operation":"OperationTypeApply"}'
metric() { curl -s "$1/metrics" | awk -v k="$2" '$1 == k {v = $2} END {print v + 0}'; }
tip() { g "$R" rev-parse -q --verify "refs/heads/$1" 2>/dev/null || echo none; }
# access log lines since the mark
acc_mark() { ACC_MARK=$(wc -l <"$ACCESS"); }
acc_since() { tail -n +$((ACC_MARK + 1)) "$ACCESS"; }
state() { printf '{"version":4,"serial":%d,"lineage":"t"}' "$1"; }

# cycle URL SERIAL: LOCK, GET, POST, UNLOCK of app.tfstate, each as expected
cycle() {
	local u=$URL
	URL=$1
	req LOCK "$Q" --data "$LOCK"; [ "$CODE" = 200 ] || { echo "LOCK $CODE $BODY"; URL=$u; return 1; }
	req GET "$Q"; [ "$CODE" = 200 ] || [ "$CODE" = 204 ] || { echo "GET $CODE $BODY"; URL=$u; return 1; }
	req POST "$Q&ID=d-1" --data "$(state "$2")"; [ "$CODE" = 200 ] || { echo "POST $CODE $BODY"; URL=$u; return 1; }
	req UNLOCK "$Q" --data "$LOCK"; [ "$CODE" = 200 ] || { echo "UNLOCK $CODE $BODY"; URL=$u; return 1; }
	URL=$u
}

# --- warm cycles: one request per write, one connection -------------------------------------
check "a first cycle (a cold worker: advertisement and push, as before)" cycle "$URL_A" 1
acc_mark
before=$(metric "$URL_A" tfgit_direct_pushes_total)
for i in 2 3 4; do check "warm cycle $i: LOCK, GET, POST, UNLOCK are 200" cycle "$URL_A" "$i"; done
check "... the state is the last one written" expect_eq state "$(state 4)" "$(g "$R" show master:app.tfstate)"
check "... and the lock is gone" expect_eq lock none "$(tip locks/app.tfstate)"
check "... nine writes, nine pushes" expect_eq pushes 9 "$(acc_since | grep -c 'POST /state.git/git-receive-pack 200')"
check "... and not one receive-pack advertisement (the writes went without it)" \
	expect_eq advertisements 0 "$(acc_since | grep -c 'service=git-receive-pack')"
check "... the three GETs were one ls-refs request each (protocol v2, the branch alone)" \
	expect_eq reads 3 "$(acc_since | grep -c 'POST /state.git/git-upload-pack 200')"
check "... and read no advertisement" expect_eq advertisements 0 "$(acc_since | grep -c 'info/refs')"
check "... all twelve requests went on one kept connection" \
	expect_eq connections 1 "$(acc_since | awk '{print $NF}' | sort -u | wc -l)"
check "... tfgit_direct_pushes_total counts the nine" \
	expect_eq direct 9 "$(($(metric "$URL_A" tfgit_direct_pushes_total) - before))"
check "... with no fallback" expect_eq fallbacks 0 "$(metric "$URL_A" tfgit_direct_push_fallbacks_total)"

# --- a stale view for each write method: the server refuses it, the answer is as before ---
# POST: host B writes (under A's lock ID) between two of A's writes
req LOCK "$Q" --data "$LOCK"
req POST "$Q&ID=d-1" --data "$(state 5)"
URL=$URL_B
req POST "$Q&ID=d-1" --data "$(state 6)"
check "host B writes under the same lock" expect_eq code 200 "$CODE"
URL=$URL_A
fb=$(metric "$URL_A" tfgit_direct_push_fallbacks_total)
acc_mark
req POST "$Q&ID=d-1" --data "$(state 7)"
check "POST with a stale tip in A's view: 200" expect_eq code 200 "$CODE"
check "... the state is A's" expect_eq state "$(state 7)" "$(g "$R" show master:app.tfstate)"
g "$R" log --format=%B master >"$T_DIR/history" # whole: grep -q would cut git log short (SIGPIPE)
check "... built on B's commit (nothing lost)" grep -q 'Serial: 6' "$T_DIR/history"
check "... the direct push was refused, then done after the advertisement" eval \
	"grep -q 'service=git-receive-pack' <<<\"\$(acc_since)\" && [ $(acc_since | grep -c 'git-receive-pack 200') -ge 2 ]"
check "... one fallback counted" expect_eq fallbacks $((fb + 1)) "$(metric "$URL_A" tfgit_direct_push_fallbacks_total)"

# DELETE: B writes again, A deletes the state from its stale view
URL=$URL_B
req POST "$Q&ID=d-1" --data "$(state 8)"
URL=$URL_A
fb=$(metric "$URL_A" tfgit_direct_push_fallbacks_total)
req DELETE "$Q&ID=d-1"
check "DELETE with a stale tip in A's view: 200" expect_eq code 200 "$CODE"
check "... the state is gone from master" eval "! g '$R' cat-file -e master:app.tfstate 2>/dev/null"
check "... one fallback counted" expect_eq fallbacks $((fb + 1)) "$(metric "$URL_A" tfgit_direct_push_fallbacks_total)"

# UNLOCK: B takes the lock over (force-unlock, then LOCK with A's ID and another Who): A's view
# names the old lock commit
URL=$URL_B
req UNLOCK "$Q" --data ''
req LOCK "$Q" --data '{"ID":"d-1","Who":"b@ci","Operation":"OperationTypeApply"}'
check "host B holds the lock anew" expect_eq code 200 "$CODE"
URL=$URL_A
fb=$(metric "$URL_A" tfgit_direct_push_fallbacks_total)
req UNLOCK "$Q" --data "$LOCK"
check "UNLOCK with a stale lock in A's view: 200 (the ID matches)" expect_eq code 200 "$CODE"
check "... the lock is gone" expect_eq lock none "$(tip locks/app.tfstate)"
check "... one fallback counted" expect_eq fallbacks $((fb + 1)) "$(metric "$URL_A" tfgit_direct_push_fallbacks_total)"

# LOCK: A's view says unlocked; B locked meanwhile
URL=$URL_B
req LOCK "$Q" --data '{"ID":"b-9","Who":"b@ci"}'
URL=$URL_A
req LOCK "$Q" --data "$LOCK"
check "LOCK while B holds it (A's view: unlocked): 409" expect_eq code 409 "$CODE"
check "... naming B's lock" grep -q '"b-9"' <<<"$BODY"
check "... B's lock is untouched" grep -q b-9 <<<"$(g "$R" show locks/app.tfstate:app.tfstate.lock)"

# a write whose lock moved: A holds it, B force-unlocks and locks with another ID, A's POST
# asserts the lock commit of its view in the same push: refused whole, then 409
URL=$URL_B
req UNLOCK "$Q" --data ''
URL=$URL_A
req LOCK "$Q" --data "$LOCK"
req POST "$Q&ID=d-1" --data "$(state 9)"
check "A writes under its lock" expect_eq code 200 "$CODE"
URL=$URL_B
req UNLOCK "$Q" --data ''
req LOCK "$Q" --data '{"ID":"b-10","Who":"b@ci"}'
URL=$URL_A
req POST "$Q&ID=d-1" --data "$(state 10)"
check "POST after the lock moved (A's view: its own lock): 409" expect_eq code 409 "$CODE"
check "... the state is not written" expect_eq state "$(state 9)" "$(g "$R" show master:app.tfstate)"
URL=$URL_B
req UNLOCK "$Q" --data ''
URL=$URL_A

# --- concurrency on warm caches: two hosts, group commit on top -----------------------------
N=10
write_states_at_once "repository=$REPO&ref=many" $N "$URL_A" "$URL_B"
check "$N concurrent POSTs from two warm hosts all succeed" expect_eq ok "$N" "$AT_ONCE_200"
check "... no update was lost" expect_eq found "$N" "$(states_on "$R" many $N)"
at_once LOCK "repository=$REPO&state=race.tfstate" '{"ID":"r-%i"}' $N "$URL_A" "$URL_B"
check "exactly one of $N LOCK contenders wins" expect_eq wins 1 "$AT_ONCE_200"
check "... the others get 409" expect_eq losses $((N - 1)) "$AT_ONCE_409"

# --- a server that closes idle connections after 1 s ----------------------------------------
GIT_HTTP_KEEPALIVE=1s served shortkeep plain k
KQ="repository=http://127.0.0.1:$GIT_PORT/k.git&state=k.tfstate"
KPORT=$GIT_PORT
req LOCK "$KQ" --data "$LOCK"
req POST "$KQ&ID=d-1" --data "$(state 1)"
check "keepalive_timeout 1s: LOCK and POST" expect_eq code 200 "$CODE"
# the server closes the kept connection: the worker's end waits in CLOSE-WAIT
closed() { ss -Htn state close-wait "( dport = :$KPORT )" | grep -q .; }
check "... the server closes the idle connection" wait_for 10 "the server's close" closed
fb=$(metric "$URL_A" tfgit_direct_push_fallbacks_total)
dp=$(metric "$URL_A" tfgit_direct_pushes_total)
req POST "$KQ&ID=d-1" --data "$(state 2)"
check "... the next POST is 200" expect_eq code 200 "$CODE"
check "... and lands" expect_eq state "$(state 2)" "$(g "$GIT_DIR_ROOT/k.git" show master:k.tfstate)"
check "... a direct push on a new connection, not a fallback" eval \
	"[ $(metric "$URL_A" tfgit_direct_pushes_total) = $((dp + 1)) ] && [ $(metric "$URL_A" tfgit_direct_push_fallbacks_total) = $fb ]"
req UNLOCK "$KQ" --data "$LOCK"
check "... UNLOCK is 200" expect_eq code 200 "$CODE"
check "... the pushes used more than one connection" eval \
	"[ $(grep 'git-receive-pack 200' "$T_DIR/shortkeep/access.log" | awk '{print $NF}' | sort -u | wc -l) -ge 2 ]"

# --- a server that refuses a push without an advertisement before it ------------------------
mkdir -p "$T_DIR/strict"
cat >"$T_DIR/strict/backend" <<SH
#!/bin/sh
# refuses POST git-receive-pack unless GET info/refs?service=git-receive-pack came first
m=$T_DIR/strict/advertised
case "\$REQUEST_METHOD \$PATH_INFO?\$QUERY_STRING" in
"GET "*/info/refs?*service=git-receive-pack*) : >"\$m" ;;
"POST "*/git-receive-pack*)
	if [ ! -e "\$m" ]; then
		printf 'Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nadvertisement first\n'
		exit 0
	fi
	rm -f "\$m" ;;
esac
exec /usr/lib/git-core/git-http-backend
SH
chmod 755 "$T_DIR/strict/backend"
GIT_HTTP_BACKEND=$T_DIR/strict/backend served stricthttp plain s
SQ="repository=http://127.0.0.1:$GIT_PORT/s.git&state=s.tfstate"
fb=$(metric "$URL_A" tfgit_direct_push_fallbacks_total)
ok=1
for i in 1 2 3; do
	req LOCK "$SQ" --data "$LOCK"; [ "$CODE" = 200 ] || ok=0
	req POST "$SQ&ID=d-1" --data "$(state "$i")"; [ "$CODE" = 200 ] || ok=0
	req UNLOCK "$SQ" --data "$LOCK"; [ "$CODE" = 200 ] || ok=0
done
check "a server that wants the advertisement first: every write is 200" expect_eq ok 1 "$ok"
check "... the state landed" expect_eq state "$(state 3)" "$(g "$GIT_DIR_ROOT/s.git" show master:s.tfstate)"
check "... the direct pushes were refused (403)" eval "grep -q 'git-receive-pack 403' '$T_DIR/stricthttp/access.log'"
check "... and each counted as a fallback" eval "[ $(metric "$URL_A" tfgit_direct_push_fallbacks_total) -ge $((fb + 6)) ]"

# --- HTTPS: the same, over TLS ---------------------------------------------------------------
served secure tls t
TLS_PORT=$GIT_PORT
stack_up tls TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}" TFGIT_SSL_CA_FILE="$T_DIR/tls/ca.crt" FCGI_WORKERS=1
URL_T=$URL
Q="repository=https://localhost:$GIT_PORT/t.git&state=t.tfstate"
check "HTTPS: a first cycle" cycle "$URL_T" 1
before=$(wc -l <"$T_DIR/secure/access.log")
check "HTTPS: a warm cycle" cycle "$URL_T" 2
check "... its requests went on one connection, without an advertisement" eval \
	"[ \$(tail -n +$((before + 1)) '$T_DIR/secure/access.log' | awk '{print \$NF}' | sort -u | wc -l) = 1 ] &&
	 ! tail -n +$((before + 1)) '$T_DIR/secure/access.log' | grep -q 'info/refs'"
check "... the state is on the server" expect_eq state "$(state 2)" "$(g "$GIT_DIR_ROOT/t.git" show master:t.tfstate)"
check "... a new connection resumed the TLS session of an earlier one" \
	eval "grep -qE ' c=[0-9]+r\$' '$T_DIR/secure/access.log'"

# --- a write without a lock (TFGIT_REQUIRE_LOCK=0): "unlocked" is never taken from the view --
FCGI_WORKERS=1 stack_up nolock TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}" TFGIT_REQUIRE_LOCK=0
URL_N=$URL
Q="repository=$REPO&state=free.tfstate"
cycle "$URL_N" 1 >/dev/null
req POST "$Q" --data "$(state 2)"
check "TFGIT_REQUIRE_LOCK=0: a POST without a lock (warm) is 200" expect_eq code 200 "$CODE"
URL=$URL_B
req LOCK "$Q" --data '{"ID":"b-free","Who":"b@ci"}'
URL=$URL_N
req POST "$Q" --data "$(state 3)"
check "... while host B holds the lock (the view: unlocked), 409" expect_eq code 409 "$CODE"
check "... and the state is not written" expect_eq state "$(state 2)" "$(g "$R" show master:free.tfstate)"
req DELETE "$Q"
check "... a DELETE without a lock too" expect_eq code 409 "$CODE"
URL=$URL_B
req UNLOCK "$Q" --data ''
URL=$URL_A

# --- a server that frames its answers with Content-Length (not chunked) ---------------------
cat >"$T_DIR/strict/cl-backend" <<'PL'
#!/usr/bin/perl
# git http-backend, its answer framed by Content-Length (as servers that buffer small bodies do)
binmode STDOUT;
my $out = `/usr/lib/git-core/git-http-backend`;
my ($head, $body) = split /\r?\n\r?\n/, $out, 2;
$body = "" unless defined $body;
print $head, "\r\nContent-Length: ", length($body), "\r\n\r\n", $body;
PL
chmod 755 "$T_DIR/strict/cl-backend"
GIT_HTTP_BACKEND=$T_DIR/strict/cl-backend served clhttp plain c
FCGI_WORKERS=1 stack_up cl TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}" TFGIT_REMOTE_TIMEOUT=5
URL_C=$URL
Q="repository=http://127.0.0.1:$GIT_PORT/c.git&state=app.tfstate"
check "Content-Length answers: a first cycle" cycle "$URL_C" 1
dp=$(metric "$URL_C" tfgit_direct_pushes_total)
check "... warm cycles (a push that waited for more than its answer would time out: 504)" eval \
	"cycle '$URL_C' 2 && cycle '$URL_C' 3"
check "... their writes were direct pushes" expect_eq direct $((dp + 6)) "$(metric "$URL_C" tfgit_direct_pushes_total)"
check "... on a kept connection (its answers read to their last byte)" eval \
	"[ \$(grep 'git-receive-pack 200' '$T_DIR/clhttp/access.log' | awk '{print \$NF}' | sort -u | wc -l) -le 2 ]"

# --- a server that does not speak protocol v2: reads take the whole advertisement ----------
cat >"$T_DIR/strict/v0-backend" <<SH
#!/bin/sh
# git http-backend without the client's Git-Protocol header: protocol v0 only
unset HTTP_GIT_PROTOCOL
exec /usr/lib/git-core/git-http-backend
SH
chmod 755 "$T_DIR/strict/v0-backend"
GIT_HTTP_BACKEND=$T_DIR/strict/v0-backend served v0http plain v
URL=$URL_A
Q="repository=http://127.0.0.1:$GIT_PORT/v.git&state=app.tfstate"
log_mark
check "a v0-only server: a cycle" cycle "$URL_A" 1
ok=1
for i in 2 3; do
	req GET "$Q"; [ "$CODE" = 200 ] || ok=0
	[ "$BODY" = "$(state 1)" ] || ok=0
done
check "... its GETs are 200 with the state" expect_eq ok 1 "$ok"
check "... said once: the repository does not answer ls-refs" \
	expect_eq said 1 "$(since_mark | grep -c "does not answer protocol v2's ls-refs")"
check "... and its reads took the advertisement" eval "grep -q 'info/refs?service=git-upload-pack' '$T_DIR/v0http/access.log'"

# --- a passing error (503) on ls-refs: that read falls back, the next use ls-refs again -----
cat >"$T_DIR/strict/once503-backend" <<SH
#!/bin/sh
# the first ls-refs (POST git-upload-pack) of the run is answered 503, the rest as usual
if [ "\$REQUEST_METHOD" = POST ] && [ ! -e "$T_DIR/strict/served503" ]; then
	case "\$PATH_INFO" in */git-upload-pack)
		: >"$T_DIR/strict/served503"
		printf 'Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nbusy\n'
		exit 0 ;;
	esac
fi
exec /usr/lib/git-core/git-http-backend
SH
chmod 755 "$T_DIR/strict/once503-backend"
GIT_HTTP_BACKEND=$T_DIR/strict/once503-backend served busyhttp plain b
URL=$URL_A
Q="repository=http://127.0.0.1:$GIT_PORT/b.git&state=app.tfstate"
log_mark
check "a server busy once (503 on an ls-refs): a cycle" cycle "$URL_A" 1
ok=1
for i in 1 2 3; do
	req GET "$Q"; [ "$CODE" = 200 ] && [ "$BODY" = "$(state 1)" ] || ok=0
done
check "... its GETs are 200 with the state" expect_eq ok 1 "$ok"
check "... the 503 was met" eval "grep -q 'git-upload-pack 503' '$T_DIR/busyhttp/access.log'"
check "... and ls-refs was not given up (later GETs used it)" eval \
	"[ \$(grep -c 'POST /b.git/git-upload-pack 200' '$T_DIR/busyhttp/access.log') -ge 3 ] && ! grep -q \"does not answer protocol v2\" <<<\"\$(since_mark)\""

# --- TLS trust is per request: a kept connection serves only the trust it was opened under --
cat >"$T_DIR/lax.conf" <<NGINX
location = /lax {
    fastcgi_pass tfgit_pool;
    include /etc/nginx/fastcgi_params;
    fastcgi_param TFGIT_SSL_NO_VERIFY 1;
}
NGINX
STACK_NGINX_INCLUDE=$T_DIR/lax.conf FCGI_WORKERS=1 stack_up trust TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}"
BASE_T=${URL%/tfgit}
Q="repository=https://localhost:$TLS_PORT/t.git&state=lax.tfstate"
URL=$BASE_T/lax
req LOCK "$Q" --data '{"ID":"lax"}'
req POST "$Q&ID=lax" --data "$(state 1)"
check "TFGIT_SSL_NO_VERIFY=1 in one location: its warm writes are 200" expect_eq code 200 "$CODE"
URL=$BASE_T/tfgit
req UNLOCK "$Q" --data '{"ID":"lax"}'
check "... a location that verifies (no CA for the server) is 502, not served by the lax connection" \
	expect_eq code 502 "$CODE"
check "... and the lock stays" grep -q lax <<<"$(g "$T_DIR/secure/repos/t.git" show locks/lax.tfstate:lax.tfstate.lock)"
URL=$URL_A

# --- TFGIT_KEEP_CONNECTIONS=0: as before ---------------------------------------------------------
stack_up off TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}" TFGIT_KEEP_CONNECTIONS=0 FCGI_WORKERS=1
URL_OFF=$URL
Q="repository=$REPO&state=off.tfstate"
cycle "$URL_OFF" 1 >/dev/null
acc_mark
check "TFGIT_KEEP_CONNECTIONS=0: a cycle" cycle "$URL_OFF" 2
check "... each write read the advertisement first" \
	expect_eq advertisements 3 "$(acc_since | grep -c 'service=git-receive-pack')"
check "... and no direct push was made" expect_eq direct 0 "$(metric "$URL_OFF" tfgit_direct_pushes_total)"

check "no secret reached a log" eval "! grep -rq '$PW' '$T_DIR/pool.log' '$T_DIR'/*/access.log '$T_DIR'/*/nginx.log"
finish
