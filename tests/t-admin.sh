#!/usr/bin/env bash
# The operators' command (build/tfgit) on repositories written by real requests and by the real
# terraform: states, history, show, diff, rollback through terraform, locks (also a lock in the
# reference's layout), unlock, doctor on a healthy and on a broken setup; GET …&version= over HTTP.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

R=$(new_remote admin)
stack_up admin TFGIT_DEFAULT_REPOSITORY="$R"
CACHE=$T_DIR/stack-admin/cache
TFGIT_CLI=$TFGIT_CLI_BIN
# tfgit CMD ARGS...: the command as the pool's user, with the pool's settings
tfgit() {
	as_pool env -i PATH=/usr/bin:/bin HOME=/ TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$CACHE" \
		${EXTRA_SETTINGS:-} "$TFGIT_CLI" "$@"
}
st() { printf '{"version":4,"serial":%s,"lineage":"adm","resources":[%s]}' "$1" "${2:-}"; }
res() { printf '{"mode":"managed","type":"terraform_data","name":"%s","provider":"p","instances":[{"attributes":{"input":"%s","id":"%s"}}]}' "$1" "$2" "$1"; }

req LOCK "state=app.tfstate" --data '{"ID":"v-1","Who":"ci@runner","Operation":"OperationTypeApply"}'
req POST "state=app.tfstate&ID=v-1" --data "$(st 1 "$(res a one)")"
V1=$(g "$R" rev-parse master)
req POST "state=app.tfstate&ID=v-1" --data "$(st 2 "$(res a two),$(res b new)")"
V2=$(g "$R" rev-parse master)
req UNLOCK "state=app.tfstate" --data '{"ID":"v-1"}'
req LOCK "state=envs/prod.tfstate" --data '{"ID":"p-9","Who":"alice@ops","Operation":"OperationTypePlan"}'
req POST "state=envs/prod.tfstate&ID=p-9" --data "$(st 7)"

out=$(tfgit states)
check "states: lists every state on the branch" eval "grep -q '^app.tfstate ' <<<'$out' && grep -q '^envs/prod.tfstate ' <<<'$out'"
check "states: with its serial and lineage" grep -Eq '^app.tfstate +2 +adm ' <<<"$out"
check "states: the last change's Who and Lock-ID" grep -Eq '^app.tfstate .* ci@runner +v-1 ' <<<"$out"
check "states: who holds a lock" grep -Eq '^envs/prod.tfstate .* alice@ops$' <<<"$out"
json=$(tfgit states --json)
check "states --json parses, and names the lock's ID" \
	expect_eq lock p-9 "$(jq -r '.[] | select(.state == "envs/prod.tfstate") | .lock.id' <<<"$json")"
check "states --json counts each state's resources (as the web view does)" \
	expect_eq resources "$(g "$R" show master:app.tfstate | jq '.resources | length')" "$(jq -r '.[] | select(.state == "app.tfstate") | .resources' <<<"$json")"

out=$(tfgit history --state app.tfstate)
check "history: newest first, with serials" \
	eval "[ \"\$(sed -n '2p;3p' <<<'$out' | awk '{print \$1, \$3}' | tr '\n' ' ')\" = '${V2:0:12} 2 ${V1:0:12} 1 ' ]"
check "history: Who / Operation / Lock-ID from the trailers" grep -q 'ci@runner.*OperationTypeApply.*v-1' <<<"$out"
check "history --json parses" expect_eq serials "2 1" "$(tfgit history --state app.tfstate --json | jq -r '.[].serial' | tr '\n' ' ' | sed 's/ $//')"

check "show: the state at a version (7 hex digits)" expect_eq state "$(st 1 "$(res a one)")" "$(tfgit show --state app.tfstate --version "${V1:0:7}")"
check "show: a version that is not one is an error" eval "! tfgit show --state app.tfstate --version deadbeef 2>/dev/null"
out=$(tfgit diff --state app.tfstate --from "${V1:0:7}")
check "diff: a changed resource by address, with the attribute names (not values)" \
	eval "grep -qx '~ terraform_data.a (input)' <<<'$out' && ! grep -q 'two' <<<'$out'"
check "diff: an added resource" grep -qx '+ terraform_data.b' <<<"$out"
check "diff --json" expect_eq added terraform_data.b \
	"$(tfgit diff --state app.tfstate --from "${V1:0:7}" --to "${V2:0:7}" --json | jq -r '.[] | select(.change == "added") | .address')"

# GET …&version= over HTTP
req GET "state=app.tfstate&version=${V1:0:10}"
check "GET &version=: that version (200)" expect_eq state "$(st 1 "$(res a one)")" "$BODY"
curl -s -D "$T_DIR/get.head" -o /dev/null "$URL?state=app.tfstate"
check "GET names the version it served (X-Tfgit-Version: the branch's tip)" \
	grep -qx "X-Tfgit-Version: $(g "$R" rev-parse master)" <(tr -d '\r' <"$T_DIR/get.head")
req GET "state=app.tfstate&version=0123456789abc"
check "GET &version= of no version of the state: 404 JSON" eval "[ '$CODE' = 404 ] && grep -q '\"error\"' <<<'$BODY'"
req GET "state=envs/prod.tfstate&version=${V1:0:10}"
check "GET &version= of a version that does not hold the state: 404" expect_eq code 404 "$CODE"

# locks, also one in the reference's layout (a branch forked from master holding <state>.lock)
ref_lock='{"ID":"ref-1","Operation":"OperationTypeApply","Who":"ref@backend","Created":"2026-11-20T10:00:00Z"}'
commit_file "$R" locks/legacy.tfstate legacy.tfstate.lock "$ref_lock" >/dev/null
g "$R" update-ref refs/heads/locks/legacy.tfstate "$(g "$R" commit-tree -p master -m 'Lock legacy.tfstate' \
	"$(printf '100644 blob %s\tlegacy.tfstate.lock\n' "$(printf %s "$ref_lock" | g "$R" hash-object -w --stdin)" | g "$R" mktree)")"
chown -R "$POOL_USER" "$R"
out=$(tfgit locks)
check "locks: tfgit's lock with ID, Who, Operation" grep -Eq '^envs/prod.tfstate +p-9 +alice@ops +OperationTypePlan' <<<"$out"
check "locks: the reference's lock too, with Created" grep -Eq '^legacy.tfstate +ref-1 +ref@backend .*2026-11-20T10:00:00Z' <<<"$out"
check "locks --json has an age" eval "[ \"\$(tfgit locks --json | jq '[.[] | .age_seconds >= 0] | all')\" = true ]"

# unlock: with --id only that holder's; without, any (logged like a force-unlock)
if tfgit unlock --state envs/prod.tfstate --id wrong >"$T_DIR/u.out" 2>&1; then
	fail "unlock --id of another ID is refused" "$(cat "$T_DIR/u.out")"
else
	check "unlock --id of another ID is refused, naming the holder" grep -q 'p-9' "$T_DIR/u.out"
fi
check "... and the lock stays" g "$R" rev-parse -q --verify refs/heads/locks/envs/prod.tfstate
check "unlock without --id removes it" eval "tfgit unlock --state envs/prod.tfstate 2>'$T_DIR/u.err' | grep -q 'removed the lock'"
check "... logged like a force-unlock, with who asked and the lock removed" \
	grep -q 'force-unlock of envs/prod.tfstate by tfgit unlock (user=.*) removed the lock .*p-9' "$T_DIR/u.err"
check "... the lock branch is gone" eval "! g '$R' rev-parse -q --verify refs/heads/locks/envs/prod.tfstate"

# rollback: refused while another ID holds the lock
req LOCK "state=app.tfstate" --data '{"ID":"busy"}'
if tfgit rollback --state app.tfstate --to "${V1:0:7}" >"$T_DIR/rb.out" 2>&1; then
	fail "rollback while another ID holds the lock is refused" "$(cat "$T_DIR/rb.out")"
else
	check "rollback while another ID holds the lock is refused" grep -q 'locked by another ID' "$T_DIR/rb.out"
fi
check "... and the state is unchanged" expect_eq tip "$(g "$R" rev-parse master)" "$(g "$R" rev-parse master)"
req UNLOCK "state=app.tfstate" --data '{"ID":"busy"}'

# history's table with a rollback row (its Operation "rollback to <40 hex digits>" is the
# longest value): every left-aligned column starts where its header does, on every row
check "rollback of app.tfstate to its first version" eval "tfgit rollback --state app.tfstate --to '${V1:0:7}' | grep -q 'rolled back'"
# aligned COLUMN...: on the table on stdin, each COLUMN's values start under its header
aligned() {
	awk -v names="$*" 'NR == 1 { n = split(names, col, " "); for (i = 1; i <= n; i++) at[i] = index($0, col[i]); next }
		{ for (i = 1; i <= n; i++) if (substr($0, at[i], 1) == " " || (at[i] > 1 && substr($0, at[i] - 1, 1) != " ")) {
			print "row " NR - 1 ", column " col[i] " does not start at " at[i] ": " $0; bad = 1 } }
		END { exit bad }'
}
out=$(tfgit history --state app.tfstate)
check "history: a rollback row's Operation is there, and every column is aligned with its header" \
	eval "grep -q 'rollback to $V1' <<<'$out' && aligned DATE WHO OPERATION LOCK-ID LINEAGE <<<'$out'"

# reencrypt: its one commit names who ran it (Who), and history shows it
RE=$(new_remote reencrypt)
commit_file "$RE" master app.tfstate "$(st 1)" >/dev/null
head -c 32 /dev/urandom | base64 >"$T_DIR/re.key"
chmod 600 "$T_DIR/re.key"
chown "$POOL_USER" "$T_DIR/re.key"
RE_SETTINGS="TFGIT_DEFAULT_REPOSITORY=$RE TFGIT_ENCRYPTION_KEYS=$T_DIR/re.key TFGIT_ENCRYPTION_MIGRATE=encrypt"
check "reencrypt: the clear-text state is sealed in one commit" \
	eval "EXTRA_SETTINGS='$RE_SETTINGS' tfgit reencrypt | grep -q 're-encrypted 1 state'"
operator="$POOL_USER@$(hostname)"
check "... whose Who trailer is who ran it ($operator), before its Operation" \
	eval "g '$RE' log -1 --format=%B master | tr '\n' ' ' | grep -qF 'Who: $operator Operation: re-encrypt'"
out=$(EXTRA_SETTINGS=$RE_SETTINGS tfgit history --state app.tfstate)
check "... and tfgit history shows that Who on the re-encryption row, not -" \
	eval "sed -n 2p <<<'$out' | grep -qE ' $operator +re-encrypt '"

# doctor: healthy, then broken (an unwritable cache; a repository that does not answer)
check "doctor on a healthy setup: 0 problems, exit 0" eval "tfgit doctor | grep -qx '0 problems'"
mkdir -m 777 "$T_DIR/open-cache"
chown "$POOL_USER" "$T_DIR/open-cache"
if EXTRA_SETTINGS="TFGIT_CACHE_DIR=$T_DIR/open-cache" tfgit doctor >"$T_DIR/doc.out" 2>&1; then
	fail "doctor with a world-writable cache directory exits non-zero" "$(cat "$T_DIR/doc.out")"
else
	check "doctor with a world-writable cache directory says so and how to fix it" \
		eval "grep -q 'problem: .*open-cache is writable by every user' '$T_DIR/doc.out' && grep -q 'fix:' '$T_DIR/doc.out'"
fi
as_pool env -i PATH=/usr/bin:/bin TFGIT_DEFAULT_REPOSITORY="$T_DIR/remotes/missing.git" TFGIT_CACHE_DIR="$CACHE" \
	"$TFGIT_CLI" doctor >"$T_DIR/doc2.out" 2>&1
rc=$?
check "doctor with a default repository that does not answer: exit 1, naming it" \
	eval "[ $rc = 1 ] && grep -q 'problem: the default repository .*missing.git does not answer' '$T_DIR/doc2.out'"

mkdir -m 500 "$T_DIR/ro-cache"
chown "$POOL_USER" "$T_DIR/ro-cache"
if EXTRA_SETTINGS="TFGIT_CACHE_DIR=$T_DIR/ro-cache" tfgit doctor >"$T_DIR/doc3.out" 2>&1; then
	fail "doctor with an unwritable cache directory exits non-zero" "$(cat "$T_DIR/doc3.out")"
else
	check "doctor with an unwritable cache directory says so" grep -q 'problem: .*ro-cache is not writable' "$T_DIR/doc3.out"
fi
# wrong credentials for a smart-HTTP repository behind basic auth
git_http_server creds plain
htpasswd_line alice 'right-Pw-1' >>"$T_DIR/creds/htpasswd"
bare_repo "$GIT_DIR_ROOT/s.git"
as_pool env -i PATH=/usr/bin:/bin TFGIT_DEFAULT_REPOSITORY="http://127.0.0.1:$GIT_PORT/s.git" \
	TFGIT_CACHE_DIR="$CACHE" GIT_USERNAME=alice GIT_PASSWORD=wrong-Pw-2 TFGIT_NETRC=/nonexistent \
	"$TFGIT_CLI" doctor >"$T_DIR/doc4.out" 2>&1
rc=$?
check "doctor with wrong credentials: exit 1, saying to check the credentials" \
	eval "[ $rc = 1 ] && grep -q 'problem: the default repository .* does not answer' '$T_DIR/doc4.out' && grep -q 'fix: check the credentials' '$T_DIR/doc4.out'"
check "... without showing the password" eval "! grep -q wrong-Pw-2 '$T_DIR/doc4.out'"
as_pool env -i PATH=/usr/bin:/bin TFGIT_DEFAULT_REPOSITORY="http://127.0.0.1:$GIT_PORT/s.git" \
	TFGIT_CACHE_DIR="$CACHE" GIT_USERNAME=alice GIT_PASSWORD=right-Pw-1 TFGIT_NETRC=/nonexistent \
	"$TFGIT_CLI" doctor >"$T_DIR/doc5.out" 2>&1
check "doctor with the right credentials: 0 problems" grep -qx '0 problems' "$T_DIR/doc5.out"

# rollback through terraform: three applies, roll back to the first, plan sees it, apply on top
if ! command -v terraform >/dev/null; then
	skip "rollback through terraform" "terraform is not on the PATH"
	finish
	exit
fi
W=$T_DIR/tf
S=tf/terraform.tfstate
tf_project "$W" "$URL?state=$S"
for v in first second third; do
	tf_init_apply "$W" "$v" >/dev/null || fail "terraform apply of $v"
done
first=$(tfgit history --state "$S" --json | jq -r '.[-1].commit')
check "history of a terraform-written state shows three versions" expect_eq versions 3 "$(tfgit history --state "$S" --json | jq length)"
check "rollback to the first version" eval "tfgit rollback --state '$S' --to '${first:0:9}' | grep -q 'rolled back'"
check "... the commit says it is a rollback and to which version" \
	eval "g '$R' log -1 --format=%B master | grep -q 'Operation: rollback to $first'"
check "... with the serial raised above the current one and the lineage kept" \
	eval "[ \"\$(g '$R' show master:$S | jq .serial)\" -gt 3 ] && [ \"\$(g '$R' show master:$S | jq -r .lineage)\" = \"\$(g '$R' show $first:$S | jq -r .lineage)\" ]"
(cd "$W" && terraform plan -no-color -input=false) >"$T_DIR/tf-plan.out" 2>&1
check "terraform plan then sees the first version's resources (input first -> third is a change)" \
	grep -q '"first" -> "third"' "$T_DIR/tf-plan.out"
check "terraform apply succeeds on top of it" \
	eval "(cd '$W' && terraform apply -no-color -auto-approve -input=false) >'$T_DIR/tf-after.out' 2>&1"
finish
