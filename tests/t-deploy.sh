#!/usr/bin/env bash
# Settings where each host sets them, and the methods a firewall lets through, on nginx: two
# locations of one pool with their own default repository (fastcgi_param), a settings file
# (TFGIT_CONFIG), a client's header never read as a setting; GitLab's lock address (…/lock with
# POST and DELETE) and PUT, through the real terraform.
. "$(dirname "$0")/lib.sh"

R1=$(new_remote env-default)
R2=$(new_remote team-b)
R3=$(new_remote team-c)
ST='{"version":4,"serial":1,"lineage":"deploy"}'
conf=$T_DIR/team-c.conf
printf '# team C\nTFGIT_DEFAULT_REPOSITORY=%s\nTFGIT_AUTHOR_NAME = "Team C"\nFCGI_WORKERS=9\n' "$R3" >"$conf"
chmod 644 "$conf"
bad=$T_DIR/bad.conf
printf 'TFGIT_DEFALT_REF=main\n' >"$bad"
chmod 644 "$bad"
open_conf=$T_DIR/open.conf
printf 'TFGIT_DEFAULT_REF=main\n' >"$open_conf"
chmod 666 "$open_conf"
inc=$T_DIR/locations.conf
cat >"$inc" <<NGINX
location = /team-b {
    fastcgi_pass tfgit_pool;
    include /etc/nginx/fastcgi_params;
    fastcgi_param TFGIT_DEFAULT_REPOSITORY $R2;
}
location = /team-c {
    fastcgi_pass tfgit_pool;
    include /etc/nginx/fastcgi_params;
    fastcgi_param TFGIT_CONFIG $conf;
}
location = /broken {
    fastcgi_pass tfgit_pool;
    include /etc/nginx/fastcgi_params;
    fastcgi_param TFGIT_CONFIG $bad;
}
location = /misspelt {
    fastcgi_pass tfgit_pool;
    include /etc/nginx/fastcgi_params;
    fastcgi_param TFGIT_ALOWED_STATES team-b/*;
}
location = /launcher {
    fastcgi_pass tfgit_pool;
    include /etc/nginx/fastcgi_params;
    fastcgi_param TFGIT_CONF /etc/tfgit/spawn-fcgi.conf;
}
location = /open {
    fastcgi_pass tfgit_pool;
    include /etc/nginx/fastcgi_params;
    fastcgi_param TFGIT_DEFAULT_REPOSITORY $R2;
    fastcgi_param TFGIT_CONFIG $open_conf;
}
NGINX
STACK_NGINX_INCLUDE=$inc stack_up deploy TFGIT_DEFAULT_REPOSITORY="$R1" TFGIT_REQUIRE_LOCK=0
BASE=${URL%/tfgit}

# at PATH METHOD QUERY [curl args]: like req, on another location of the same nginx
at() {
	local path=$1 method=$2 query=$3 out
	shift 3
	out=$(curl -s -X "$method" -w '\n%{http_code}' "$@" "$BASE$path?$query")
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}

at /tfgit POST "state=s.tfstate" --data "$ST"
check "the pool's environment: /tfgit writes into its TFGIT_DEFAULT_REPOSITORY" \
	expect_eq state "$ST" "$(g "$R1" show master:s.tfstate 2>&1)"
at /team-b POST "state=s.tfstate" --data "$ST"
check "one pool, another location: fastcgi_param TFGIT_DEFAULT_REPOSITORY wins over the environment" \
	expect_eq state "$ST" "$(g "$R2" show master:s.tfstate 2>&1)"
check "... and the first location's repository got nothing more" expect_eq commits 1 "$(g "$R1" rev-list --count master)"
at /team-b GET "repository=$R1&state=s.tfstate"
check "... where the environment's default repository is not allowed by name" expect_eq code 403 "$CODE"
at /team-c POST "state=c.tfstate" --data "$ST"
check "TFGIT_CONFIG (named by a fastcgi_param): a setting only the file gives is used" \
	expect_eq author "Team C" "$(g "$R1" log -1 --format=%an master -- c.tfstate 2>&1)"
check "... and for TFGIT_DEFAULT_REPOSITORY the environment wins over the file" \
	expect_eq refs "" "$(g "$R3" for-each-ref)"
at /tfgit GET "state=s.tfstate" -H "TFGIT-DEFAULT-REPOSITORY: $R2" -H "TFGIT_DEFAULT_REPOSITORY: $R2"
check "a client's header (HTTP_TFGIT_*) is never read as a setting" \
	eval "[ '$CODE' = 200 ] && [ \$(g '$R2' rev-list --count master) = 1 ]"
log_mark
at /broken GET "state=s.tfstate"
check "a settings file with an unknown name is a 500 with a JSON body" \
	eval "[ '$CODE' = 500 ] && grep -q '\"error\":\"this server' <<<'${BODY//\'/}'"
check "... and the log names the file, the line and the name" \
	wait_for 5 "the log line" grep -q "TFGIT_CONFIG $bad line 1: TFGIT_DEFALT_REF is not a tfgit setting" "$T_DIR/pool.log"
at /misspelt LOCK "state=s.tfstate" --data '{"ID":"m-1"}'
check "a misspelt fastcgi_param (TFGIT_ALOWED_STATES) is a 500 with a JSON body, not served without it" \
	eval "[ '$CODE' = 500 ] && grep -q '\"error\":\"this server' <<<'${BODY//\'/}'"
check "... the log names it" \
	wait_for 5 "the log line" grep -q "not a tfgit setting: TFGIT_ALOWED_STATES (server variable)" "$T_DIR/pool.log"
check "... and nothing was locked" eval "! g '$R1' rev-parse -q --verify refs/heads/locks/s.tfstate"
at /launcher GET "state=s.tfstate"
check "the launcher's TFGIT_CONF as a server variable (where it means nothing) is a 500 too" expect_eq code 500 "$CODE"
at /open GET "state=s.tfstate"
check "a settings file others can write is refused (500)" expect_eq code 500 "$CODE"
check "... and the log says why" \
	wait_for 5 "the log line" grep -q "TFGIT_CONFIG $open_conf must be a file .* writable by no one else" "$T_DIR/pool.log"

# GitLab's layout: lock and unlock on …/lock with POST and DELETE; PUT writes
Q="state=gl.tfstate"
at /tfgit/lock POST "$Q" --data '{"ID":"gl-1","Operation":"OperationTypeApply"}'
check "POST to /tfgit/lock takes the lock" eval "[ '$CODE' = 200 ] && g '$R1' rev-parse -q --verify refs/heads/locks/gl.tfstate"
at /tfgit/lock POST "$Q" --data '{"ID":"gl-2"}'
check "a second POST to /tfgit/lock by another ID is 409 with the holder" \
	eval "[ '$CODE' = 409 ] && grep -q gl-1 <<<'$BODY'"
at /tfgit PUT "$Q&ID=gl-1" --data "$ST"
check "PUT to /tfgit writes the state" expect_eq state "$ST" "$(g "$R1" show master:gl.tfstate 2>&1)"
at /tfgit/lock GET "$Q"
check "GET of /tfgit/lock is 405 naming the lock address's methods" \
	eval "[ '$CODE' = 405 ] && grep -q 'lock address' <<<'$BODY'"
at /tfgit/lock DELETE "$Q" --data '{"ID":"gl-2"}'
check "DELETE of /tfgit/lock by another ID is 409" expect_eq code 409 "$CODE"
at /tfgit/lock DELETE "$Q" --data '{"ID":"gl-1"}'
check "DELETE of /tfgit/lock by the holder unlocks" \
	eval "[ '$CODE' = 200 ] && ! g '$R1' rev-parse -q --verify refs/heads/locks/gl.tfstate"
check "... and leaves the state in place" expect_eq state "$ST" "$(g "$R1" show master:gl.tfstate 2>&1)"

if ! command -v terraform >/dev/null; then
	skip "terraform with lock_method POST, unlock_method DELETE, update_method PUT" "terraform is not on the PATH"
	finish
	exit
fi
W=$T_DIR/tf-gitlab
S=gitlab/terraform.tfstate
tf_project "$W" "$URL?state=$S"
cat >"$W/backend.tf" <<TF
terraform {
  backend "http" {
    address        = "$URL?state=$S"
    lock_address   = "$URL/lock?state=$S"
    unlock_address = "$URL/lock?state=$S"
    lock_method    = "POST"
    unlock_method  = "DELETE"
    update_method  = "PUT"
    retry_max      = 0
  }
}
TF
check "terraform init and apply with lock_method POST, unlock_method DELETE, update_method PUT" \
	tf_init_apply "$W" gitlab-1
check "... the state is on the remote" grep -q gitlab-1 <<<"$(g "$R1" show "master:$S")"
check "... and no lock is left" eval "! g '$R1' rev-parse -q --verify 'refs/heads/locks/$S'"
curl -s -o /dev/null -X POST --data '{"ID":"other-pipeline","Operation":"OperationTypeApply","Who":"ci@other"}' "$URL/lock?state=$S"
if (cd "$W" && terraform plan -no-color -input=false) >"$T_DIR/tf-plan.out" 2>&1; then
	fail "terraform plan is refused while another ID holds the lock" "$(tail -5 "$T_DIR/tf-plan.out")"
else
	check "terraform plan is refused while another ID holds the lock" grep -q other-pipeline "$T_DIR/tf-plan.out"
fi
check "terraform force-unlock through DELETE on the lock address" \
	eval "(cd '$W' && terraform force-unlock -force other-pipeline -no-color) >'$T_DIR/tf-fu.out' 2>&1 && ! g '$R1' rev-parse -q --verify 'refs/heads/locks/$S'"
printf 'resource "terraform_data" "x" {\n  input = "gitlab-2"\n}\n' >"$W/main.tf"
check "terraform apply of a change through PUT" \
	eval "(cd '$W' && terraform apply -no-color -auto-approve -input=false) >'$T_DIR/tf.out' 2>&1"
check "... the state changed" grep -q gitlab-2 <<<"$(g "$R1" show "master:$S")"
check "terraform destroy" eval "(cd '$W' && terraform destroy -no-color -auto-approve -input=false) >'$T_DIR/tf.out' 2>&1"
check "... leaves a state without resources and no lock" \
	eval "! grep -q terraform_data <<<\"\$(g '$R1' show 'master:$S')\" && ! g '$R1' rev-parse -q --verify 'refs/heads/locks/$S'"
finish
