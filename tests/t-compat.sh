#!/usr/bin/env bash
# A repository laid out by terraform-backend-git (built here with the git CLI, as that project
# does: state on master, branch locks/<state> forked from master carrying <state>.lock) is read,
# its lock honoured, and what tfgit writes reads back the same way with plain git.
. "$(dirname "$0")/lib.sh"

R=$(new_remote ref)
S=network/terraform.tfstate
STATE='{"version":4,"serial":7,"lineage":"ref-lineage","outputs":{},"resources":[]}'
LOCK='{"ID":"c0ffee00-0000-4000-8000-000000000001","Operation":"OperationTypeApply","Info":"","Who":"go@runner","Version":"1.5.7","Created":"2026-11-01T12:00:00Z","Path":""}'
wt=$T_DIR/wt
chown -R "$(id -u)" "$R" # built as the test user, handed to the pool below
# every git command names its work tree: a failed clone must never leave git running in the
# directory the test was started from (the project's own checkout)
if ! git clone -q "$R" "$wt" || ! (
	set -e
	w() { git -C "$wt" "$@"; }
	w checkout -q -b master
	mkdir -p "$wt/network"
	printf '%s' "$STATE" >"$wt/$S"
	w add "$S" && w commit -q -m "Update $S" && w push -q origin master
	w checkout -q -b "locks/$S"
	printf '%s' "$LOCK" >"$wt/$S.lock"
	w add "$S.lock" && w commit -q -m "Lock $S" && w push -q origin "locks/$S"
); then
	fail "the reference-layout repository is built with the git CLI"
	exit 1
fi
chown -R "$POOL_USER" "$R"
stack_up compat TFGIT_DEFAULT_REPOSITORY="$R"
Q="state=$S&type=git&ref=master&repository=$R"

req GET "$Q"
check "GET reads the reference's state" expect_eq state "$STATE" "$BODY"
req LOCK "$Q" --data '{"ID":"another","Who":"tfgit-user"}'
check "LOCK honours the reference's lock: 409" expect_eq code 409 "$CODE"
check "... naming its holder" grep -q c0ffee00-0000-4000-8000-000000000001 <<<"$BODY"
req POST "$Q&ID=another" --data "$STATE"
check "POST by another ID is 409" expect_eq code 409 "$CODE"
NEW='{"version":4,"serial":8,"lineage":"ref-lineage","outputs":{},"resources":[]}'
req POST "$Q&ID=c0ffee00-0000-4000-8000-000000000001" --data "$NEW"
check "POST by the reference lock's holder is 200" expect_eq code 200 "$CODE"
check "... on top of the reference's history" expect_eq parent "Update $S" "$(g "$R" log -1 --format=%s master~1)"
req UNLOCK "$Q" --data "$LOCK"
check "UNLOCK with the reference's lock body removes its branch" \
	expect_eq lock "" "$(g "$R" for-each-ref "refs/heads/locks/")"

req LOCK "$Q" --data "$LOCK"
check "a tfgit lock reads with plain git as the reference reads it" \
	expect_eq lock "$LOCK" "$(g "$R" show "locks/$S:$S.lock")"
check "a tfgit state reads with plain git" expect_eq state "$NEW" "$(g "$R" show "master:$S")"
check "git fsck is clean" g "$R" fsck --strict
finish
