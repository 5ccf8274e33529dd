#!/usr/bin/env bash
# Stress: K clients x M states x R cycles of LOCK, GET, POST (serial + 1), UNLOCK, spread over
# two stacks (two caches, two ports: two hosts; STRESS_WORKERS workers each, default 2) sharing
# one remote, bounded in time. Group commit is on (the default): requests waiting on one host
# are served in one push, while the other host competes for the same refs.
# F force-unlockers (default 1) run beside them: each picks a random state, and when it is
# locked reads the holder's ID from the 409 and force-unlocks it, in turn as Terraform does
# (UNLOCK with an empty body: any lock) and as OpenTofu does (UNLOCK with the holder's ID),
# then LOCKs it with its own ID and writes under it like the others. A client whose lock was
# taken away gets 409 or 428 for its POST (or 409 for its UNLOCK): an expected outcome, counted.
# Checks that each lock was held by one client at a time and no write landed without its lock:
#  - every state's history on master is exactly its successful POSTs, serials 1, 2, ... n in
#    order (none written twice, none lost), each commit's Lock-ID the ID its client wrote with;
#  - no POST without the lock succeeded; every lock won was followed by a POST that succeeded
#    or found its lock taken away, and no more locks were lost than force-unlocks were done;
#  - git:// and smart HTTP: a reference-transaction hook in the remote (tests/tools/ref-hook.sh)
#    checks every write as it lands: its Lock-ID is the ID in its state's lock branch at that
#    moment (no violation, and it checked every write on master). A local remote's refs are
#    updated by tfgit itself (libgit2: no hook runs), so there only the other checks hold; a
#    local remote's atomicity is tested in C;
#  - the locks are all released, git fsck of the remote is clean; prints the figures.
# usage: tests/stress.sh [-k CLIENTS] [-m STATES] [-r CYCLES] [-t SECONDS] [-f FORCE_UNLOCKERS]
#                        [-x local|git|http]
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

K=4 M=3 CYCLES=6 LIMIT=120 KIND=local F=1
while getopts k:m:r:t:f:x: o; do
	case $o in
	k) K=$OPTARG ;; m) M=$OPTARG ;; r) CYCLES=$OPTARG ;; t) LIMIT=$OPTARG ;; f) F=$OPTARG ;; x) KIND=$OPTARG ;;
	*) echo "usage: $0 [-k clients] [-m states] [-r cycles] [-t seconds] [-f force-unlockers] [-x local|git|http]" >&2; exit 2 ;;
	esac
done

# install_ref_hook REPO: the invariant's reference-transaction hook in the bare repository REPO,
# run by the git server's receive-pack; it writes in HOOK_LOG.
HOOK_LOG=""
install_ref_hook() {
	HOOK_LOG=$T_DIR/refhook
	mkdir -p "$HOOK_LOG"
	printf '#!/bin/sh\nexec bash '\''%s'\'' '\''%s'\'' "$@"\n' "$ROOT/tests/tools/ref-hook.sh" "$HOOK_LOG" \
		>"$1/hooks/reference-transaction"
	chmod 755 "$1/hooks/reference-transaction"
}

CREDS=()
if [ "$KIND" = http ]; then
	FCGIWRAP_CHILDREN=4 git_http_server remote plain
	htpasswd_line stress stresspw >"$T_DIR/remote/htpasswd"
	bare_repo "$GIT_DIR_ROOT/stress.git"
	REPO=http://127.0.0.1:$GIT_PORT/stress.git
	R=$GIT_DIR_ROOT/stress.git
	CREDS=(GIT_USERNAME=stress GIT_PASSWORD=stresspw)
	install_ref_hook "$R"
elif [ "$KIND" = git ]; then
	mkdir -p "$T_DIR/daemon"
	git init -q --bare "$T_DIR/daemon/stress.git"
	R=$T_DIR/daemon/stress.git
	install_ref_hook "$R"
	DPORT=$(free_port)
	git daemon --export-all --enable=receive-pack --base-path="$T_DIR/daemon" --listen=127.0.0.1 \
		--port="$DPORT" --reuseaddr 2>>"$T_DIR/daemon.log" &
	STACKS+=("$!")
	wait_for 10 "git daemon" git ls-remote "git://127.0.0.1:$DPORT/stress.git"
	REPO=git://127.0.0.1:$DPORT/stress.git
else
	# tfgit updates a local remote's refs itself with libgit2: no hook runs, so the invariant
	# hook covers the git:// and HTTP remotes only (local remotes' atomicity is tested in C)
	R=$(new_remote stress)
	REPO=$R
fi
ALLOW="git://127.0.0.1:*/*.git http://127.0.0.1:*/*.git $T_DIR/remotes/*.git"
stack_up a TFGIT_ALLOWED_REPOS="$ALLOW" FCGI_WORKERS=${STRESS_WORKERS:-2} "${CREDS[@]}"
URLS=("$URL")
stack_up b TFGIT_ALLOWED_REPOS="$ALLOW" FCGI_WORKERS=${STRESS_WORKERS:-2} "${CREDS[@]}"
URLS+=("$URL")

# under_lock LOG URL OTHER_URL STATE ID PREVIOUS_ID: what a holder of lock ID does: GET (through
# the other host), POST serial + 1, a POST without the lock (PREVIOUS_ID, the ID of its last
# cycle, must be refused), UNLOCK. One line per outcome in LOG: "post STATE SERIAL ID", or
# "refused POST|UNLOCK CODE" and "lost STATE" when the lock was taken away (409, 428).
under_lock() {
	local log=$1 u=$2 other=$3 s=$4 id=$5 prev=$6 body serial code lost=""
	body=$(curl -s "$other?repository=$REPO&state=$s")
	serial=$(sed -n 's/.*"serial":\([0-9]*\).*/\1/p' <<<"$body")
	serial=$((${serial:-0} + 1))
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data "{\"version\":4,\"serial\":$serial,\"lineage\":\"t\"}" \
		"$u?repository=$REPO&state=$s&ID=$id")
	case $code in
	200) echo "post $s $serial $id" >>"$log" ;;
	409 | 428) echo "refused POST $code" >>"$log"; lost=1 ;;
	*) echo "error POST $code" >>"$log" ;;
	esac
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data '{"version":4,"serial":-1,"lineage":"t"}' \
		"$u?repository=$REPO&state=$s&ID=$prev")
	echo "rogue $code" >>"$log"
	code=$(curl -s -o /dev/null -w '%{http_code}' -X UNLOCK --data "{\"ID\":\"$id\"}" "$u?repository=$REPO&state=$s")
	case $code in
	200) ;;
	409 | 428) echo "refused UNLOCK $code" >>"$log"; lost=1 ;;
	*) echo "error UNLOCK $code" >>"$log" ;;
	esac
	[ -z "$lost" ] || echo "lost $s" >>"$log"
}

# client I: its cycles, one line per outcome in $T_DIR/client.I
client() {
	local i=$1 n u s id code log=$T_DIR/client.$1 deadline=$((SECONDS + LIMIT))
	for n in $(seq 1 "$CYCLES"); do
		[ $SECONDS -lt $deadline ] || { echo timeout >>"$log"; break; }
		u=${URLS[$(((i + n) % 2))]}
		s=s$(((i + n) % M)).tfstate
		id=c$i-$n
		code=$(curl -s -o /dev/null -w '%{http_code}' -X LOCK --data "{\"ID\":\"$id\",\"Who\":\"client$i\"}" \
			"$u?repository=$REPO&state=$s")
		if [ "$code" = 409 ]; then echo "conflict $s" >>"$log"; continue; fi
		if [ "$code" != 200 ]; then echo "error LOCK $code" >>"$log"; continue; fi
		echo "locked $s" >>"$log"
		under_lock "$log" "$u" "${URLS[$((1 - (i + n) % 2))]}" "$s" "$id" "c$i-$((n - 1))"
	done
}

# force-unlocker J: its cycles on random states, in $T_DIR/client.fJ
forcer() {
	local j=$1 n u s id out code holder log=$T_DIR/client.f$1 deadline=$((SECONDS + LIMIT))
	for n in $(seq 1 "$CYCLES"); do
		[ $SECONDS -lt $deadline ] || { echo timeout >>"$log"; break; }
		u=${URLS[$(((j + n) % 2))]}
		s=s$((RANDOM % M)).tfstate
		id=f$j-$n
		out=$(curl -s -w '\n%{http_code}' -X LOCK --data "{\"ID\":\"$id\",\"Who\":\"forcer$j\"}" \
			"$u?repository=$REPO&state=$s")
		code=${out##*$'\n'}
		if [ "$code" = 409 ]; then
			# the holder's ID, as the 409 shows it to who may force-unlock
			holder=$(sed -n 's/.*"ID":"\([^"]*\)".*/\1/p' <<<"${out%$'\n'*}")
			if [ $((n % 2)) = 1 ]; then # Terraform's force-unlock: an empty body
				code=$(curl -s -o /dev/null -w '%{http_code}' -X UNLOCK -H 'Transfer-Encoding: chunked' \
					--data-binary @/dev/null "$u?repository=$REPO&state=$s")
				echo "force terraform $s $holder $code" >>"$log"
			else # OpenTofu's: the holder's ID (checked: 409 when the lock changed hands)
				code=$(curl -s -o /dev/null -w '%{http_code}' -X UNLOCK \
					--data "{\"ID\":\"$holder\",\"Operation\":\"\",\"Info\":\"\",\"Who\":\"\",\"Version\":\"\",\"Created\":\"0001-01-01T00:00:00Z\",\"Path\":\"\"}" \
					"$u?repository=$REPO&state=$s")
				echo "force opentofu $s $holder $code" >>"$log"
			fi
			case $code in 200 | 409) ;; *) echo "error UNLOCK (force) $code" >>"$log" ;; esac
			code=$(curl -s -o /dev/null -w '%{http_code}' -X LOCK --data "{\"ID\":\"$id\",\"Who\":\"forcer$j\"}" \
				"$u?repository=$REPO&state=$s")
			if [ "$code" = 409 ]; then echo "conflict $s" >>"$log"; continue; fi
		fi
		if [ "$code" != 200 ]; then echo "error LOCK $code" >>"$log"; continue; fi
		echo "locked $s" >>"$log"
		under_lock "$log" "$u" "${URLS[$((1 - (j + n) % 2))]}" "$s" "$id" "f$j-$((n - 1))"
	done
}

start=$SECONDS
pids=()
for i in $(seq 1 "$K"); do
	client "$i" &
	pids+=($!)
done
for j in $(seq 1 "$F"); do
	forcer "$j" &
	pids+=($!)
done
wait "${pids[@]}"
elapsed=$((SECONDS - start))

all=$(cat "$T_DIR"/client.*)
count() { grep -c "$1" <<<"$all"; }
posts=$(count '^post ')
locked=$(count '^locked ')
conflicts=$(count '^conflict ')
errors=$(count '^error ')
rogue_ok=$(count '^rogue 200')
rogues=$(count '^rogue ')
timeouts=$(count '^timeout')
forced=$(count '^force ')
forced_ok=$(count '^force .* 200$')
forced_tf=$(count '^force terraform ')
refused_post=$(count '^refused POST ')
refused_post_409=$(count '^refused POST 409')
refused_post_428=$(count '^refused POST 428')
refused_unlock=$(count '^refused UNLOCK ')
lost=$(count '^lost ')
removed=$(grep -c 'force-unlock of .* removed the lock' "$T_DIR/pool.log")
retries=$(grep -c '(retried)' "$T_DIR/pool.log")
batched=$(grep -c ' batch=[0-9]' "$T_DIR/pool.log")
# direct pushes (smart HTTP, TFGIT_KEEP_CONNECTIONS): writes from each host's view, and those done
# again after the advertisement because the other host had moved a ref
counter() { curl -s "$1/metrics" | awk -v k="$2" '$1 == k {v = $2} END {print v + 0}'; }
direct=0 fallbacks=0
for u in "${URLS[@]}"; do
	direct=$((direct + $(counter "$u" tfgit_direct_pushes_total)))
	fallbacks=$((fallbacks + $(counter "$u" tfgit_direct_push_fallbacks_total)))
done
# each state's history on master, oldest first: "serial lock-id" a commit; it must be the
# successful POSTs of that state in serial order, and the serials 1..n
bad_states=""
for j in $(seq 0 $((M - 1))); do
	s=s$j.tfstate
	hist=$(g "$R" log --reverse --format='%(trailers:key=Serial,valueonly,separator=) %(trailers:key=Lock-ID,valueonly,separator=)' \
		master -- "$s" 2>/dev/null)
	want=$(grep "^post $s " <<<"$all" | cut -d' ' -f3,4 | sort -n)
	n=$(grep -c . <<<"$want")
	final=$(g "$R" show "master:$s" 2>/dev/null | sed -n 's/.*"serial":\([0-9]*\).*/\1/p')
	if [ "$hist" != "$want" ] || [ "$(cut -d' ' -f1 <<<"$hist" | grep .)" != "$(seq 1 "$n")" ] ||
		[ "${final:-0}" != "$n" ]; then
		bad_states="$bad_states $s(final=${final:-0},posts=$n,history=$(cut -d' ' -f1 <<<"$hist" | paste -sd,),"
		bad_states="$bad_states$(comm -3 <(sort <<<"$hist") <(sort <<<"$want") | tr '\t\n' '+ ' | sed 's/ $//'))"
	fi
done

if [ -n "$HOOK_LOG" ]; then
	checked=$(cat "$HOOK_LOG/checked" 2>/dev/null | awk '{n += $1} END {print n + 0}')
	violations=$(cat "$HOOK_LOG/violations" 2>/dev/null)
	nviolations=$(grep -c . <<<"$violations")
	landed=$(g "$R" log --format=%s master 2>/dev/null | grep -c '^\(Update\|Delete\) ')
	hook_figures="; invariant hook: $checked writes checked as they landed, $nviolations violations"
else
	hook_figures="; invariant hook: not run (a local remote: tfgit updates its refs itself, no hook runs)"
fi

echo "# stress ($KIND remote, two hosts): $K clients and $F force-unlockers x $M states x $CYCLES cycles" \
	"in ${elapsed}s: $locked locks won, $conflicts lock conflicts (409), $posts POSTs, $rogues lockless POSTs" \
	"refused $((rogues - rogue_ok))/$rogues; $forced force-unlocks ($forced_tf as Terraform, the rest as" \
	"OpenTofu; $forced_ok answered 200, $removed removed a lock), $lost locks lost to them: POSTs refused" \
	"$refused_post ($refused_post_409 409, $refused_post_428 428), UNLOCKs refused $refused_unlock;" \
	"$retries pushes retried after a lost compare-and-swap, $errors errors, $timeouts clients stopped by" \
	"the time bound; $batched requests served in a batch with others (group commit); $direct direct" \
	"pushes, $fallbacks done again after the advertisement$hook_figures"
check "every state's history is its successful POSTs, serials 1..n (none written twice or lost)" \
	expect_eq bad "" "$bad_states"
check "no POST without the lock succeeded" expect_eq rogue_ok 0 "$rogue_ok"
check "every lock won was followed by a POST that succeeded or found its lock taken away" \
	expect_eq "POSTs + refused POSTs" "$locked" "$((posts + refused_post))"
check "no more locks were lost than force-unlocks answered 200" eval "[ $lost -le $forced_ok ] || { echo 'lost $lost > $forced_ok'; false; }"
check "no request failed (only 200s, lock conflicts and a lost lock's 409/428)" expect_eq errors 0 "$errors"
check "the locks are all released" expect_eq locks "" "$(g "$R" for-each-ref refs/heads/locks)"
check "git fsck of the remote is clean" g "$R" fsck --strict
if [ -n "$HOOK_LOG" ]; then
	check "no write landed without its lock (the remote's reference-transaction hook)" \
		expect_eq violations "" "$violations"
	check "... the hook checked every write that landed on master ($checked of $landed)" \
		eval "[ $landed -gt 0 ] && [ $checked = $landed ]"
fi
finish
