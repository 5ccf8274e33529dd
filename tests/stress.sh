#!/usr/bin/env bash
# Stress: K clients x M states x R cycles of LOCK, GET, POST (serial + 1), UNLOCK, spread over
# two stacks (two caches, two ports: two hosts; STRESS_WORKERS workers each, default 2) sharing
# one remote, bounded in time. Group commit is on (the default): requests waiting on one host
# are served in one push, while the other host competes for the same refs.
# Checks that each lock was held by one client at a time (every state's serials are unique and
# its final serial equals its count of successful POSTs), that no POST without the lock
# succeeded, and that git fsck of the remote is clean; prints the figures.
# usage: tests/stress.sh [-k CLIENTS] [-m STATES] [-r CYCLES] [-t SECONDS] [-x local|git|http]
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

K=4 M=3 CYCLES=6 LIMIT=120 KIND=local
while getopts k:m:r:t:x: o; do
	case $o in
	k) K=$OPTARG ;; m) M=$OPTARG ;; r) CYCLES=$OPTARG ;; t) LIMIT=$OPTARG ;; x) KIND=$OPTARG ;;
	*) echo "usage: $0 [-k clients] [-m states] [-r cycles] [-t seconds] [-x local|git|http]" >&2; exit 2 ;;
	esac
done

CREDS=()
if [ "$KIND" = http ]; then
	FCGIWRAP_CHILDREN=4 git_http_server remote plain
	htpasswd_line stress stresspw >"$T_DIR/remote/htpasswd"
	bare_repo "$GIT_DIR_ROOT/stress.git"
	REPO=http://127.0.0.1:$GIT_PORT/stress.git
	R=$GIT_DIR_ROOT/stress.git
	CREDS=(GIT_USERNAME=stress GIT_PASSWORD=stresspw)
elif [ "$KIND" = git ]; then
	mkdir -p "$T_DIR/daemon"
	git init -q --bare "$T_DIR/daemon/stress.git"
	DPORT=$(free_port)
	git daemon --export-all --enable=receive-pack --base-path="$T_DIR/daemon" --listen=127.0.0.1 \
		--port="$DPORT" --reuseaddr 2>>"$T_DIR/daemon.log" &
	STACKS+=("$!")
	wait_for 10 "git daemon" git ls-remote "git://127.0.0.1:$DPORT/stress.git"
	REPO=git://127.0.0.1:$DPORT/stress.git
	R=$T_DIR/daemon/stress.git
else
	R=$(new_remote stress)
	REPO=$R
fi
ALLOW="git://127.0.0.1:*/*.git http://127.0.0.1:*/*.git $T_DIR/remotes/*.git"
stack_up a TFGIT_ALLOWED_REPOS="$ALLOW" FCGI_WORKERS=${STRESS_WORKERS:-2} "${CREDS[@]}"
URLS=("$URL")
stack_up b TFGIT_ALLOWED_REPOS="$ALLOW" FCGI_WORKERS=${STRESS_WORKERS:-2} "${CREDS[@]}"
URLS+=("$URL")

# client I: its cycles, one line per outcome in $T_DIR/client.I
client() {
	local i=$1 n u s id code body serial log=$T_DIR/client.$1 deadline=$((SECONDS + LIMIT))
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
		body=$(curl -s "${URLS[$((1 - (i + n) % 2))]}?repository=$REPO&state=$s")
		serial=$(sed -n 's/.*"serial":\([0-9]*\).*/\1/p' <<<"$body")
		serial=$((${serial:-0} + 1))
		code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data "{\"version\":4,\"serial\":$serial,\"lineage\":\"t\"}" \
			"$u?repository=$REPO&state=$s&ID=$id")
		if [ "$code" = 200 ]; then echo "post $s $serial" >>"$log"; else echo "error POST $code" >>"$log"; fi
		# a writer without the lock: the ID of this client's previous cycle
		code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data '{"version":4,"serial":-1,"lineage":"t"}' \
			"$u?repository=$REPO&state=$s&ID=c$i-$((n - 1))")
		echo "rogue $code" >>"$log"
		code=$(curl -s -o /dev/null -w '%{http_code}' -X UNLOCK --data "{\"ID\":\"$id\"}" \
			"$u?repository=$REPO&state=$s")
		[ "$code" = 200 ] || echo "error UNLOCK $code" >>"$log"
	done
}

start=$SECONDS
pids=()
for i in $(seq 1 "$K"); do
	client "$i" &
	pids+=($!)
done
wait "${pids[@]}"
elapsed=$((SECONDS - start))

all=$(cat "$T_DIR"/client.*)
posts=$(grep -c '^post ' <<<"$all")
locked=$(grep -c '^locked ' <<<"$all")
conflicts=$(grep -c '^conflict ' <<<"$all")
errors=$(grep -c '^error ' <<<"$all")
rogue_ok=$(grep -c '^rogue 200' <<<"$all")
rogues=$(grep -c '^rogue ' <<<"$all")
timeouts=$(grep -c '^timeout' <<<"$all")
retries=$(grep -c '(retried)' "$T_DIR/pool.log")
batched=$(grep -c ' batch=[0-9]' "$T_DIR/pool.log")
bad_states=""
for j in $(seq 0 $((M - 1))); do
	s=s$j.tfstate
	n=$(grep -c "^post $s " <<<"$all")
	final=$(g "$R" show "master:$s" 2>/dev/null | sed -n 's/.*"serial":\([0-9]*\).*/\1/p')
	dups=$(grep "^post $s " <<<"$all" | sort | uniq -d | wc -l)
	[ "${final:-0}" = "$n" ] && [ "$dups" = 0 ] || bad_states="$bad_states $s(final=${final:-0},posts=$n,dups=$dups)"
done

echo "# stress ($KIND remote, two hosts): $K clients x $M states x $CYCLES cycles in ${elapsed}s:" \
	"$locked locks won, $conflicts lock conflicts (409), $posts POSTs, $rogues lockless POSTs refused" \
	"$((rogues - rogue_ok))/$rogues, $retries pushes retried after a lost compare-and-swap," \
	"$errors errors, $timeouts clients stopped by the time bound; $batched requests served in a" \
	"batch with others (group commit)"
check "every state's final serial equals its successful POSTs, no serial written twice" expect_eq bad "" "$bad_states"
check "no POST without the lock succeeded" expect_eq rogue_ok 0 "$rogue_ok"
check "every lock won was followed by a successful POST" expect_eq posts "$locked" "$posts"
check "no request failed (only 200s and lock conflicts)" expect_eq errors 0 "$errors"
check "the locks are all released" expect_eq locks "" "$(g "$R" for-each-ref refs/heads/locks)"
check "git fsck of the remote is clean" g "$R" fsck --strict
finish
