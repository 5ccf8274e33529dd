#!/usr/bin/env bash
# Every row of the request contract through real nginx and the real pool, checked in the
# remote with the git CLI afterwards.
. "$(dirname "$0")/lib.sh"

R=$(new_remote main)
OTHER=$(new_remote other)
DENIED=$(new_remote denied)
stack_up http TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ALLOWED_REPOS="$T_DIR/remotes/oth*.git" \
	TFGIT_MAX_BODY=65536
S=envs/prod/terraform.tfstate
Q="state=$S"
LOCK_A='{"ID":"aaaa-1111","Operation":"OperationTypeApply","Info":"","Who":"alice@ci","Version":"1.11.4","Created":"2026-11-24T10:00:00.123456789Z","Path":""}'
LOCK_B='{"ID":"bbbb-2222","Operation":"OperationTypePlan","Info":"","Who":"bob@ci","Version":"1.11.4","Created":"2026-11-24T10:00:01Z","Path":""}'
STATE1='{"version":4,"serial":1,"lineage":"l-1","outputs":{},"resources":[]}'
STATE2='{"version":4,"serial":2,"lineage":"l-1","outputs":{},"resources":[]}'
tip() { g "$R" rev-parse -q --verify "refs/heads/$1" 2>/dev/null || echo none; }
json_id() { sed -n 's/.*"ID":"\([^"]*\)".*/\1/p' <<<"$1"; }
is_json_error() { grep -q '^{"error":' <<<"$BODY"; }

req GET "$Q"
check "GET of a state on a branch that does not exist is 204" expect_eq code 204 "$CODE"

req LOCK "$Q" --data "$LOCK_A"
check "LOCK is 200" expect_eq code 200 "$CODE"
check "LOCK pushed branch locks/$S carrying $S.lock = the body" \
	expect_eq lock "$LOCK_A" "$(g "$R" show "locks/$S:$S.lock")"
check "the lock commit says Lock <state> with trailers" \
	grep -q "Lock-ID: aaaa-1111" <<<"$(g "$R" log -1 --format=%B "locks/$S")"
lock_tip=$(tip "locks/$S")

req LOCK "$Q" --data "$LOCK_A"
check "LOCK again by the same ID is 200 (Terraform re-sends after a 5xx)" expect_eq code 200 "$CODE"
check "LOCK again by the same ID changes nothing" expect_eq tip "$lock_tip" "$(tip "locks/$S")"

req LOCK "$Q" --data "$LOCK_B"
check "LOCK by another ID is 409" expect_eq code 409 "$CODE"
check "the 409 body is the holder's lock JSON" expect_eq id aaaa-1111 "$(json_id "$BODY")"
check "a lost LOCK leaves the holder's lock" expect_eq tip "$lock_tip" "$(tip "locks/$S")"

req POST "$Q" --data "$STATE1"
check "POST without ID while locked is 409" expect_eq code 409 "$CODE"
check "... with the holder's lock JSON" expect_eq id aaaa-1111 "$(json_id "$BODY")"
req POST "$Q&ID=bbbb-2222" --data "$STATE1"
check "POST with another ID is 409" expect_eq code 409 "$CODE"
check "a refused POST makes no branch" expect_eq tip none "$(tip master)"

# Terraform re-encodes the query and sorts the keys when it adds ID=
req POST "ID=aaaa%2D1111&state=envs%2Fprod%2Fterraform.tfstate&type=git" --data "$STATE1" \
	-H "Content-MD5: $(printf %s "$STATE1" | openssl md5 -binary | base64)"
check "POST by the holder, keys sorted and re-escaped, is 200" expect_eq code 200 "$CODE"
check "the state is on master" expect_eq state "$STATE1" "$(g "$R" show "master:$S")"
msg=$(g "$R" log -1 --format=%B master)
check "the commit is 'Update <state>' with the lock's trailers" \
	grep -qz "^Update $S.*Lock-ID: aaaa-1111.*Who: alice@ci.*Operation: OperationTypeApply" <<<"$msg"
first=$(tip master)

req POST "$Q&ID=aaaa-1111" --data "$STATE1"
check "an identical POST is 200" expect_eq code 200 "$CODE"
check "an identical POST makes no commit" expect_eq tip "$first" "$(tip master)"

req GET "$Q"
check "GET is 200 with the state" expect_eq body "$STATE1" "$BODY"
hdrs=$(curl -s -D - -o /dev/null "$URL?$Q" | tr -d '\r')
check "GET sends Content-MD5 of the body" grep -qi "^Content-MD5: $(printf %s "$STATE1" | openssl md5 -binary | base64)$" <<<"$hdrs"
check "GET sends the blob id as ETag" grep -qi "^ETag: \"$(g "$R" rev-parse "master:$S")\"$" <<<"$hdrs"
check "GET sends Content-Type application/json" grep -qi '^Content-Type: application/json' <<<"$hdrs"
check "GET sends Content-Length of the state" grep -qi "^Content-Length: ${#STATE1}$" <<<"$hdrs"
check "GET sends Cache-Control: no-store" grep -qi '^Cache-Control: no-store$' <<<"$hdrs"

req POST "$Q&ID=aaaa-1111" --data "$STATE2" -H "Content-MD5: $(printf x | openssl md5 -binary | base64)"
check "POST with a wrong Content-MD5 is 400" expect_eq code 400 "$CODE"
check "... with a JSON error body" is_json_error
req POST "$Q&ID=aaaa-1111" --data-binary ''
check "POST with an empty body is 400" expect_eq code 400 "$CODE"
req POST "$Q&ID=aaaa-1111" --data 'serial = 3'
check "POST of a body that is not JSON is 400" expect_eq code 400 "$CODE"
deep=$(printf '{"a":%.0s' $(seq 100))1$(printf '}%.0s' $(seq 100))
req POST "$Q&ID=aaaa-1111" --data "$deep"
check "POST of JSON nested 100 deep is 400" expect_eq code 400 "$CODE"
req POST "$Q&ID=aaaa-1111" --data "$(head -c 70000 /dev/zero | tr '\0' ' ')"'{}'
check "POST over TFGIT_MAX_BODY is 413" expect_eq code 413 "$CODE"
check "... with a JSON error body" is_json_error
check "refused POSTs changed nothing" expect_eq tip "$first" "$(tip master)"

req POST "$Q&ID=aaaa-1111" --data "$STATE2"
check "a second POST is 200" expect_eq code 200 "$CODE"
count=$(g "$R" rev-list --count master)
req POST "$Q&ID=aaaa-1111&amend=true" --data '{"version":4,"serial":3,"lineage":"l-1"}'
check "POST with amend=true is 200" expect_eq code 200 "$CODE"
check "amend replaced the tip: same number of commits" expect_eq commits "$count" "$(g "$R" rev-list --count master)"
check "amend stored the new content" grep -q '"serial":3' <<<"$(g "$R" show "master:$S")"
req POST "$Q&ID=aaaa-1111&amend=maybe" --data "$STATE2"
check "amend other than true/false is 400" expect_eq code 400 "$CODE"

req UNLOCK "$Q" --data "$LOCK_B"
check "UNLOCK with another ID's lock is 409" expect_eq code 409 "$CODE"
check "... with the holder's lock JSON" expect_eq id aaaa-1111 "$(json_id "$BODY")"
check "... and the lock stays" expect_eq tip "$lock_tip" "$(tip "locks/$S")"
req UNLOCK "$Q" --data "$LOCK_A"
check "UNLOCK by the holder is 200" expect_eq code 200 "$CODE"
check "UNLOCK deleted the lock branch on the remote" expect_eq tip none "$(tip "locks/$S")"
req UNLOCK "$Q" --data "$LOCK_A"
check "UNLOCK without a lock is 200" expect_eq code 200 "$CODE"

before=$(tip master)
req POST "$Q" --data "$STATE2"
check "POST while not locked is 428 (TFGIT_REQUIRE_LOCK)" expect_eq code 428 "$CODE"
req POST "$Q&ID=aaaa-1111" --data "$STATE2"
check "POST with an ID whose lock is gone is 428" expect_eq code 428 "$CODE"
check "... and changes nothing" expect_eq tip "$before" "$(tip master)"

# force-unlock: Terraform sends UNLOCK with an empty, chunked body and no ID
req LOCK "$Q" --data "$LOCK_B"
req UNLOCK "$Q" -H 'Transfer-Encoding: chunked' --data-binary ''
check "UNLOCK with an empty chunked body (force-unlock) is 200" expect_eq code 200 "$CODE"
check "force-unlock removed the lock" expect_eq tip none "$(tip "locks/$S")"
check "force-unlock is logged with who asked and the lock it removed" \
	grep -q "force-unlock of $S by user=- addr=127.0.0.1 removed the lock .*bbbb-2222" "$T_DIR/pool.log"
req LOCK "$Q" --data "$LOCK_B"
req UNLOCK "$Q" --data '{"ID":"","Operation":"","Info":"","Who":"","Version":"","Created":"0001-01-01T00:00:00Z","Path":""}'
check "UNLOCK with lock JSON without ID is a force-unlock too" expect_eq tip none "$(tip "locks/$S")"
req UNLOCK "$Q" --data 'not json'
check "UNLOCK with a body that is neither empty nor JSON is 400" expect_eq code 400 "$CODE"

req LOCK "$Q" --data "$LOCK_B"
req DELETE "$Q&ID=aaaa-1111"
check "DELETE while another ID holds the lock is 409" expect_eq code 409 "$CODE"
check "... with the holder's lock JSON" expect_eq id bbbb-2222 "$(json_id "$BODY")"
check "... and the state stays" g "$R" cat-file -e "master:$S"
req DELETE "$Q&ID=bbbb-2222"
check "DELETE by the holder is 200" expect_eq code 200 "$CODE"
check "DELETE removed the state from master" expect_eq gone 1 "$(g "$R" cat-file -e "master:$S" 2>/dev/null && echo 0 || echo 1)"
check "the commit is 'Delete <state>'" grep -q "^Delete $S" <<<"$(g "$R" log -1 --format=%s master)"
after_delete=$(tip master)
req DELETE "$Q&ID=bbbb-2222"
check "DELETE of a state that does not exist is 200" expect_eq code 200 "$CODE"
check "... and makes no commit" expect_eq tip "$after_delete" "$(tip master)"
req GET "$Q"
check "GET of a deleted state is 204" expect_eq code 204 "$CODE"
req UNLOCK "$Q" --data "$LOCK_B"

for m in PATCH OPTIONS PROPFIND; do
	out=$(curl -s -D - -X "$m" "$URL?$Q" | tr -d '\r')
	check "$m is 405 with Allow" grep -q '^Allow: GET, POST, PUT, DELETE, LOCK, UNLOCK$' <<<"$out"
done
check "405 carries a JSON error body" grep -q '"error"' <<<"$out"

before=$(g "$R" for-each-ref --format='%(objectname) %(refname)')
for bad in '../x.tfstate' '/abs.tfstate' 'a//b.tfstate' 'a/./b.tfstate' 'x.tfstate.lock' \
	'.git/config' 'a/.GIT/b' 'ctl%01.tfstate' 'sp%0A.tfstate' 'a/' "$(head -c 1100 /dev/zero | tr '\0' a)"; do
	req GET "state=$bad"
	check "state '${bad:0:30}' is 400" expect_eq code 400 "$CODE"
done
req POST "ID=x&state=..%2Fescape.tfstate" --data "$STATE1"
check "an escaped ../ state is 400 on POST" expect_eq code 400 "$CODE"
req GET ""
check "a missing state is 400" expect_eq code 400 "$CODE"
req GET "$Q&type=s3"
check "type other than git is 400" expect_eq code 400 "$CODE"
req GET "$Q&ref=bad..ref"
check "an invalid ref is 400" expect_eq code 400 "$CODE"
req GET "$Q&ref=locks/x"
check "a ref under locks/ is 400" expect_eq code 400 "$CODE"
req GET "$Q&state=second.tfstate"
check "a parameter given twice is 400" expect_eq code 400 "$CODE"
req GET "$Q&repository=%2Fetc"
check "a repository not allowed is 403" expect_eq code 403 "$CODE"
check "... with a JSON error body" is_json_error
req GET "$Q&repository=$DENIED"
check "a local repository outside TFGIT_ALLOWED_REPOS is 403" expect_eq code 403 "$CODE"
req GET "$Q&repository=$T_DIR/remotes/other.git/../main.git"
check "a repository with .. is 400" expect_eq code 400 "$CODE"
req GET "$Q&repository=relative/path.git"
check "a relative repository path is 400" expect_eq code 400 "$CODE"
check "refused requests changed no ref" expect_eq refs "$before" "$(g "$R" for-each-ref --format='%(objectname) %(refname)')"

req LOCK "state=x.tfstate&repository=$OTHER&ref=main" --data "$LOCK_A"
req POST "state=x.tfstate&repository=$OTHER&ref=main&ID=aaaa-1111" --data "$STATE1"
check "a repository allowed by TFGIT_ALLOWED_REPOS, on branch main, is written" \
	expect_eq state "$STATE1" "$(g "$OTHER" show main:x.tfstate)"
req POST "state=y.tfstate&repository=$OTHER&ref=main" --data "$STATE2"
check "... a second state there without its lock is 428" expect_eq code 428 "$CODE"
req LOCK "state=y.tfstate&repository=$OTHER&ref=main" --data "$LOCK_B"
req POST "state=y.tfstate&repository=$OTHER&ref=main&ID=bbbb-2222" --data "$STATE2"
check "two states on one branch are both kept" \
	expect_eq both "$STATE1 $STATE2" "$(g "$OTHER" show main:x.tfstate) $(g "$OTHER" show main:y.tfstate)"
req GET "state=x.tfstate&repository=file://$OTHER&ref=main"
check "a file:// URL is parsed: the allowed path it names is allowed" expect_eq code 200 "$CODE"
req GET "state=x.tfstate&repository=file://$T_DIR/remotes/denied.git&ref=main"
check "... and one outside the patterns is 403" expect_eq code 403 "$CODE"

check "git fsck of the remote is clean" g "$R" fsck --strict
check "git fsck of the second remote is clean" g "$OTHER" fsck --strict
check "the pool log holds no request body" eval "! grep -q 'serial' '$T_DIR/pool.log'"
finish
