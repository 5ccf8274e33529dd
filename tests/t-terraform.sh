#!/usr/bin/env bash
# The real terraform binary against tfgit: init, apply, plan, destroy, a lock held by another
# ID, force-unlock, state pull. Only the built-in terraform_data resource: nothing is downloaded.
. "$(dirname "$0")/lib.sh"

if ! command -v terraform >/dev/null; then
	for t in init apply plan lock-conflict force-unlock state-pull destroy; do
		skip "terraform $t" "terraform is not on the PATH"
	done
	finish
	exit
fi

R=$(new_remote tf)
stack_up tf TFGIT_DEFAULT_REPOSITORY="$R"
S=prod/terraform.tfstate
ADDR="$URL?type=git&ref=master&state=$S"
W=$T_DIR/work
mkdir -p "$W"
tf_project "$W" "$ADDR" "retry_max      = 0"
cat >"$W/main.tf" <<TF
variable "n" {
  type    = number
  default = 1
}
resource "terraform_data" "a" {
  input = "a-\${var.n}"
}
resource "terraform_data" "b" {
  input = terraform_data.a.output
}
output "b" {
  value = terraform_data.b.output
}
TF
tf() { (cd "$W" && terraform "$@" -no-color) >"$T_DIR/tf.out" 2>&1; }
tip() { g "$R" rev-parse -q --verify "refs/heads/$1" 2>/dev/null || echo none; }

check "terraform init with the http backend" tf init -input=false
check "terraform apply" tf apply -auto-approve -input=false
check "the state is on master with both resources" \
	eval "g '$R' show 'master:$S' | grep -q '\"terraform_data\"' && [ \$(g '$R' show 'master:$S' | grep -c '\"type\": \"terraform_data\"') -eq 2 ]"
check "apply left no lock behind" expect_eq lock none "$(tip "locks/$S")"
check "the apply's commit carries its lock ID and operation" \
	grep -q "Operation: OperationTypeApply" <<<"$(g "$R" log --format=%B master)"
check "terraform plan sees no changes" eval "tf plan -detailed-exitcode -input=false"
check "... and plan left no lock" expect_eq lock none "$(tip "locks/$S")"

# another pipeline holds the lock
OTHER='{"ID":"11111111-2222-3333-4444-555555555555","Operation":"OperationTypeApply","Info":"","Who":"other@ci-runner","Version":"1.11.4","Created":"2026-11-24T10:00:00.000000001Z","Path":""}'
curl -s -o /dev/null -X LOCK --data "$OTHER" "$ADDR"
before=$(tip master)
if tf apply -auto-approve -input=false -var n=2; then
	fail "apply while another ID holds the lock fails" "$(cat "$T_DIR/tf.out")"
else
	pass "apply while another ID holds the lock fails"
fi
check "... with Terraform's lock error naming the holder's ID" \
	eval "grep -q 'Error acquiring the state lock' '$T_DIR/tf.out' && grep -q '11111111-2222-3333-4444-555555555555' '$T_DIR/tf.out'"
check "... and the state is untouched" expect_eq master "$before" "$(tip master)"

check "terraform force-unlock clears the lock" tf force-unlock -force 11111111-2222-3333-4444-555555555555
check "... the lock branch is gone" expect_eq lock none "$(tip "locks/$S")"

check "apply after force-unlock" tf apply -auto-approve -input=false -var n=2
# state pull prints the state and one more newline
pulled=$(cd "$W" && terraform state pull)
check "terraform state pull matches the repository" expect_eq state "$(g "$R" show "master:$S")" "$pulled"
check "the state holds the new value" grep -q '"a-2"' <<<"$(g "$R" show "master:$S")"

check "terraform destroy" tf destroy -auto-approve -input=false -var n=2
check "the state after destroy has no resources" \
	eval "! g '$R' show 'master:$S' | grep -q terraform_data"
check "no lock is left" expect_eq lock none "$(tip "locks/$S")"
check "git fsck of the remote is clean" g "$R" fsck --strict
finish
