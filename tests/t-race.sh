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

# N contenders for one lock, alternating between the hosts, all at once
at_once LOCK "state=one.tfstate" '{"ID":"id-%i","Who":"c%i"}' $N "$URL_A" "$URL_B"
check "exactly one of $N LOCK contenders wins" expect_eq wins 1 "$AT_ONCE_200"
check "every other contender gets 409" expect_eq losses $((N - 1)) "$AT_ONCE_409"
holder=$(g "$R" show locks/one.tfstate:one.tfstate.lock | sed -n 's/.*"ID":"\([^"]*\)".*/\1/p')
check "every 409 names the lock's holder on the remote" \
	expect_eq bodies $((N - 1)) "$(grep -l "\"ID\":\"$holder\"" "$T_DIR"/body.* | wc -l)"

# N states on one branch written at once from both hosts: every update lands
for i in $(seq 1 $N); do
	curl -s -o /dev/null -X LOCK --data "{\"ID\":\"w-$i\"}" "$URL_A?state=s$i.tfstate"
done
at_once POST "state=s%i.tfstate&ID=w-%i" '{"serial":%i}' $N "$URL_A" "$URL_B"
check "all $N concurrent POSTs to different states succeed" expect_eq ok "$N" "$AT_ONCE_200"
check "no update was lost: all $N states are on master" expect_eq found "$N" "$(states_on "$R" master $N)"
check "master has one commit per update" expect_eq commits "$N" "$(g "$R" rev-list --count master)"
check "git fsck of the remote is clean" g "$R" fsck --strict
echo "# writes retried after a lost compare-and-swap: $(grep -c '(retried)' "$T_DIR/pool.log")"
finish
