#!/usr/bin/env bash
# Issue 8, access control: TFGIT_ACL_FILE against users nginx authenticated (auth_basic, via
# STACK_NGINX_INCLUDE), the rights read, write, lock, force-unlock and all, repository patterns
# and state prefixes, the same 403 whether or not the state exists, anonymous requests, and an
# ACL file that cannot be used.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

st() { printf '{"version":4,"serial":%s,"lineage":"acl-1","outputs":{},"resources":[]}' "$1"; }
tip() { g "$R" rev-parse -q --verify "refs/heads/$1" 2>/dev/null || echo none; }
is_json_error() { grep -q '"error" *:' <<<"$BODY"; }
as() { local u=$1; shift; req "$1" "$2" -u "$u:${PASS[$u]}" "${@:3}"; }

R=$(new_remote acl)
declare -A PASS=([reader]=Rd-pass-1 [writer]=Wr-pass-2 [ops]=Ops-pass-3 [admin]=Adm-pass-4 [nobody]=No-pass-5)
for u in "${!PASS[@]}"; do htpasswd_line "$u" "${PASS[$u]}"; done >"$T_DIR/htpasswd"
printf 'auth_basic "tfgit";\nauth_basic_user_file %s;\n' "$T_DIR/htpasswd" >"$T_DIR/auth.conf"
cat >"$T_DIR/acl" <<ACL
# USER    RIGHTS               REPOSITORY              STATES
reader    read                 *                       *
writer    read,write,lock      $T_DIR/remotes/*.git    envs/
ops       read,force-unlock    *                       *
admin     all                  *                       *
ACL
chmod 644 "$T_DIR/htpasswd" "$T_DIR/auth.conf" "$T_DIR/acl"
stack_up acl STACK_NGINX_INCLUDE="$T_DIR/auth.conf" TFGIT_ACL_FILE="$T_DIR/acl" TFGIT_DEFAULT_REPOSITORY="$R" \
	TFGIT_ALLOWED_REPOS="$T_DIR/remotes/*.git"
S=envs/a.tfstate

req GET "state=$S"
check "a request without credentials gets nginx's 401" expect_eq code 401 "$CODE"
req GET "state=$S" -u writer:wrong
check "a wrong password gets nginx's 401" expect_eq code 401 "$CODE"

as writer LOCK "state=$S" --data '{"ID":"w-1","Who":"writer"}'
check "writer (read,write,lock on envs/): LOCK is 200" expect_eq code 200 "$CODE"
as writer POST "state=$S&ID=w-1" --data "$(st 1)"
check "writer: POST is 200" expect_eq code 200 "$CODE"
check "... the state is on the remote" expect_eq state "$(st 1)" "$(g "$R" show "master:$S" 2>&1)"
as reader GET "state=$S"
check "reader (read): GET is 200 with the state" expect_eq state "$(st 1)" "$BODY"
as reader POST "state=$S&ID=w-1" --data "$(st 2)"
check "reader: POST, even with the holder's lock ID, is 403" expect_eq code 403 "$CODE"
check "... a JSON error" is_json_error
as reader DELETE "state=$S&ID=w-1"
check "reader: DELETE is 403" expect_eq code 403 "$CODE"
check "... the state is unchanged" expect_eq state "$(st 1)" "$(g "$R" show "master:$S" 2>&1)"
as reader LOCK "state=envs/b.tfstate" --data '{"ID":"r-1"}'
check "reader: LOCK is 403" expect_eq code 403 "$CODE"
check "... and takes no lock" expect_eq lock none "$(tip locks/envs/b.tfstate)"
as reader UNLOCK "state=$S" --data '{"ID":"w-1"}'
check "reader: UNLOCK with the holder's ID is 403" expect_eq code 403 "$CODE"
as writer UNLOCK "state=$S" --data-binary ''
check "writer: force-unlock (no force-unlock right) is 403" expect_eq code 403 "$CODE"
as writer LOCK "state=$S" --data '{"ID":"w-other","Who":"someone else"}'
check "writer, another ID: LOCK of a held state is 409 with the holder's lock info" \
	eval "[ '$CODE' = 409 ] && grep -q '\"Who\":\"writer\"' <<<'$BODY'"
check "... without the holder's ID (it would unlock what writer may not force-unlock)" \
	eval "! grep -q 'w-1' <<<'$BODY' && grep -q '\"ID\":\"(hidden' <<<'$BODY'"
as writer POST "state=$S&ID=w-other" --data "$(st 5)"
check "... nor in a POST's 409" eval "[ '$CODE' = 409 ] && ! grep -q 'w-1' <<<'$BODY'"
as admin LOCK "state=$S" --data '{"ID":"adm-x"}'
check "admin (may force-unlock): the 409 shows the holder's ID" eval "[ '$CODE' = 409 ] && grep -q '\"ID\":\"w-1\"' <<<'$BODY'"
check "... the lock stays" expect_eq id w-1 "$(g "$R" show "locks/$S:$S.lock" 2>&1 | sed 's/.*"ID":"\([^"]*\)".*/\1/')"
as ops UNLOCK "state=$S" --data '{"ID":"w-1"}'
check "ops (read,force-unlock): UNLOCK with an ID (the lock right) is 403" expect_eq code 403 "$CODE"
as ops LOCK "state=envs/c.tfstate" --data '{"ID":"o-1"}'
check "ops: LOCK is 403" expect_eq code 403 "$CODE"
log_mark
as ops UNLOCK "state=$S" --data-binary ''
check "ops: force-unlock is 200" expect_eq code 200 "$CODE"
check "... the lock is gone" expect_eq lock none "$(tip "locks/$S")"
check "... logged with the user and address" \
	grep -q "force-unlock of $S by user=ops addr=127.0.0.1 removed the lock" <<<"$(since_mark)"
as writer LOCK "state=$S" --data '{"ID":"w-2"}'
as writer UNLOCK "state=$S" --data '{"ID":"w-2"}'
check "writer: UNLOCK of its own lock is 200" expect_eq code 200 "$CODE"
check "request lines carry the user" grep -q 'user=writer' "$T_DIR/pool.log"

as writer GET "state=other.tfstate"
check "writer: GET outside envs/ is 403" expect_eq code 403 "$CODE"
as writer LOCK "state=other.tfstate" --data '{"ID":"w-3"}'
check "writer: LOCK outside envs/ is 403" expect_eq code 403 "$CODE"
check "... and takes no lock" expect_eq lock none "$(tip locks/other.tfstate)"
R2=$(new_remote acl2)
as writer GET "repository=$R2&state=$S"
check "writer: another repository matching its pattern is allowed (204)" expect_eq code 204 "$CODE"
as admin LOCK "state=top.tfstate" --data '{"ID":"a-1"}'
check "admin (all): LOCK is 200" expect_eq code 200 "$CODE"
as admin UNLOCK "state=top.tfstate" --data-binary ''
check "admin: force-unlock is 200" expect_eq code 200 "$CODE"

# a user no line names: the same 403 whether the state exists or not, git untouched
as nobody GET "state=secret/s.tfstate"
code1=$CODE body1=$BODY
commit_file "$R" master secret/s.tfstate "$(st 1)" >/dev/null
as nobody GET "state=secret/s.tfstate"
check "nobody (no line): GET of a state that does not exist is 403" expect_eq code 403 "$code1"
check "nobody: GET of the same state once it exists is 403" expect_eq code 403 "$CODE"
check "... with the identical body" expect_eq body "$body1" "$BODY"
check "... a JSON error" is_json_error
as nobody GET "repository=$T_DIR/remotes/missing.git&state=x.tfstate"
check "nobody: GET on a repository that does not exist is 403 too (nothing touched git)" expect_eq code 403 "$CODE"

# no authentication in nginx: requests without REMOTE_USER are the user anonymous
printf 'anonymous  read  *  *\n' >"$T_DIR/acl-anon"
chmod 644 "$T_DIR/acl-anon"
stack_up anon TFGIT_ACL_FILE="$T_DIR/acl-anon" TFGIT_DEFAULT_REPOSITORY="$R"
req GET "state=secret/s.tfstate"
check "anonymous (read): GET is 200" expect_eq state "$(st 1)" "$BODY"
req LOCK "state=envs/y.tfstate" --data '{"ID":"an-1"}'
check "anonymous: LOCK is 403" expect_eq code 403 "$CODE"
check "... and takes no lock" expect_eq lock none "$(tip locks/envs/y.tfstate)"

# an ACL file that cannot be used refuses everything
printf 'reader read\n' >"$T_DIR/acl-bad"
chmod 644 "$T_DIR/acl-bad"
stack_up badacl TFGIT_ACL_FILE="$T_DIR/acl-bad" TFGIT_DEFAULT_REPOSITORY="$R"
req GET "state=$S"
check "a malformed ACL file: GET is 500" expect_eq code 500 "$CODE"
stack_up noacl TFGIT_ACL_FILE="$T_DIR/no-such-acl" TFGIT_DEFAULT_REPOSITORY="$R"
req GET "state=$S"
check "an ACL file that cannot be read: GET is 500" expect_eq code 500 "$CODE"
req LOCK "state=envs/z.tfstate" --data '{"ID":"x-1"}'
check "... LOCK is 500 and takes no lock" expect_eq "code lock" "500 none" "$CODE $(tip locks/envs/z.tfstate)"
finish
