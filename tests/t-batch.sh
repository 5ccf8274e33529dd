#!/usr/bin/env bash
# Group commit, made deterministic: the test holds the repository's flock (as a leader would)
# until the requests it sends are queued, then lets go; one of them leads the batch. Proves that
# one push carries every ref update and that each request gets its own answer: a LOCK lost to
# another host in that very push is 409 for it alone, a POST and an UNLOCK beside it are 200; a
# request refused inside a batch does not sink the others; a request that waits longer than
# TFGIT_QUEUE_TIMEOUT is withdrawn (503, nothing done); when the leader dies mid-push, the
# request it took is run again by its own process; a CGI process and a pool worker share a
# batch; TFGIT_GROUP_COMMIT=0 serves each request alone.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/servers.sh"

# the remote: git daemon (git://, receive-pack: compare-and-swap per ref) with a pre-receive hook
# that records each push's commands, and on cue lets "another host" take a lock first, or holds
# the push until released
D=$T_DIR/daemon
mkdir -p "$D"
R=$D/batch.git
git init -q --bare "$R"
cat >"$R/hooks/pre-receive" <<HOOK
#!/bin/sh
cat >"$D/push.\$\$"
if [ -e "$D/steal" ]; then
	# "STATE COMMIT" in the file, or x.tfstate and the other host's lock when it is empty
	sref= scommit=
	read -r sref scommit <"$D/steal" || true
	rm -f "$D/steal"
	[ -n "\$sref" ] || { sref=x.tfstate; scommit=\$(cat "$D/other"); }
	# outside the push's quarantine, as another host's push would be
	env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES \
		git update-ref "refs/heads/locks/\$sref" "\$scommit" "" || exit 1
fi
if [ -e "$D/refuse" ]; then
	# a policy (as secret scanning would): a push whose branch holds bad.tfstate is refused whole
	while read -r old new ref; do
		if [ "\$ref" = refs/heads/master ] && git ls-tree -r --name-only "\$new" | grep -qx bad.tfstate; then
			echo "bad.tfstate is not allowed here" >&2
			exit 1
		fi
	done <"$D/push.\$\$"
fi
if [ -e "$D/block" ]; then
	rm -f "$D/block"
	touch "$D/blocked"
	i=0
	while [ ! -e "$D/release" ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i + 1)); done
fi
exit 0
HOOK
chmod 755 "$R/hooks/pre-receive"
# each ref transaction the server commits, its refs on one line (txn.log): one line for two refs
# is one atomic update of both
cat >"$R/hooks/reference-transaction" <<HOOK
#!/bin/sh
[ "\$1" = committed ] || exit 0
awk '{ printf "%s ", \$3 } END { print "" }' >>"$D/txn.log"
HOOK
chmod 755 "$R/hooks/reference-transaction"
DPORT=$(free_port)
git daemon --export-all --enable=receive-pack --base-path="$D" --listen=127.0.0.1 --port="$DPORT" \
	--reuseaddr 2>>"$T_DIR/daemon.log" &
STACKS+=("$!")
wait_for 10 "git daemon" git ls-remote "git://127.0.0.1:$DPORT/batch.git"
REPO=git://127.0.0.1:$DPORT/batch.git
ALLOW="git://127.0.0.1:*/*.git"

# another host's lock on x.tfstate: a commit the hook makes the branch's tip mid-push
blob=$(printf '{"ID":"other-host","Who":"host-b","Operation":"OperationTypeApply"}' | g "$R" hash-object -w --stdin)
tree=$(printf '100644 blob %s\tx.tfstate.lock\n' "$blob" | g "$R" mktree)
g "$R" commit-tree "$tree" -m "Lock x.tfstate" >"$D/other"

FCGI_WORKERS=6 stack_up a TFGIT_ALLOWED_REPOS="$ALLOW"
A=$URL
CACHE=$T_DIR/stack-a/cache
Q="repository=$REPO"

# send NAME METHOD QUERY [BODY]: the request in the background; its status in $T_DIR/NAME.code,
# its body in $T_DIR/NAME.body; SENT holds the pids
SENT=()
send() {
	curl -s -o "$T_DIR/$1.body" -w '%{http_code}' -X "$2" ${4:+--data "$4"} "${URL_OF:-$A}?$Q&$3" \
		>"$T_DIR/$1.code" &
	SENT+=($!)
}
code_of() { cat "$T_DIR/$1.code"; }

queued() { find "$1" -maxdepth 1 -name 'r.*' | wc -l; }

# hold CACHE_DIR N: holds the repository's flock until N requests are queued (at most 20 s)
hold() {
	local f q
	f=$(ls "$1"/*.flock) q=$(ls -d "$1"/*.q)
	rm -f "$T_DIR/held"
	flock "$f" bash -c "touch '$T_DIR/held'; end=\$((SECONDS + 20))
		until [ \$(find '$q' -maxdepth 1 -name 'r.*' | wc -l) -ge $2 ] || [ \$SECONDS -ge \$end ]; do sleep 0.02; done" &
	HOLD=$!
	wait_for 10 "the flock held" test -f "$T_DIR/held"
}

# batch_of N: lets the held requests go, waits for their answers
answered() {
	wait "$HOLD"
	wait "${SENT[@]}"
	SENT=()
}

# the setup, one request at a time: the cache, the locks the batch unlocks and writes under
req LOCK "$Q&state=p.tfstate" --data '{"ID":"p1","Who":"writer"}'
req LOCK "$Q&state=u.tfstate" --data '{"ID":"u1","Who":"unlocker"}'
check "the setup's locks are taken" expect_eq locks 2 "$(g "$R" for-each-ref refs/heads/locks | wc -l)"

# --- one batch: a LOCK lost to another host in the push, a POST and an UNLOCK ----------------
rm -f "$D"/push.*
touch "$D/steal"
log_mark
hold "$CACHE" 3
ST='{"version":4,"serial":7,"lineage":"batch"}'
send lock LOCK "state=x.tfstate" '{"ID":"mine","Who":"loser"}'
send post POST "state=p.tfstate&ID=p1" "$ST"
send unlock UNLOCK "state=u.tfstate" '{"ID":"u1","Who":"unlocker"}'
answered
check "the LOCK that another host won during the push is 409" expect_eq code 409 "$(code_of lock)"
check "... naming that host's lock" grep -q '"ID":"other-host"' "$T_DIR/lock.body"
check "the POST in the same push is 200" expect_eq code 200 "$(code_of post)"
check "the UNLOCK in the same push is 200" expect_eq code 200 "$(code_of unlock)"
check "the three were served in one batch" expect_eq batched 3 "$(since_mark | grep -c ' batch=3')"
check "... counted in /metrics (tfgit_group_commit_batches_total, _requests_total)" \
	eval "curl -s '$A/metrics' | grep -q '^tfgit_group_commit_batches_total 1$' &&
	      curl -s '$A/metrics' | grep -q '^tfgit_group_commit_requests_total 3$'"
pushes=$(ls "$D"/push.* 2>/dev/null | wc -l)
first=$(ls -tr "$D"/push.* 2>/dev/null | head -1)
second=$(ls -tr "$D"/push.* 2>/dev/null | sed -n 2p)
# the POST's lock goes with it, unchanged, in an atomic push: the lost LOCK sank that push
# whole, and the POST and the UNLOCK went again without it (a LOCK alone is never atomic)
check "the first push carried the three updates and the POST's lock, atomically" \
	eval "[ '$pushes' = 2 ] && [ \"\$(wc -l <'$first')\" = 4 ] && grep -q ' refs/heads/locks/x.tfstate$' '$first' &&
	      grep -q ' refs/heads/master$' '$first' && grep -q ' refs/heads/locks/u.tfstate$' '$first' &&
	      grep -Eq '^([0-9a-f]{40}) \\1 refs/heads/locks/p.tfstate$' '$first'"
check "... the second carried the POST (with its lock) and the UNLOCK, not the lost LOCK" \
	eval "[ \"\$(wc -l <'$second')\" = 3 ] && ! grep -q ' refs/heads/locks/x.tfstate$' '$second' &&
	      grep -Eq '^([0-9a-f]{40}) \\1 refs/heads/locks/p.tfstate$' '$second'"
check "the remote: the other host holds x, u is unlocked, p is written" \
	eval "[ \"\$(g '$R' rev-parse locks/x.tfstate)\" = '$(cat "$D/other")' ] &&
	      ! g '$R' rev-parse -q --verify locks/u.tfstate >/dev/null && [ \"\$(g '$R' show master:p.tfstate)\" = '$ST' ]"

# --- a request refused inside a batch does not sink the others -------------------------------
req LOCK "$Q&state=w.tfstate" --data '{"ID":"w1","Who":"w"}'
rm -f "$D"/push.*
log_mark
hold "$CACHE" 4
ST2='{"version":4,"serial":8,"lineage":"batch"}'
ST3='{"version":4,"serial":1,"lineage":"w"}'
send wrong POST "state=p.tfstate&ID=not-the-holder" '{"version":4,"serial":99,"lineage":"batch"}'
send right POST "state=w.tfstate&ID=w1" "$ST3"
send newlock LOCK "state=z.tfstate" '{"ID":"z1","Who":"z"}'
send get GET "state=p.tfstate"
answered
check "a POST with another ID in the batch is 409" expect_eq code 409 "$(code_of wrong)"
check "... the holder's POST beside it is 200" expect_eq code 200 "$(code_of right)"
check "... a new LOCK beside it is 200" expect_eq code 200 "$(code_of newlock)"
check "... a GET beside it is the state from the advertisement" \
	eval "[ '$(code_of get)' = 200 ] && [ \"\$(cat '$T_DIR/get.body')\" = '$ST' ]"
check "... all four in one batch, one push of two ref updates and the POST's lock" \
	eval "[ \"\$(since_mark | grep -c ' batch=4')\" = 4 ] && [ \"\$(cat '$D'/push.* | wc -l)\" = 3 ] &&
	      grep -Eq '^([0-9a-f]{40}) \\1 refs/heads/locks/w.tfstate$' '$D'/push.*"
check "... p keeps its state, w has its own" \
	eval "[ \"\$(g '$R' show master:p.tfstate)\" = '$ST' ] && [ \"\$(g '$R' show master:w.tfstate)\" = '$ST3' ]"
check "... one commit per state written" expect_eq commits 2 "$(g "$R" rev-list --count master)"

# --- a POST and the UNLOCK of its lock in one batch: one atomic transaction, never the lock
# deleted first and the state written after it, lockless ---------------------------------------
req LOCK "$Q&state=pu.tfstate" --data '{"ID":"pu1","Who":"pu"}'
: >"$D/txn.log"
log_mark
hold "$CACHE" 2
send pupost POST "state=pu.tfstate&ID=pu1" '{"version":4,"serial":1,"lineage":"pu"}'
wait_for 10 "the POST queued" eval "[ \$(queued \"\$(ls -d '$CACHE'/*.q)\") -ge 1 ]"
send puunlock UNLOCK "state=pu.tfstate" '{"ID":"pu1","Who":"pu"}'
answered
check "a POST and the UNLOCK of its lock in one batch: both 200, served together" \
	eval "[ '$(code_of pupost) $(code_of puunlock)' = '200 200' ] && [ \"\$(since_mark | grep -c ' batch=2')\" = 2 ]"
check "... the state written and the lock deleted in one ref transaction (atomic)" \
	eval "grep -q 'refs/heads/locks/pu.tfstate' '$D/txn.log' && grep 'refs/heads/locks/pu.tfstate' '$D/txn.log' | grep -q 'refs/heads/master' || { cat '$D/txn.log'; false; }"

# --- a LOCK, a POST under it and its UNLOCK, one batch, while another host takes that lock: the
# lock made and removed in the batch is still what the POST stands on (the UNLOCK waits for the
# next push), so the POST does not land under the other host's lock ------------------------------
blob=$(printf '{"ID":"other-host","Who":"host-b","Operation":"OperationTypeApply"}' | g "$R" hash-object -w --stdin)
tree=$(printf '100644 blob %s\tlpu.tfstate.lock\n' "$blob" | g "$R" mktree)
echo "lpu.tfstate $(g "$R" commit-tree "$tree" -m "Lock lpu.tfstate")" >"$D/steal.next"
before=$(g "$R" rev-parse master)
log_mark
hold "$CACHE" 3
send lpulock LOCK "state=lpu.tfstate" '{"ID":"lpu1","Who":"lpu"}'
wait_for 10 "the LOCK queued" eval "[ \$(queued \"\$(ls -d '$CACHE'/*.q)\") -ge 1 ]"
send lpupost POST "state=lpu.tfstate&ID=lpu1" '{"version":4,"serial":1,"lineage":"lpu"}'
wait_for 10 "the POST queued" eval "[ \$(queued \"\$(ls -d '$CACHE'/*.q)\") -ge 2 ]"
mv "$D/steal.next" "$D/steal"
send lpuunlock UNLOCK "state=lpu.tfstate" '{"ID":"lpu1","Who":"lpu"}'
answered
check "LOCK, POST and UNLOCK of one lock in a batch, the lock taken by another host mid-push: LOCK 409, POST refused" \
	eval "[ '$(code_of lpulock)' = 409 ] && [ '$(code_of lpupost)' != 200 ] || { echo '$(code_of lpulock) $(code_of lpupost) $(code_of lpuunlock)'; false; }"
check "... the POST's state did not land (master as it was), the other host holds the lock" \
	eval "[ \"\$(g '$R' rev-parse master)\" = '$before' ] && g '$R' show locks/lpu.tfstate:lpu.tfstate.lock | grep -q other-host"

# --- the server refuses the batch's push whole (a pre-receive policy against one request's state):
# each request runs again alone; only the one the server refuses on its own gets the 502 -------
req LOCK "$Q&state=bad.tfstate" --data '{"ID":"bad1","Who":"bad"}'
req LOCK "$Q&state=good.tfstate" --data '{"ID":"good1","Who":"good"}'
req LOCK "$Q&state=u2.tfstate" --data '{"ID":"u2","Who":"u2"}'
rm -f "$D"/push.*
touch "$D/refuse"
log_mark
hold "$CACHE" 4
ST5='{"version":4,"serial":1,"lineage":"good"}'
send bad POST "state=bad.tfstate&ID=bad1" '{"version":4,"serial":1,"lineage":"bad"}'
send good POST "state=good.tfstate&ID=good1" "$ST5"
send unlock2 UNLOCK "state=u2.tfstate" '{"ID":"u2","Who":"u2"}'
send lock2 LOCK "state=n2.tfstate" '{"ID":"n2","Who":"n2"}'
answered
rm -f "$D/refuse"
check "a push refused whole: the POST the policy refuses is 502" expect_eq code 502 "$(code_of bad)"
check "... naming the server's refusal" grep -q "pre-receive hook declined" "$T_DIR/bad.body"
check "... the POST, UNLOCK and LOCK that shared its push are 200 (each pushed again alone)" \
	expect_eq codes "200 200 200" "$(code_of good) $(code_of unlock2) $(code_of lock2)"
check "... served as one batch of four" expect_eq batched 4 "$(since_mark | grep -c ' batch=4')"
check "... the remote: good written, bad not, u2 unlocked, n2 locked" \
	eval "[ \"\$(g '$R' show master:good.tfstate)\" = '$ST5' ] && ! g '$R' cat-file -e master:bad.tfstate 2>/dev/null &&
	      ! g '$R' rev-parse -q --verify locks/u2.tfstate >/dev/null && g '$R' rev-parse -q --verify locks/n2.tfstate >/dev/null"

# --- the leader dies while its push is held by the server: the waiter it took runs again ------
req LOCK "$Q&state=q.tfstate" --data '{"ID":"q1","Who":"q"}'
rm -f "$D/blocked" "$D/release"
touch "$D/block"
log_mark
hold "$CACHE" 2
ST4='{"version":4,"serial":1,"lineage":"q"}'
send ylock LOCK "state=y.tfstate" '{"ID":"y1","Who":"y"}'
send qpost POST "state=q.tfstate&ID=q1" "$ST4"
wait "$HOLD"
if wait_for 20 "the held push" test -e "$D/blocked"; then
	# the leader is the worker holding the flock
	inode=$(stat -c %i "$(ls "$CACHE"/*.flock)")
	leader=$(awk -v i="$inode" '$2 == "FLOCK" { split($6, f, ":"); if (f[3] == i) print $5 }' /proc/locks | head -1)
	kill -KILL "$leader" 2>/dev/null
	wait "${SENT[@]}"
	SENT=()
	touch "$D/release"
	codes="$(code_of ylock) $(code_of qpost)"
	check "the leader (pid $leader) was killed mid-push: its own request failed, the other was answered 200" \
		eval "[ '$codes' = '502 200' ] || [ '$codes' = '200 502' ]"
	check "... run again by the process that waited for it" \
		eval "since_mark | grep -q 'again: the process that took it ended'"
else
	fail "the leader's push was held" "$(tail -5 "$T_DIR/daemon.log")"
	touch "$D/release"
	wait "${SENT[@]}"
	SENT=()
fi
# the killed leader's push, released now, ends (its ref updates that lost to the second run
# change nothing)
pushing() { # a receive-pack (or its hook) still runs in the remote
	local p
	for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd" 2>/dev/null)" = "$R" ] && return 0; done
	return 1
}
wait_for 20 "the released push to end" eval "! pushing"
req LOCK "$Q&state=y.tfstate" --data '{"ID":"y1","Who":"y"}'
check "... y ends locked by its ID (a LOCK sent again, after a 502 or not, is 200)" expect_eq code 200 "$CODE"
# the killed leader's own request had no answer (502): its push may or may not have landed, and
# its client sends it again, as Terraform does after a 5xx
[ "$(code_of qpost)" = 200 ] || req POST "$Q&state=q.tfstate&ID=q1" --data "$ST4"
req GET "$Q&state=q.tfstate"
check "... q holds its state (a POST sent again after the 502 is 200)" expect_eq state "$ST4" "$BODY"

# --- a waiter killed after its request was answered: what it left (its claim, and the answer
# with the state it asked for) is removed by the next leader ------------------------------------
QD=$(ls -d "$CACHE"/*.q)
rm -f "$T_DIR/release" "$T_DIR/held"
flock "$(ls "$CACHE"/*.flock)" bash -c "touch '$T_DIR/held'; end=\$((SECONDS + 20))
	until [ -e '$T_DIR/release' ] || [ \$SECONDS -ge \$end ]; do sleep 0.02; done" &
HOLD=$!
wait_for 10 "the flock held" test -f "$T_DIR/held"
send dying GET "state=p.tfstate"
wait_for 10 "the GET queued" eval "[ \$(queued '$QD') -ge 1 ]"
gpid=$(ls "$QD" | grep '^r\.' | head -1 | cut -d. -f3)
kill -STOP "$gpid"
send survivor LOCK "state=d.tfstate" '{"ID":"d1","Who":"d"}'
wait_for 10 "the LOCK queued" eval "[ \$(queued '$QD') -ge 2 ]"
touch "$T_DIR/release"
wait "$HOLD"
wait_for 10 "the stopped waiter's answer" eval "ls '$QD' | grep -q '^a\.'"
kill -KILL "$gpid"
wait "${SENT[@]}"
SENT=()
check "a waiter killed after its answer was written leaves its claim and answer (the set-up)" \
	expect_eq "claim, answer" "1 1" "$(find "$QD" -maxdepth 1 -name 'c.*' | wc -l) $(find "$QD" -maxdepth 1 -name 'a.*' | wc -l)"
req LOCK "$Q&state=d2.tfstate" --data '{"ID":"d2","Who":"d"}'
check "... the next leader removes them: no request or answer is left in the queue" \
	expect_eq files "200 0" "$CODE $(find "$QD" -maxdepth 1 -name '[rcaw].*' | wc -l)"

# --- a request that waits longer than TFGIT_QUEUE_TIMEOUT is withdrawn -------------------------
FCGI_WORKERS=2 stack_up b TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_QUEUE_TIMEOUT=1
B=$URL
req GET "$Q&state=p.tfstate" # b's cache
flock_b=$(ls "$T_DIR/stack-b/cache"/*.flock)
rm -f "$T_DIR/held"
flock "$flock_b" bash -c "touch '$T_DIR/held'; curl -s -o '$T_DIR/late.body' -w '%{http_code}' -X LOCK -H 'Content-Type: application/json' \
	--data '{\"ID\":\"late\"}' '$B?$Q&state=late.tfstate' >'$T_DIR/late.code'" &
HOLD=$!
wait "$HOLD"
check "a request queued longer than TFGIT_QUEUE_TIMEOUT is 503" expect_eq code 503 "$(code_of late)"
check "... it left the queue and changed nothing" \
	eval "[ \$(queued '$(ls -d "$T_DIR/stack-b/cache"/*.q)') = 0 ] && ! g '$R' rev-parse -q --verify locks/late.tfstate"

# --- a CGI process and a pool worker in one batch ---------------------------------------------
cgi_lock() { # cgi_lock STATE [SETTING=VALUE...]
	local body='{"ID":"cgi1","Who":"cgi"}' state=$1
	shift
	printf '%s' "$body" | as_pool env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=LOCK CONTENT_TYPE=application/json \
		QUERY_STRING="$Q&state=$state" CONTENT_LENGTH=${#body} TFGIT_ALLOWED_REPOS="$ALLOW" \
		TFGIT_CACHE_DIR="$CACHE" "$@" "$TFGIT_BIN" >"$T_DIR/cgi.out" 2>"$T_DIR/cgi.err"
}
log_mark
hold "$CACHE" 2
send pool LOCK "state=pool.tfstate" '{"ID":"pool1","Who":"pool"}'
cgi_lock cgi.tfstate &
SENT+=($!)
answered
check "a CGI process's LOCK and a pool worker's LOCK are served in one batch" \
	eval "[ '$(code_of pool)' = 200 ] && head -1 '$T_DIR/cgi.out' | grep -q '^Status: 200' &&
	      grep -q ' batch=2' '$T_DIR/cgi.err' && since_mark | grep -q 'LOCK state=pool.tfstate .* batch=2'"
# another TFGIT_REMOTE_TIMEOUT is other settings: a batch ends by its members' deadlines, so a
# request with a short one would cut the others short
log_mark
hold "$CACHE" 2
send pool2 LOCK "state=pool2.tfstate" '{"ID":"pool2","Who":"pool"}'
cgi_lock cgi2.tfstate TFGIT_REMOTE_TIMEOUT=5 &
SENT+=($!)
answered
check "... but not with another TFGIT_REMOTE_TIMEOUT: each is served on its own, both 200" \
	eval "[ '$(code_of pool2)' = 200 ] && head -1 '$T_DIR/cgi.out' | grep -q '^Status: 200' &&
	      ! grep -q ' batch=' '$T_DIR/cgi.err' && ! since_mark | grep -q 'LOCK state=pool2.tfstate .* batch='"

# --- TFGIT_GROUP_COMMIT=0: each request alone -------------------------------------------------
FCGI_WORKERS=4 stack_up c TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_GROUP_COMMIT=0
log_mark
at_once LOCK "$Q&state=off%i.tfstate" '{"ID":"off%i"}' 4 "$URL"
check "TFGIT_GROUP_COMMIT=0: concurrent LOCKs each succeed, none in a batch" \
	eval "[ '$AT_ONCE_200' = 4 ] && ! since_mark | grep -q ' batch='"

check "git fsck of the remote is clean" g "$R" fsck --strict
finish
