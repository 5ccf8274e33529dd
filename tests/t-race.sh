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

# N contenders for one lock, alternating between the hosts, all at once; ten rounds, since a
# creation race is narrow (libgit2 1.5's git_reference_create checks existence outside the ref
# lock: two creators could both win, which this caught in a stress run)
ROUNDS=10 bad_rounds="" bad_bodies=""
for round in $(seq 1 $ROUNDS); do
	at_once LOCK "state=one-$round.tfstate" '{"ID":"id-%i","Who":"c%i"}' $N "$URL_A" "$URL_B"
	[ "$AT_ONCE_200" = 1 ] && [ "$AT_ONCE_409" = $((N - 1)) ] || bad_rounds="$bad_rounds $round($AT_ONCE_200 won)"
	holder=$(g "$R" show "locks/one-$round.tfstate:one-$round.tfstate.lock" | sed -n 's/.*"ID":"\([^"]*\)".*/\1/p')
	named=$(grep -l "\"ID\":\"$holder\"" "$T_DIR"/body.* | wc -l)
	[ "$named" = $((N - 1)) ] || bad_bodies="$bad_bodies $round"
	rm -f "$T_DIR"/body.*
done
check "$ROUNDS rounds of $N LOCK contenders: exactly one winner each, every other gets 409" expect_eq bad "" "$bad_rounds"
check "every 409 names the lock's holder on the remote" expect_eq bad "" "$bad_bodies"

# N states on one branch written at once from both hosts: every update lands
write_states_at_once "" $N "$URL_A" "$URL_B"
check "all $N concurrent POSTs to different states succeed" expect_eq ok "$N" "$AT_ONCE_200"
check "no update was lost: all $N states are on master" expect_eq found "$N" "$(states_on "$R" master $N)"
check "master has one commit per update" expect_eq commits "$N" "$(g "$R" rev-list --count master)"
check "git fsck of the remote is clean" g "$R" fsck --strict
echo "# writes retried after a lost compare-and-swap: $(grep -c '(retried)' "$T_DIR/pool.log")"
finish
