#!/usr/bin/env bash
# The smart-protocol path (git:// served by git daemon on loopback): the same cycle as local
# remotes, compare-and-swap by the server's receive-pack, and the remote's failures.
. "$(dirname "$0")/lib.sh"

D=$T_DIR/daemon
mkdir -p "$D"
git init -q --bare "$D/state.git"
DPORT=$(free_port)
git daemon --export-all --enable=receive-pack --base-path="$D" --listen=127.0.0.1 \
	--port="$DPORT" --reuseaddr --pid-file="$T_DIR/daemon.pid" 2>>"$T_DIR/daemon.log" &
DAEMON_PID=$!
wait_for 10 "git daemon" git ls-remote "git://127.0.0.1:$DPORT/state.git" || { fail "git daemon starts"; exit 1; }
REPO=git://127.0.0.1:$DPORT/state.git
R=$D/state.git
ALLOW="git://127.0.0.1:*/*.git"
stack_up a TFGIT_ALLOWED_REPOS="$ALLOW"
URL_A=$URL
stack_up b TFGIT_ALLOWED_REPOS="$ALLOW"
URL_B=$URL
Q="repository=$REPO&ref=main&state=app/terraform.tfstate"
LOCK='{"ID":"git-1","Who":"daemon@test","Operation":"OperationTypeApply"}'
tip() { g "$R" rev-parse -q --verify "refs/heads/$1" 2>/dev/null || echo none; }

req GET "$Q"
check "GET over git:// of an empty remote is 204" expect_eq code 204 "$CODE"
req LOCK "$Q" --data "$LOCK"
check "LOCK over git:// is 200" expect_eq code 200 "$CODE"
check "... the lock branch is on the daemon's repository" \
	expect_eq lock "$LOCK" "$(g "$R" show locks/app/terraform.tfstate:app/terraform.tfstate.lock)"
req LOCK "$Q" --data '{"ID":"other"}'
check "a second LOCK over git:// is 409 with the holder" eval "[ $CODE = 409 ] && grep -q git-1 <<<'$BODY'"
req POST "$Q&ID=git-1" --data '{"version":4,"serial":1,"lineage":"t"}'
check "POST over git:// is 200" expect_eq code 200 "$CODE"
check "... the state is on main" expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$(g "$R" show main:app/terraform.tfstate)"
URL=$URL_B
req POST "$Q&ID=git-1" --data '{"version":4,"serial":2,"lineage":"t"}'
check "POST from the second host (its cache one commit behind) is 200" expect_eq code 200 "$CODE"
check "... and builds on the first host's commit" expect_eq commits 2 "$(g "$R" rev-list --count main)"
URL=$URL_A
req GET "$Q"
check "the first host reads the second host's write" expect_eq state '{"version":4,"serial":2,"lineage":"t"}' "$BODY"
req UNLOCK "$Q" --data "$LOCK"
check "UNLOCK over git:// deletes the lock branch" expect_eq lock none "$(tip locks/app/terraform.tfstate)"

N=10
at_once LOCK "$Q" '{"ID":"r-%i"}' $N "$URL_A" "$URL_B"
check "exactly one of $N LOCK contenders over git:// wins" expect_eq wins 1 "$AT_ONCE_200"
check "the others get 409" expect_eq losses $((N - 1)) "$AT_ONCE_409"

write_states_at_once "repository=$REPO&ref=main" $N "$URL_A" "$URL_B"
check "$N concurrent POSTs over git:// from two hosts all succeed" expect_eq ok "$N" "$AT_ONCE_200"
check "no update was lost on the daemon's repository" expect_eq found "$N" "$(states_on "$R" main $N)"
echo "# writes retried after a rejected push: $(grep -c '(retried)' "$T_DIR/pool.log")"

tf_over git:// "$URL?repository=$REPO&ref=main" over-git "$R" main

req GET "repository=git://127.0.0.1:$DPORT/missing.git&state=x.tfstate"
check "a repository the server does not have is 502" expect_eq code 502 "$CODE"
check "... with a JSON error body" grep -q '"error"' <<<"$BODY"
stop_pid "$DAEMON_PID"
req GET "$Q"
check "the remote down is 503" expect_eq code 503 "$CODE"
hdr=$(curl -s -D - -o /dev/null "$URL?$Q" | tr -d '\r')
check "... with Retry-After" grep -qi '^Retry-After: [0-9]' <<<"$hdr"
check "git fsck of the daemon's repository is clean" g "$R" fsck --strict
finish
