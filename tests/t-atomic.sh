#!/usr/bin/env bash
# Issue 21: a write under a lock carries its lock. A POST or DELETE reads the lock, checks its
# Lock-ID, then pushes the state's branch; another host may force-unlock and lock between the
# two. tfgit pushes the state branch together with the lock branch, unchanged (old = new = the
# lock commit it checked), in one atomic receive-pack push, so a moved lock fails the whole push.
# Proved here against real servers on 127.0.0.1, for each smart transport (smart HTTP: git
# http-backend behind nginx; SSH: OpenSSH sshd; git://: git daemon), two hosts (two stacks, two
# caches) on one repository whose pre-receive hook holds one push to master (armed by a flag
# file) until the test releases it:
#   - the plain cycle still works: LOCK, POST, GET, UNLOCK, the POST's commit on master;
#   - POST window: host A's POST (its lock's ID) is held in the hook, which sees its lock branch
#     among the push's commands with old = new = A's lock commit; host B force-unlocks (empty
#     body, as Terraform) and locks: A's POST is 409 naming B's ID, master is as it was, and B's
#     POST under its lock is what A's host then reads;
#   - the lock simply gone (B force-unlocks only): A's POST is 428, master as it was;
#   - DELETE window: the same with a DELETE (B unlocks with A's ID, as OpenTofu's force-unlock):
#     409 naming B, the state still on master;
#   - group commit: A's POSTs of s and t (each under its own lock) queued together while the
#     test holds A's cache flock, so one leader serves them in one batch (log: batch=2); B steals
#     s's lock while the batch's push is held: s is 409, t is 200 and stored, master holds t's
#     write and not A's s write.
# And the fallback for servers that do not advertise `atomic` (receive.advertiseAtomic=false,
# smart HTTP): a locked POST still works (two steps), the pool log says `does not advertise
# atomic` once for the repository across two writes of one process, tfgit_two_step_writes_total
# counts them, `tfgit doctor` says the server does not advertise atomic pushes; on the atomic
# servers doctor's atomic line says no such thing and the counter stays 0.
# 76 checks. On main before the core change (353f4a2) 37 failed, as they must: every window
# landed A's write under B's lock (200 instead of 409/428, master moved), the held push carried
# no lock branch, and nothing reported the two-step fallback. With "atomic: core" (a108d81) and
# "atomic: doctor" (c24e36b) all pass, in 30-45 s on 2 cores.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

# a push still held when the test stops (a failure) is let go first: the hook ends, the server's
# receive-pack with it, before the servers are stopped
atomic_cleanup() {
	local h
	for h in "$T_DIR"/hold-*; do [ -d "$h" ] && : >"$h/release"; done
	cleanup
}
trap atomic_cleanup EXIT

# --- the servers ----------------------------------------------------------------------------
# fcgiwrap with several children: the held push occupies one while B pushes through another
FCGIWRAP_CHILDREN=4 git_http_server githttp plain
HPW='At-Pw-21'
htpasswd_line tfuser "$HPW" >>"$T_DIR/githttp/htpasswd"
HTTP_ROOT=$GIT_DIR_ROOT
HTTP_PORT=$GIT_PORT

ssh_server
KH=$T_DIR/known_hosts
echo "[127.0.0.1]:$SSH_PORT $HOST_PUB" >"$KH"
chmod 644 "$KH"

DAEMON_ROOT=$T_DIR/daemon
mkdir -p "$DAEMON_ROOT"
git init -q --bare "$DAEMON_ROOT/probe.git"
DPORT=$(free_port)
git daemon --export-all --enable=receive-pack --base-path="$DAEMON_ROOT" --listen=127.0.0.1 \
	--port="$DPORT" --reuseaddr 2>>"$T_DIR/daemon.log" &
STACKS+=("$!")
wait_for 10 "git daemon" git ls-remote "git://127.0.0.1:$DPORT/probe.git" ||
	{ fail "git daemon starts" "$(cat "$T_DIR/daemon.log")"; exit 1; }

ALLOW="http://127.0.0.1:$HTTP_PORT/*.git ssh://$SSH_USER@127.0.0.1:$SSH_PORT$SSH_DIR/repos/*.git git://127.0.0.1:$DPORT/*.git"
CREDS=(GIT_USERNAME=tfuser GIT_PASSWORD="$HPW" SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$KH")
# host A: workers enough for two requests waiting in its queue; host B: another cache
FCGI_WORKERS=3 stack_up a TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}"
URL_A=$URL
CACHE_A=$T_DIR/stack-a/cache
stack_up b TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}"
URL_B=$URL

# --- helpers --------------------------------------------------------------------------------
# on URL METHOD QUERY [curl args...]: req against that host.
on() { local URL=$1; shift; req "$@"; }
# bg NAME URL METHOD QUERY [BODY]: the request in the background, bounded; its status in
# $T_DIR/NAME.code, its body in $T_DIR/NAME.body; BG_PID its curl (fd 9, a flock the test may
# hold, not inherited).
bg() {
	local name=$1 url=$2 method=$3 query=$4
	local data=()
	[ $# -ge 5 ] && data=(--data "$5")
	rm -f "$T_DIR/$name.code" "$T_DIR/$name.body"
	curl -s --max-time 100 -o "$T_DIR/$name.body" -w '%{http_code}' -X "$method" "${data[@]}" \
		"$url?$query" >"$T_DIR/$name.code" 9<&- &
	BG_PID=$!
}
bg_code() { cat "$T_DIR/$1.code" 2>/dev/null; }
bg_body() { sed 's|\\/|/|g' "$T_DIR/$1.body" 2>/dev/null; }
st() { printf '{"version":4,"serial":%s,"lineage":"%s"}' "$1" "$2"; }
tip() { g "$1" rev-parse -q --verify refs/heads/master 2>/dev/null || echo none; }
# metric URL NAME: the counter's value at URL/metrics (0 when absent).
metric() { curl -s "$1/metrics" | awk -v k="$2" '$1 == k {v = $2} END {print v + 0}'; }

# hook R D: R's pre-receive hook holds one push that updates refs/heads/master while D/flag
# exists (it takes the flag: mv, so one push only), writing the push's commands to D/held and
# waiting (bounded: 60 s) for D/release. The wait is the server's, not the test's.
hook() {
	local r=$1 d=$2
	mkdir -p "$d"
	chmod 777 "$d" # the hook runs as the server's user (root, or the SSH user)
	cat >"$r/hooks/pre-receive" <<HOOK
#!/bin/sh
d=$d
cmds=\$(cat)
case "\$cmds" in *" refs/heads/master"*) ;; *) exit 0 ;; esac
mv "\$d/flag" "\$d/taken" 2>/dev/null || exit 0
printf '%s\n' "\$cmds" >"\$d/held.tmp"
mv "\$d/held.tmp" "\$d/held"
i=0
while [ ! -e "\$d/release" ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
exit 0
HOOK
	chmod 755 "$r/hooks/pre-receive"
}
# arm D: the next push to master is held.
arm() { rm -f "$1/taken" "$1/held" "$1/held.tmp" "$1/release"; : >"$1/flag"; chmod 666 "$1/flag"; }
# release D: lets the held push go on (and disarms a flag no push took).
release() { : >"$1/release"; rm -f "$1/flag"; }
held() { wait_for 30 "the push held by the hook" test -e "$1/held"; }
# queued DIR N: N requests are queued (r.<id>) in the queue directory DIR.
queued() { [ "$(find "$1" -maxdepth 1 -name 'r.*' | wc -l)" = "$2" ]; }
# finished PID: waits for the background request (its curl is bounded by --max-time).
finished() { wait "$1" 2>/dev/null; }

# the plain cycle on one host, the POST's commit on master with the lock's ID
cycle() { # cycle Q R STATE ID BODY
	local q=$1 r=$2 s=$3 id=$4 body=$5
	on "$URL_A" LOCK "$q&state=$s" --data "{\"ID\":\"$id\",\"Who\":\"a@host\"}"
	[ "$CODE" = 200 ] || { echo "LOCK $CODE $BODY"; return 1; }
	on "$URL_A" POST "$q&state=$s&ID=$id" --data "$body"
	[ "$CODE" = 200 ] || { echo "POST $CODE $BODY"; return 1; }
	on "$URL_A" GET "$q&state=$s"
	expect_eq GET "$body" "$BODY" || return 1
	expect_eq "the state on master" "$body" "$(g "$r" show "master:$s")" || return 1
	g "$r" log -1 --format='%s%n%b' master | grep -qx "Update $s" ||
		{ echo "master's tip is not Update $s"; return 1; }
	g "$r" log -1 --format='%b' master | grep -qx "Lock-ID: $id" ||
		{ echo "master's tip has no Lock-ID: $id"; g "$r" log -1 master; return 1; }
	on "$URL_A" UNLOCK "$q&state=$s" --data "{\"ID\":\"$id\"}"
	[ "$CODE" = 200 ] || { echo "UNLOCK $CODE $BODY"; return 1; }
	[ -z "$(g "$r" for-each-ref "refs/heads/locks/$s")" ] || { echo "the lock branch is still there"; return 1; }
}

# transport NAME REPOSITORY_URL R D: every window on one transport (R: the server's repository,
# with hook R D installed).
transport() {
	local n=$1 q="repository=$2" r=$3 d=$4 before pid id b lockc state
	local s=s.tfstate t=t.tfstate

	local known entry
	known=$(cache_entries "$CACHE_A")
	check "$n: LOCK, POST, GET, UNLOCK work; the POST's commit is on master with its Lock-ID" \
		cycle "$q" "$r" $s "$n-sanity" "$(st 1 "$n")"
	# host A's cache entry for this repository: the one its first requests made
	entry=$(comm -13 <(echo "$known") <(cache_entries "$CACHE_A") | sed -n 's/\.flock$//p')

	# POST window: A's lock stolen (force-unlock, LOCK by B) while its push is held
	on "$URL_A" LOCK "$q&state=$s" --data "{\"ID\":\"$n-A1\",\"Who\":\"a@host\"}"
	id=$CODE
	before=$(tip "$r")
	lockc=$(g "$r" rev-parse -q --verify "refs/heads/locks/$s")
	arm "$d"
	bg post "$URL_A" POST "$q&state=$s&ID=$n-A1" "$(st 2 "$n-A")"
	pid=$BG_PID
	check "$n POST window: A locked, and its POST's push is held by the server's hook" \
		eval "[ $id = 200 ] && held '$d'"
	on "$URL_B" UNLOCK "$q&state=$s" --data ''
	b=$CODE
	on "$URL_B" LOCK "$q&state=$s" --data "{\"ID\":\"$n-B1\",\"Who\":\"b@host\"}"
	check "... meanwhile host B force-unlocks (empty body) and locks with its ID" \
		eval "[ $b = 200 ] && [ $CODE = 200 ]"
	check "... A's held push carried its lock branch unchanged (old = new = A's lock commit)" \
		eval "grep -qx '$lockc $lockc refs/heads/locks/$s' '$d/held' || { cat '$d/held'; false; }"
	release "$d"
	finished "$pid"
	check "... A's POST under the lock B took is 409" expect_eq status 409 "$(bg_code post)"
	check "... its body is B's lock (names ID $n-B1)" grep -qF "\"ID\":\"$n-B1\"" <<<"$(bg_body post)"
	check "... master is exactly what it was before A's POST" expect_eq master "$before" "$(tip "$r")"
	on "$URL_B" POST "$q&state=$s&ID=$n-B1" --data "$(st 3 "$n-B")"
	b=$CODE
	on "$URL_A" GET "$q&state=$s"
	check "... B then writes under its lock (200), and A's host reads B's state" \
		eval "[ $b = 200 ] && [ '$BODY' = '$(st 3 "$n-B")' ] && [ \"\$(g '$r' show master:$s)\" = '$(st 3 "$n-B")' ]"
	on "$URL_B" UNLOCK "$q&state=$s" --data "{\"ID\":\"$n-B1\"}"

	# the lock gone (force-unlocked, nobody took it) while A's push is held: 428
	on "$URL_A" LOCK "$q&state=$s" --data "{\"ID\":\"$n-A2\",\"Who\":\"a@host\"}"
	id=$CODE
	before=$(tip "$r")
	arm "$d"
	bg post "$URL_A" POST "$q&state=$s&ID=$n-A2" "$(st 4 "$n-A")"
	pid=$BG_PID
	held "$d"
	on "$URL_B" UNLOCK "$q&state=$s" --data '{"Who":"b@host"}'
	b=$CODE
	release "$d"
	finished "$pid"
	check "$n: A's lock force-unlocked (no ID) while its POST is held, and nobody locks: 428" \
		eval "[ $id = 200 ] && [ $b = 200 ] && expect_eq status 428 '$(bg_code post)'"
	check "... master is as it was" expect_eq master "$before" "$(tip "$r")"

	# DELETE window: B unlocks with A's ID (OpenTofu's force-unlock) and locks
	on "$URL_A" LOCK "$q&state=$s" --data "{\"ID\":\"$n-A3\",\"Who\":\"a@host\"}"
	id=$CODE
	before=$(tip "$r")
	state=$(g "$r" show "master:$s" 2>/dev/null)
	arm "$d"
	bg del "$URL_A" DELETE "$q&state=$s&ID=$n-A3"
	pid=$BG_PID
	check "$n DELETE window: A locked, and its DELETE's push is held by the hook" \
		eval "[ $id = 200 ] && held '$d'"
	on "$URL_B" UNLOCK "$q&state=$s" --data "{\"ID\":\"$n-A3\"}"
	b=$CODE
	on "$URL_B" LOCK "$q&state=$s" --data "{\"ID\":\"$n-B3\",\"Who\":\"b@host\"}"
	check "... meanwhile B unlocks with A's ID and locks with its own" eval "[ $b = 200 ] && [ $CODE = 200 ]"
	release "$d"
	finished "$pid"
	check "... A's DELETE is 409 naming B's ID" \
		eval "expect_eq status 409 '$(bg_code del)' && grep -qF '\"ID\":\"$n-B3\"' <<<'$(bg_body del)'"
	check "... the state is still on master, and master is as it was" \
		eval "expect_eq master '$before' '$(tip "$r")' && [ -n '$state' ] && [ \"\$(g '$r' show master:$s)\" = '$state' ]"
	on "$URL_B" UNLOCK "$q&state=$s" --data "{\"ID\":\"$n-B3\"}"

	# group commit: A's POSTs of s and t in one batch, s's lock stolen while the push is held
	local lock qdir bs bt
	on "$URL_A" LOCK "$q&state=$s" --data "{\"ID\":\"$n-A4\",\"Who\":\"a@host\"}"
	bs=$CODE
	on "$URL_A" LOCK "$q&state=$t" --data "{\"ID\":\"$n-T4\",\"Who\":\"a@host\"}"
	bt=$CODE
	before=$(tip "$r")
	state=$(g "$r" show "master:$s" 2>/dev/null)
	lock=$CACHE_A/$entry.flock
	qdir=$CACHE_A/$entry.q
	if [ -z "$entry" ] || [ ! -f "$lock" ]; then
		fail "$n batch: host A's cache entry for the repository is found" "entry [$entry]"
		return
	fi
	# the test holds the repository's flock on host A: both requests queue, and the one that
	# gets the flock when it is released leads a batch with the other
	exec 9<"$lock"
	flock -x 9
	arm "$d"
	log_mark
	bg post "$URL_A" POST "$q&state=$s&ID=$n-A4" "$(st 5 "$n-A")"
	pid=$BG_PID
	bg postt "$URL_A" POST "$q&state=$t&ID=$n-T4" "$(st 1 "$n-T")"
	local pidt=$BG_PID
	check "$n batch: s and t locked by A, both POSTs queued together on host A" \
		eval "[ $bs = 200 ] && [ $bt = 200 ] && wait_for 30 'two queued requests' queued '$qdir' 2"
	flock -u 9
	exec 9<&-
	check "... the batch's push is held by the hook" held "$d"
	on "$URL_B" UNLOCK "$q&state=$s" --data ''
	b=$CODE
	on "$URL_B" LOCK "$q&state=$s" --data "{\"ID\":\"$n-B4\",\"Who\":\"b@host\"}"
	check "... meanwhile B force-unlocks s and locks it" eval "[ $b = 200 ] && [ $CODE = 200 ]"
	release "$d"
	finished "$pid"
	finished "$pidt"
	# "batch=2" ends the log line's words: a space (led, retried), a colon (the message) or the end
	check "... they met in one batch (log: batch=2 on both POSTs)" \
		expect_eq "POST lines with batch=2" 2 "$(since_mark | grep -cE 'POST state=[st]\.tfstate .* batch=2( |:|$)')"
	check "... s's POST is 409 naming B's ID" \
		eval "expect_eq status 409 '$(bg_code post)' && grep -qF '\"ID\":\"$n-B4\"' <<<'$(bg_body post)'"
	check "... t's POST (its lock still A's) is 200" expect_eq status 200 "$(bg_code postt)"
	check "... master holds t's write and not A's s write" \
		eval "[ \"\$(g '$r' show master:$t)\" = '$(st 1 "$n-T")' ] && [ \"\$(g '$r' show master:$s)\" = '$state' ] &&
		      ! g '$r' log --format=%B master | grep -qx 'Lock-ID: $n-A4'"
	on "$URL_B" UNLOCK "$q&state=$s" --data "{\"ID\":\"$n-B4\"}"
	on "$URL_A" UNLOCK "$q&state=$t" --data "{\"ID\":\"$n-T4\"}"
	check "$n: git fsck of the server's repository is clean" g "$r" fsck --strict
}

# --- each transport -------------------------------------------------------------------------
H=$HTTP_ROOT/state.git
bare_repo "$H"
hook "$H" "$T_DIR/hold-http"
transport http "http://127.0.0.1:$HTTP_PORT/state.git" "$H" "$T_DIR/hold-http"

S=$(ssh_repo state)
hook "$S" "$T_DIR/hold-ssh"
transport ssh "ssh://$SSH_USER@127.0.0.1:$SSH_PORT$S" "$S" "$T_DIR/hold-ssh"

G=$DAEMON_ROOT/state.git
git init -q --bare "$G"
hook "$G" "$T_DIR/hold-git"
transport git "git://127.0.0.1:$DPORT/state.git" "$G" "$T_DIR/hold-git"

# --- a server that does not advertise atomic: the two steps, reported -----------------------
F=$HTTP_ROOT/twostep.git
bare_repo "$F"
g "$F" config receive.advertiseAtomic false
FURL=http://127.0.0.1:$HTTP_PORT/twostep.git
# one worker: both writes in one process
log_mark
FCGI_WORKERS=1 stack_up fb TFGIT_ALLOWED_REPOS="$ALLOW" "${CREDS[@]}"
URL_F=$URL
on "$URL_F" LOCK "repository=$FURL&state=f.tfstate" --data '{"ID":"f-1","Who":"f@host"}'
c1=$CODE
on "$URL_F" POST "repository=$FURL&state=f.tfstate&ID=f-1" --data "$(st 1 f)"
c2=$CODE
on "$URL_F" POST "repository=$FURL&state=f.tfstate&ID=f-1" --data "$(st 2 f)"
c3=$CODE
on "$URL_F" UNLOCK "repository=$FURL&state=f.tfstate" --data '{"ID":"f-1"}'
check "receive.advertiseAtomic=false: LOCK, two POSTs under the lock, UNLOCK all 200" \
	expect_eq codes "200 200 200 200" "$c1 $c2 $c3 $CODE"
check "... the second write is on master" expect_eq state "$(st 2 f)" "$(g "$F" show master:f.tfstate)"
check "... the pool log says 'does not advertise atomic' once for the repository (one process, two writes)" \
	expect_eq lines 1 "$(since_mark | grep -c 'does not advertise atomic')"
since_mark | grep 'does not advertise atomic' | sed 's/^/# /'
check "... tfgit_two_step_writes_total counts the two writes" \
	expect_eq counter 2 "$(metric "$URL_F" tfgit_two_step_writes_total)"
check "the atomic servers' writes (hosts A and B) are no two-step writes: their counters are 0" \
	expect_eq counters "0 0" "$(metric "$URL_A" tfgit_two_step_writes_total) $(metric "$URL_B" tfgit_two_step_writes_total)"
check "no 'does not advertise atomic' in the log but for that repository (the atomic servers' writes)" \
	expect_eq lines 1 "$(grep -c 'does not advertise atomic' "$T_DIR/pool.log")"

# doctor REPOSITORY: tfgit doctor as the pool's user on that repository; its output in $T_DIR/doc.out
doctor() {
	# the sanitizers' settings kept (make sanitize: their reports go to its log directory)
	as_pool env -i PATH=/usr/bin:/bin HOME=/ TFGIT_CACHE_DIR="$T_DIR/stack-fb/cache" \
		${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"} \
		${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
		TFGIT_DEFAULT_REPOSITORY="$1" "${CREDS[@]}" "$TFGIT_CLI_BIN" doctor >"$T_DIR/doc.out" 2>&1
}
atomic_line() { grep -i atomic "$T_DIR/doc.out"; }
doctor "$FURL"
check "tfgit doctor on that repository: a line says the server does not advertise atomic pushes" \
	eval "atomic_line | grep -q 'not advertise' || { cat '$T_DIR/doc.out'; false; }"
atomic_line | sed 's/^/# /'
for u in "http://127.0.0.1:$HTTP_PORT/state.git" "ssh://$SSH_USER@127.0.0.1:$SSH_PORT$S" "git://127.0.0.1:$DPORT/state.git"; do
	doctor "$u"
	check "tfgit doctor on an atomic server (${u%%:*}): an atomic line, not saying 'not advertise'" \
		eval "atomic_line >/dev/null && ! atomic_line | grep -q 'not advertise' || { cat '$T_DIR/doc.out'; false; }"
done
atomic_line | sed 's/^/# /'
finish
