#!/usr/bin/env bash
# Two stacks (two caches, as two hosts) on one local remote: libgit2's local transport is not
# compare-and-swap, tfgit's ref updates must be. One lock winner; no lost state update.
. "$(dirname "$0")/lib.sh"

R=$(new_remote race)
stack_up a TFGIT_DEFAULT_REPOSITORY="$R"
URL_A=$URL
stack_up b TFGIT_DEFAULT_REPOSITORY="$R"
URL_B=$URL
N=12
pids=()

# N contenders for one lock, alternating between the hosts, all at once
for i in $(seq 1 $N); do
	u=$URL_A; [ $((i % 2)) -eq 0 ] && u=$URL_B
	curl -s -o "$T_DIR/lock.$i" -w '%{http_code}' -X LOCK --data "{\"ID\":\"id-$i\",\"Who\":\"c$i\"}" \
		"$u?state=one.tfstate" >"$T_DIR/code.$i" &
	pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the stacks are children too
wins=$(cat "$T_DIR"/code.* | grep -o 200 | wc -l)
losses=$(cat "$T_DIR"/code.* | grep -o 409 | wc -l)
check "exactly one of $N LOCK contenders wins" expect_eq wins 1 "$wins"
check "every other contender gets 409" expect_eq losses $((N - 1)) "$losses"
holder=$(g "$R" show locks/one.tfstate:one.tfstate.lock | sed -n 's/.*"ID":"\([^"]*\)".*/\1/p')
winner=$(grep -l 200 "$T_DIR"/code.* | sed 's/.*code\.//')
check "the lock on the remote is the winner's" expect_eq holder "id-$winner" "$holder"
bad=0
for i in $(seq 1 $N); do
	[ "$i" = "$winner" ] && continue
	grep -q "\"ID\":\"id-$winner\"" "$T_DIR/lock.$i" || bad=$((bad + 1))
done
check "every 409 names the winner" expect_eq wrong 0 "$bad"

pids=()
# N states on one branch written at once from both hosts: every update lands
for i in $(seq 1 $N); do
	u=$URL_A; [ $((i % 2)) -eq 0 ] && u=$URL_B
	curl -s -o /dev/null -X LOCK --data "{\"ID\":\"w-$i\"}" "$u?state=s$i.tfstate"
done
for i in $(seq 1 $N); do
	u=$URL_A; [ $((i % 2)) -eq 0 ] && u=$URL_B
	curl -s -o /dev/null -w '%{http_code}\n' -X POST --data "{\"serial\":$i}" \
		"$u?state=s$i.tfstate&ID=w-$i" >"$T_DIR/post.$i" &
	pids+=($!)
done
wait "${pids[@]}"
ok200=$(cat "$T_DIR"/post.* | grep -c 200)
check "all $N concurrent POSTs to different states succeed" expect_eq ok "$N" "$ok200"
missing=0
for i in $(seq 1 $N); do
	[ "$(g "$R" show "master:s$i.tfstate" 2>/dev/null)" = "{\"serial\":$i}" ] || missing=$((missing + 1))
done
check "no update was lost: all $N states are on master" expect_eq missing 0 "$missing"
check "master has one commit per update" expect_eq commits "$N" "$(g "$R" rev-list --count master)"
check "git fsck of the remote is clean" g "$R" fsck --strict
echo "# writes retried after a lost compare-and-swap: $(grep -c '(retried)' "$T_DIR/pool.log")"
finish
