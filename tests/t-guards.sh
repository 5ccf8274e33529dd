#!/usr/bin/env bash
# Issue 11, the audit trail and the optional guards: Serial and Terraform-Version trailers on
# every state commit (amend still applying), TFGIT_LOCK_TTL taking over an expired lock with
# compare-and-swap, TFGIT_LINEAGE_GUARD refusing a state of another lineage.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

st() { printf '{"version":4,"terraform_version":"%s","serial":%s,"lineage":"%s","outputs":{},"resources":[]}' "$3" "$1" "$2"; }
# trailer REMOTE REV KEY: the values of trailer KEY of commit REV, one a line
trailer() { g "$1" log -1 --format="%(trailers:key=$3,valueonly,separator=%x2C)" "$2"; }
lock_id_on() { g "$1" show "locks/$2:$2.lock" 2>/dev/null | jq -r .ID; }
# old_lock REMOTE STATE ID AGE: a lock of ID on STATE whose commit is AGE seconds old
old_lock() {
	GIT_COMMITTER_DATE="@$(($(date +%s) - $4)) +0000" \
		commit_file "$1" "locks/$2" "$2.lock" "{\"ID\":\"$3\",\"Who\":\"gone@host\",\"Operation\":\"OperationTypeApply\"}" >/dev/null
}

R=$(new_remote trail)
stack_up trail TFGIT_DEFAULT_REPOSITORY="$R"
URL_TRAIL=$URL

# 1. the audit trail
req LOCK "state=a.tfstate" --data '{"ID":"a-1","Who":"alice@ci","Operation":"OperationTypeApply"}'
req POST "state=a.tfstate&ID=a-1" --data "$(st 7 L1 1.9.5)"
check "1. set-up: POST under the lock is 200" expect_eq code 200 "$CODE"
check "1. the commit carries Serial: 7" expect_eq serial 7 "$(trailer "$R" master Serial)"
check "... and Terraform-Version: 1.9.5" expect_eq version 1.9.5 "$(trailer "$R" master Terraform-Version)"
check "... beside Lock-ID, Who and Operation" expect_eq others "a-1 alice@ci OperationTypeApply" \
	"$(trailer "$R" master Lock-ID) $(trailer "$R" master Who) $(trailer "$R" master Operation)"
check "... as git's own trailer block (five trailers)" \
	expect_eq count 5 "$(g "$R" log -1 --format=%B master | git interpret-trailers --parse | wc -l)"

# 2. amend: the same lock, a new serial
count=$(g "$R" rev-list --count master)
req POST "state=a.tfstate&ID=a-1&amend=true" --data "$(st 8 L1 1.9.5)"
check "2. amend=true under the same lock with a new serial is 200" expect_eq code 200 "$CODE"
check "2. ... amended: as many commits as before" expect_eq commits "$count" "$(g "$R" rev-list --count master)"
check "... the commit now says Serial: 8" expect_eq serial 8 "$(trailer "$R" master Serial)"
check "... holding the new state" expect_eq state "$(st 8 L1 1.9.5)" "$(g "$R" show master:a.tfstate)"
req POST "state=a.tfstate&ID=a-1" --data "$(st 9 L1 1.9.5)"
check "2. without amend a new serial is a new commit" expect_eq commits $((count + 1)) "$(g "$R" rev-list --count master)"

# 3. escaping, a missing terraform_version, DELETE
req POST "state=a.tfstate&ID=a-1" --data '{"version":4,"terraform_version":"1.0\nEvil: yes","serial":10,"lineage":"L1"}'
check "3. a newline in terraform_version is escaped: no trailer of its own" \
	eval "[ -z \"\$(trailer '$R' master Evil)\" ] && [ \"\$(trailer '$R' master Terraform-Version)\" = '1.0\\nEvil: yes' ]"
req POST "state=a.tfstate&ID=a-1" --data '{"version":4,"serial":11,"lineage":"L1"}'
check "3. a state without terraform_version: Serial only" \
	expect_eq trailers "11 []" "$(trailer "$R" master Serial) [$(trailer "$R" master Terraform-Version)]"
req DELETE "state=a.tfstate&ID=a-1"
check "3. DELETE is 200" expect_eq code 200 "$CODE"
check "... its commit carries the deleted version's Serial: 11" \
	expect_eq delete "Delete a.tfstate 11" "$(g "$R" log -1 --format=%s master) $(trailer "$R" master Serial)"
req UNLOCK "state=a.tfstate" --data '{"ID":"a-1"}'

# 4. TFGIT_LINEAGE_GUARD off (the default): another lineage is written
req LOCK "state=l.tfstate" --data '{"ID":"l-1"}'
req POST "state=l.tfstate&ID=l-1" --data "$(st 1 L1 1.9.5)"
req POST "state=l.tfstate&ID=l-1" --data "$(st 2 L2 1.9.5)"
check "4. lineage guard off: a state of another lineage is 200" expect_eq code 200 "$CODE"
req UNLOCK "state=l.tfstate" --data '{"ID":"l-1"}'

# 5. TFGIT_LOCK_TTL off (the default): an old lock is never taken over
old_lock "$R" o.tfstate old-1 86400
req LOCK "state=o.tfstate" --data '{"ID":"new-1"}'
check "5. TTL off: a LOCK on a day-old lock is 409" expect_eq code 409 "$CODE"
check "... the old lock stays" expect_eq id old-1 "$(lock_id_on "$R" o.tfstate)"

# 6. Terraform writes terraform_version and serial: both reach the trailers
if command -v terraform >/dev/null; then
	dir=$T_DIR/tf
	tf_project "$dir" "$URL_TRAIL?state=tf/terraform.tfstate"
	check "6. terraform init and apply" tf_init_apply "$dir" one
	tfv=$(terraform version -json | jq -r .terraform_version)
	check "6. the apply's commit carries Terraform-Version: $tfv" \
		expect_eq version "$tfv" "$(trailer "$R" master Terraform-Version)"
	check "... and the state's serial" \
		expect_eq serial "$(g "$R" show master:tf/terraform.tfstate | jq -r .serial)" "$(trailer "$R" master Serial)"
	check "... and the Lock-ID of Terraform's lock" \
		eval "[ -n \"\$(trailer '$R' master Lock-ID)\" ]"
else
	skip "6. terraform init and apply" "terraform is not on the PATH"
fi

# 7. TFGIT_LOCK_TTL
RT=$(new_remote ttl)
stack_up ttl TFGIT_DEFAULT_REPOSITORY="$RT" TFGIT_LOCK_TTL=60
old_lock "$RT" s.tfstate old-1 3600
old_commit=$(g "$RT" rev-parse locks/s.tfstate)
log_mark
req LOCK "state=s.tfstate" --data '{"ID":"new-1","Who":"bob@ci"}'
check "7. a LOCK on a lock older than TFGIT_LOCK_TTL takes it over (200)" expect_eq code 200 "$CODE"
check "... the lock branch now holds the new lock" expect_eq id new-1 "$(lock_id_on "$RT" s.tfstate)"
check "... a new commit replaced the old one" eval "[ \"\$(g '$RT' rev-parse locks/s.tfstate)\" != '$old_commit' ]"
check "... logged with the lock it replaced and its age" \
	eval "since_mark | grep 'lock of s.tfstate taken over from expired lock' | grep '\"ID\":\"old-1\"' | grep -qE 'age (3[6-9][0-9][0-9]) s > TFGIT_LOCK_TTL'"
req POST "state=s.tfstate&ID=old-1" --data "$(st 1 L1 1.9.5)"
check "7. the old holder can no longer write (409)" expect_eq code 409 "$CODE"
req LOCK "state=s.tfstate" --data '{"ID":"new-2"}'
check "7. a fresh lock is not taken over (409)" expect_eq code 409 "$CODE"
check "... with the holder's lock JSON" grep -q '"ID":"new-1"' <<<"$BODY"
req POST "state=s.tfstate&ID=new-1" --data "$(st 1 L1 1.9.5)"
check "7. the new holder writes (200)" expect_eq code 200 "$CODE"
old_lock "$RT" y.tfstate young-1 30
req LOCK "state=y.tfstate" --data '{"ID":"new-3"}'
check "7. a lock younger than TFGIT_LOCK_TTL is not taken over (409)" expect_eq code 409 "$CODE"
check "... and stays" expect_eq id young-1 "$(lock_id_on "$RT" y.tfstate)"

# 8. contenders for one expired lock: exactly one wins. Two stacks with their own caches (one
# stack's requests on a repository take turns on its cache's flock): the remote's
# compare-and-swap decides.
URL_TTL=$URL
stack_up ttl2 TFGIT_DEFAULT_REPOSITORY="$RT" TFGIT_LOCK_TTL=60
for round in $(seq 1 ${ROUNDS:-3}); do
	old_lock "$RT" "c$round.tfstate" old-c 3600
	log_mark
	at_once LOCK "state=c$round.tfstate" '{"ID":"c-%i"}' 4 "$URL_TTL" "$URL"
	check "8.$round four takeovers at once: exactly one 200, three 409" \
		expect_eq codes "1 3" "$AT_ONCE_200 $AT_ONCE_409"
	winner=$(lock_id_on "$RT" "c$round.tfstate")
	check "... the lock is the winner's, the losers were shown it" \
		eval "[[ '$winner' == c-? ]] && [ \$(grep -l '\"ID\":\"$winner\"' '$T_DIR'/body.* | wc -l) -eq 3 ]"
	check "... one takeover logged" expect_eq lines 1 "$(since_mark | grep -c "lock of c$round.tfstate taken over")"
	rm -f "$T_DIR"/body.*
done

# 9. TFGIT_LINEAGE_GUARD=1, with encryption at rest (the stored state is read decrypted)
RL=$(new_remote lineage)
stack_up lineage TFGIT_DEFAULT_REPOSITORY="$RL" TFGIT_LINEAGE_GUARD=1 TFGIT_REQUIRE_LOCK=0 \
	TF_BACKEND_HTTP_ENCRYPTION_PROVIDER=aes TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE=guard-test-passphrase
req POST "state=g.tfstate" --data "$(st 1 lineage-one 1.9.5)"
check "9. a first write is allowed" expect_eq code 200 "$CODE"
check "... stored encrypted" eval "! g '$RL' show master:g.tfstate | grep -q lineage-one"
check "... its trailers from the clear text: Serial: 1, Terraform-Version: 1.9.5" \
	expect_eq trailers "1 1.9.5" "$(trailer "$RL" master Serial) $(trailer "$RL" master Terraform-Version)"
count=$(g "$RL" rev-list --count master)
req POST "state=g.tfstate" --data "$(st 2 lineage-two 1.9.5)"
check "9. another lineage is 409" expect_eq code 409 "$CODE"
check "... a JSON error naming both lineages" \
	eval "jq -e '.error | test(\"lineage-one\") and test(\"lineage-two\")' <<<'$BODY' >/dev/null"
check "... and nothing is written" expect_eq commits "$count" "$(g "$RL" rev-list --count master)"
req POST "state=g.tfstate" --data '{"version":4,"serial":2,"lineage":"lineage-\u006fne"}'
check "9. the same lineage (escaped otherwise) is 200" expect_eq code 200 "$CODE"
req POST "state=g.tfstate" --data '{"version":4,"serial":3,"lineage":"lineage-one","lineage":"lineage-three"}'
check "9. a repeated key: the last lineage counts (409)" expect_eq code 409 "$CODE"
req GET "state=g.tfstate"
check "... the state is the last one allowed" expect_eq serial 2 "$(jq -r .serial <<<"$BODY")"
req DELETE "state=g.tfstate"
check "9. DELETE is not guarded" expect_eq code 200 "$CODE"
req POST "state=g.tfstate" --data "$(st 1 lineage-two 1.9.5)"
check "9. after it, any lineage is a first write again" expect_eq code 200 "$CODE"

# 10. a takeover over git's smart HTTP protocol: the push names the expired lock's commit as the
# old value, and git-http-backend refuses the loser's
FCGIWRAP_CHILDREN=4 git_http_server git plain
htpasswd_line alice 'Gu4rd-Pw' >>"$T_DIR/git/htpasswd"
RS=$GIT_DIR_ROOT/ttl.git
bare_repo "$RS"
chown -R "$POOL_USER" "$RS"
SMART=http://127.0.0.1:$GIT_PORT/ttl.git
SMART_VARS=(TFGIT_DEFAULT_REPOSITORY="$SMART" TFGIT_LOCK_TTL=60 GIT_USERNAME=alice GIT_PASSWORD=Gu4rd-Pw
	TFGIT_NETRC=/nonexistent)
stack_up smart1 "${SMART_VARS[@]}"
URL_S1=$URL
stack_up smart2 "${SMART_VARS[@]}"
old_lock "$RS" h.tfstate old-h 3600
req LOCK "state=h.tfstate" --data '{"ID":"h-new"}'
check "10. smart HTTP: an expired lock is taken over (200)" expect_eq code 200 "$CODE"
check "... the lock branch holds the new lock" expect_eq id h-new "$(lock_id_on "$RS" h.tfstate)"
for round in $(seq 1 "${ROUNDS:-3}"); do
	old_lock "$RS" "k$round.tfstate" old-k 3600
	at_once LOCK "state=k$round.tfstate" '{"ID":"k-%i"}' 4 "$URL_S1" "$URL"
	check "10.$round smart HTTP, four takeovers at once: exactly one 200, three 409" \
		expect_eq codes "1 3" "$AT_ONCE_200 $AT_ONCE_409"
	winner=$(lock_id_on "$RS" "k$round.tfstate")
	check "... the lock is the winner's, the losers were shown it" \
		eval "[[ '$winner' == k-? ]] && [ \$(grep -l '\"ID\":\"$winner\"' '$T_DIR'/body.* | wc -l) -eq 3 ]"
	rm -f "$T_DIR"/body.*
done
finish
