#!/usr/bin/env bash
# Issue 8, what a request may change: states inside other states' paths and colliding lock
# branches (409 at once, the cache kept), amend=true only over tfgit's own commit of the same
# state, DELETE under the lock rule, lock IDs compared byte for byte, files that are not
# Terraform states left alone, TFGIT_ALLOWED_STATES and TFGIT_ALLOWED_REFS.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

st() { printf '{"version":4,"serial":%s,"lineage":"%s","outputs":{},"resources":[]}' "$1" "${2:-l-1}"; }
tip() { g "$1" rev-parse -q --verify "refs/heads/$2" 2>/dev/null || echo none; }
refs() { g "$1" for-each-ref --format='%(objectname) %(refname)'; }
# names STATE: BODY names STATE itself, not only a longer path that begins with it
names() { unslash | grep -qE "(^|[^/[:alnum:]_.-])$1([^/[:alnum:]_.-]|$)"; }
is_json_error() { grep -q '"error" *:' <<<"$BODY"; }

git_http_server git plain
htpasswd_line alice 'Int-Pa55' >>"$T_DIR/git/htpasswd"
bare_repo "$GIT_DIR_ROOT/coll.git"
SMART=http://127.0.0.1:$GIT_PORT/coll.git
R5=$(new_remote coll)
R6=$(new_remote amend)
stack_up loose TFGIT_REQUIRE_LOCK=0 TFGIT_DEFAULT_REPOSITORY="$R5" TFGIT_NETRC=/nonexistent \
	TFGIT_ALLOWED_REPOS="http://127.0.0.1:$GIT_PORT/*.git $T_DIR/remotes/*.git" GIT_USERNAME=alice GIT_PASSWORD=Int-Pa55

# 5. a state inside another state's path, and the reverse
req POST "state=prod" --data "$(st 1)"
req POST "state=a/b" --data "$(st 1)"
check "5. set-up: states prod and a/b exist" \
	expect_eq both "$(st 1) $(st 1)" "$(g "$R5" show master:prod 2>&1) $(g "$R5" show master:a/b 2>&1)"
before=$(refs "$R5")
log_mark
req GET "state=prod/x"
check "5. GET prod/x while prod is a state is 409" expect_eq code 409 "$CODE"
check "... a JSON error naming prod" eval 'is_json_error && names prod'
req POST "state=prod/x" --data "$(st 1)"
check "5. POST prod/x is 409" expect_eq code 409 "$CODE"
check "... a JSON error naming prod" eval 'is_json_error && names prod'
req DELETE "state=prod/x"
check "5. DELETE prod/x is 409" expect_eq code 409 "$CODE"
req LOCK "state=prod/x" --data '{"ID":"c-1","Who":"x"}'
check "5. LOCK prod/x is 409" expect_eq code 409 "$CODE"
check "... with lock-info JSON: ID empty, Info and error naming prod" eval \
	'grep -q "\"ID\" *: *\"\"" <<<"$BODY" && grep -q "\"Info\" *: *\"[^\"]*prod" <<<"$(unslash)" && is_json_error && names prod'
req GET "state=a"
check "5. GET a while a/b is a state is 409" expect_eq code 409 "$CODE"
check "... a JSON error naming a/b" eval 'is_json_error && names a/b'
req POST "state=a" --data "$(st 2)"
check "5. POST a is 409" expect_eq code 409 "$CODE"
check "... a JSON error naming a/b" eval 'is_json_error && names a/b'
req DELETE "state=a"
check "5. DELETE a is 409" expect_eq code 409 "$CODE"
req LOCK "state=a" --data '{"ID":"c-2"}'
check "5. LOCK a is 409" expect_eq code 409 "$CODE"
check "5. the colliding requests changed no ref" expect_eq refs "$before" "$(refs "$R5")"
check "5. ... a/b is still there" expect_eq state "$(st 1)" "$(g "$R5" show master:a/b 2>&1)"
check "5. ... and threw no cache away (no 'rebuilding' in the pool log)" \
	expect_eq lines "" "$(since_mark | grep rebuilding)"

# 5. lock branches that collide: locks/q/x held and a LOCK of q, locks/r held and a LOCK of r/x
for remote in local smart; do
	repo=$R5 r=$R5
	[ $remote = smart ] && repo=$SMART r=$GIT_DIR_ROOT/coll.git
	q="repository=$repo"
	req LOCK "$q&state=q/x" --data '{"ID":"q-1"}'
	req LOCK "$q&state=r" --data '{"ID":"r-1"}'
	check "5. $remote: set-up: locks/q/x and locks/r are held" \
		eval "[ '$(tip "$r" locks/q/x)' != none ] && [ '$(tip "$r" locks/r)' != none ]"
	log_mark
	start=$SECONDS
	req LOCK "$q&state=q" --data '{"ID":"q-2"}' --max-time 60
	check "5. $remote: LOCK q while locks/q/x is held is 409" expect_eq code 409 "$CODE"
	check "... at once (no retry, within 5 s)" eval "[ $((SECONDS - start)) -le 5 ] && ! grep -q retried <<<\"\$(since_mark)\""
	check "... naming locks/q/x" grep -q 'locks/q/x' <<<"$(unslash)"
	log_mark
	req LOCK "$q&state=r/x" --data '{"ID":"r-2"}' --max-time 60
	check "5. $remote: LOCK r/x while locks/r is held is 409" expect_eq code 409 "$CODE"
	check "... naming locks/r" eval 'names locks/r'
	check "5. $remote: the locks held are unchanged" \
		expect_eq ids "q-1 r-1" "$(g "$r" show locks/q/x:q/x.lock | sed 's/.*"ID":"\([^"]*\)".*/\1/') $(g "$r" show locks/r:r.lock | sed 's/.*"ID":"\([^"]*\)".*/\1/')"
	check "5. $remote: no cache was thrown away" expect_eq lines "" "$(since_mark | grep rebuilding)"
done

# 6. amend=true replaces only tfgit's own commit of the same state
Q6="repository=$R6"
req POST "$Q6&state=a.tfstate" --data "$(st 1)"
theirs=$(commit_file "$R6" master main.tf 'resource "null" "x" {}')
req POST "$Q6&state=b.tfstate&amend=true" --data "$(st 1)"
check "6. set-up: POST amend=true over someone else's commit is 200" expect_eq code 200 "$CODE"
check "6. someone else's commit at the tip is kept (not amended away)" g "$R6" merge-base --is-ancestor "$theirs" master
check "... and main.tf too" g "$R6" cat-file -e master:main.tf
b_commit=$(tip "$R6" master)
req POST "$Q6&state=a.tfstate&amend=true" --data "$(st 2)"
check "6. tfgit's commit of another state (b) at the tip is kept" g "$R6" merge-base --is-ancestor "$b_commit" master
check "... and b.tfstate too" g "$R6" cat-file -e master:b.tfstate
count=$(g "$R6" rev-list --count master)
req POST "$Q6&state=a.tfstate&amend=true" --data "$(st 3)"
check "6. tfgit's own commit of the same state is amended: as many commits as before" \
	expect_eq commits "$count" "$(g "$R6" rev-list --count master)"
check "... holding the new state" expect_eq state "$(st 3)" "$(g "$R6" show master:a.tfstate)"
req LOCK "$Q6&state=a.tfstate" --data '{"ID":"h1","Who":"pipeline-1"}'
req POST "$Q6&state=a.tfstate&ID=h1" --data "$(st 4)"
h1_commit=$(tip "$R6" master)
req UNLOCK "$Q6&state=a.tfstate" --data '{"ID":"h1"}'
req LOCK "$Q6&state=a.tfstate" --data '{"ID":"h2","Who":"pipeline-2"}'
req POST "$Q6&state=a.tfstate&ID=h2&amend=true" --data "$(st 5)"
check "6. set-up: amend=true under another lock is 200" expect_eq code 200 "$CODE"
check "6. the same state's commit made under another lock (another pipeline) is kept" \
	g "$R6" merge-base --is-ancestor "$h1_commit" master
req UNLOCK "$Q6&state=a.tfstate" --data '{"ID":"h2"}'

# 7, 9, 13 with the lock required (the default)
R7=$(new_remote strict)
stack_up strict TFGIT_DEFAULT_REPOSITORY="$R7"
lock_id_of() { g "$R7" show "locks/$1:$1.lock" 2>/dev/null | sed -n 's/.*"ID":"\([^"]*\)".*/\1/p'; }

# 7. DELETE follows POST's lock rule
req LOCK "state=d.tfstate" --data '{"ID":"d-1"}'
req POST "state=d.tfstate&ID=d-1" --data "$(st 1)"
req UNLOCK "state=d.tfstate" --data '{"ID":"d-1"}'
check "7. set-up: state d.tfstate exists, unlocked" \
	eval "g '$R7' cat-file -e master:d.tfstate && [ '$(tip "$R7" locks/d.tfstate)' = none ]"
req DELETE "state=d.tfstate&ID=d-1"
check "7. DELETE with the ID of a released lock is 428" expect_eq code 428 "$CODE"
check "... and the state stays" g "$R7" cat-file -e master:d.tfstate
req DELETE "state=d.tfstate"
check "7. DELETE without a lock (TFGIT_REQUIRE_LOCK=1, the default) is 428" expect_eq code 428 "$CODE"
check "... and the state stays" g "$R7" cat-file -e master:d.tfstate
req LOCK "state=d.tfstate" --data '{"ID":"d-2","Who":"holder"}'
req DELETE "state=d.tfstate&ID=d-3"
check "7. DELETE with another ID than the holder's is 409" expect_eq code 409 "$CODE"
check "... with the holder's lock JSON" grep -q '"ID":"d-2"' <<<"$BODY"
req DELETE "state=d.tfstate&ID=d-2"
check "7. DELETE by the holder is 200" expect_eq code 200 "$CODE"
check "... and removes the state" eval "! g '$R7' cat-file -e master:d.tfstate 2>/dev/null"
req UNLOCK "state=d.tfstate" --data '{"ID":"d-2"}'

# 9. lock IDs compared byte for byte: "I1\nX" is not "I1 X"
req LOCK "state=i.tfstate" --data '{"ID":"I1\nX","Who":"nl"}'
check "9. set-up: LOCK with ID \"I1\\nX\" is 200" expect_eq code 200 "$CODE"
req POST "state=i.tfstate&ID=I1%20X" --data "$(st 1)"
check "9. POST with ID=I1 X is 409" expect_eq code 409 "$CODE"
check "... and writes nothing" expect_eq tip none "$(g "$R7" rev-parse -q --verify master:i.tfstate || echo none)"
req LOCK "state=i.tfstate" --data '{"ID":"I1 X"}'
check "9. LOCK with ID \"I1 X\" is 409 (not the holder re-locking)" expect_eq code 409 "$CODE"
req POST "state=i.tfstate&ID=I1%0AX" --data "$(st 1)"
check "9. POST with the holder's exact ID (I1%0AX) is 200" expect_eq code 200 "$CODE"
req UNLOCK "state=i.tfstate" --data '{"ID":"I1 X"}'
check "9. UNLOCK with ID \"I1 X\" is 409" expect_eq code 409 "$CODE"
check "... and the lock stays" eval "[ '$(tip "$R7" locks/i.tfstate)' != none ]"
req UNLOCK "state=i.tfstate" --data '{"ID":"I1\nX"}'
check "9. UNLOCK with the holder's exact ID is 200" expect_eq code 200 "$CODE"

# 13. files that are not Terraform states are not overwritten or deleted
TFJSON='{"resource":{"null_resource":{"x":{}}}}'
commit_file "$R7" master main.tf.json "$TFJSON" >/dev/null
commit_file "$R7" master notes.txt 'not json' >/dev/null
commit_file "$R7" master link.tfstate 'real.tfstate' 120000 >/dev/null
commit_file "$R7" master sub.tfstate "$(tip "$R7" master)" 160000 >/dev/null
commit_file "$R7" master real.tfstate "$(st 1 real)" >/dev/null
files() { g "$R7" ls-tree master main.tf.json notes.txt link.tfstate sub.tfstate; }
before=$(files)
for s in main.tf.json notes.txt link.tfstate sub.tfstate; do
	req LOCK "state=$s" --data '{"ID":"n-1"}'
	req POST "state=$s&ID=n-1" --data "$(st 1)"
	check "13. POST over $s (not a Terraform state) is 409" expect_eq code 409 "$CODE"
	req DELETE "state=$s&ID=n-1"
	check "13. DELETE of $s is 409" expect_eq code 409 "$CODE"
	req UNLOCK "state=$s" --data '{"ID":"n-1"}'
done
check "13. those files are unchanged" expect_eq files "$before" "$(files)"
req LOCK "state=real.tfstate" --data '{"ID":"n-2"}'
req POST "state=real.tfstate&ID=n-2" --data "$(st 2 real)"
check "13. POST over a Terraform state written by the git CLI is 200" expect_eq code 200 "$CODE"
req UNLOCK "state=real.tfstate" --data '{"ID":"n-2"}'
# a new file of a name no state has yet: the body itself must be a state
tip_before=$(g "$R7" rev-parse master)
for s in new.tf.json azure-pipelines.yml; do
	req LOCK "state=$s" --data '{"ID":"n-3"}'
	req POST "state=$s&ID=n-3" --data '{"resource":{"terraform_data":{"x":{"provisioner":{"local-exec":{"command":"id"}}}}}}'
	check "13. POST of a body that is not a state (configuration) to a new $s is 400" expect_eq code 400 "$CODE"
	check "... saying so" grep -q "not a Terraform state" <<<"$BODY"
	req PUT "state=$s&ID=n-3" --data '{"trigger":["main"],"steps":[{"script":"id"}]}'
	check "13. PUT of a pipeline to a new $s is 400" expect_eq code 400 "$CODE"
	req UNLOCK "state=$s" --data '{"ID":"n-3"}'
done
check "13. nothing was written" expect_eq tip "$tip_before" "$(g "$R7" rev-parse master)"

# 13. TFGIT_ALLOWED_STATES and TFGIT_ALLOWED_REFS
R13=$(new_remote names)
stack_up names TFGIT_DEFAULT_REPOSITORY="$R13" TFGIT_ALLOWED_STATES="*.tfstate envs/*/terraform.tfstate" \
	TFGIT_ALLOWED_REFS="master release/*"
for s in main.tf.json envs/prod/x/terraform.tfstate envs/terraform.tfstate; do
	req GET "state=$s"
	check "13. TFGIT_ALLOWED_STATES: GET of $s is 403" expect_eq code 403 "$CODE"
	check "... a JSON error" is_json_error
done
req LOCK "state=main.tf.json" --data '{"ID":"m-1"}'
check "13. TFGIT_ALLOWED_STATES: LOCK of main.tf.json is 403" expect_eq code 403 "$CODE"
req POST "state=main.tf.json&ID=m-1" --data "$(st 1)"
check "13. TFGIT_ALLOWED_STATES: POST of main.tf.json is 403" expect_eq code 403 "$CODE"
for s in x.tfstate envs/prod/terraform.tfstate; do
	req GET "state=$s"
	check "13. TFGIT_ALLOWED_STATES: GET of $s is allowed (204)" expect_eq code 204 "$CODE"
done
for ref in dev release/a/b locks-x; do
	req GET "state=x.tfstate&ref=$ref"
	check "13. TFGIT_ALLOWED_REFS: GET on branch $ref is 403" expect_eq code 403 "$CODE"
done
req LOCK "state=x.tfstate&ref=dev" --data '{"ID":"m-2"}'
req POST "state=x.tfstate&ref=dev&ID=m-2" --data "$(st 1)"
check "13. TFGIT_ALLOWED_REFS: a LOCK and POST on branch dev are 403" expect_eq code 403 "$CODE"
req GET "state=x.tfstate&ref=release/1"
check "13. TFGIT_ALLOWED_REFS: GET on branch release/1 is allowed (204)" expect_eq code 204 "$CODE"
check "13. the refused requests made no ref" expect_eq refs "" "$(refs "$R13")"

# a lock branch without a readable lock file still holds its state; the 409 tells so in lock
# JSON that stays JSON whatever the state's path holds (here a '"')
RQ=$(new_remote quoted)
stack_up quoted TFGIT_DEFAULT_REPOSITORY="$RQ"
commit_file "$RQ" 'locks/q"x.tfstate' other.txt "no lock file here" >/dev/null
req LOCK "state=q%22x.tfstate" --data '{"ID":"q-1"}'
check "a lock branch without its lock file: LOCK is 409" expect_eq code 409 "$CODE"
check "... with lock JSON that parses, naming the branch" \
	expect_eq info 'branch locks/q"x.tfstate holds no readable' \
	"$(jq -r '.Info' <<<"$BODY" 2>&1 | cut -c1-42)"
# a local remote that borrows objects from another repository (git clone --shared, an object
# pool): what tfgit writes goes into the remote's own objects, never into the lender's
LENDER=$T_DIR/remotes/lender.git # another user's (root's), readable by all, as a reference repository is
git init -q --bare "$LENDER"
commit_file "$LENDER" master seed.txt "seed" >/dev/null
BORROWER=$T_DIR/remotes/borrower.git
git clone -q --bare --shared "$LENDER" "$BORROWER"
chown -R "$POOL_USER" "$BORROWER"
lender_objects=$(find "$LENDER/objects" -type f | sort | md5sum)
stack_up borrow TFGIT_DEFAULT_REPOSITORY="$BORROWER"
req LOCK "state=b.tfstate" --data '{"ID":"b-1"}'
codes=$CODE
req POST "state=b.tfstate&ID=b-1" --data "$(st 1)"
codes="$codes $CODE"
req UNLOCK "state=b.tfstate" --data '{"ID":"b-1"}'
check "a remote with an alternate: LOCK, POST, UNLOCK are 200" expect_eq codes "200 200 200" "$codes $CODE"
check "... the lender's objects are untouched" expect_eq objects "$lender_objects" \
	"$(find "$LENDER/objects" -type f | sort | md5sum)"
mv "$BORROWER/objects/info/alternates" "$T_DIR/alternates.saved"
check "... the remote holds the state's version itself (git show without the alternate)" \
	expect_eq state "$(st 1)" "$(g "$BORROWER" show master:b.tfstate 2>&1)"
mv "$T_DIR/alternates.saved" "$BORROWER/objects/info/alternates"
finish
