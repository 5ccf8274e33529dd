#!/usr/bin/env bash
# Issue 8, what reaches whom: repository URLs that escape TFGIT_ALLOWED_REPOS (percent-encoded
# path, userinfo naming the allowed host), redirects, the cache's permissions, secrets in
# nginx's and the pool's logs and in error bodies, log lines a request can forge.
# Real servers: a smart-HTTP git server (basic auth), a stub that answers 401 and records the
# Authorization header it gets, a stub that redirects, and a blackhole as the redirect's target.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

STATE='{"version":4,"serial":1,"lineage":"sec-1","outputs":{},"resources":[]}'
PW=Git-Pa55-word
git_http_server git plain
htpasswd_line alice "$PW" >>"$T_DIR/git/htpasswd"
bare_repo "$GIT_DIR_ROOT/allowed/r.git"
bare_repo "$GIT_DIR_ROOT/other.git"
commit_file "$GIT_DIR_ROOT/other.git" master x.tfstate \
	'{"version":4,"serial":7,"lineage":"other-secret","outputs":{},"resources":[]}' >/dev/null
other_refs() { g "$GIT_DIR_ROOT/other.git" for-each-ref --format='%(objectname) %(refname)'; }
OTHER_REFS=$(other_refs)
blackhole
http_stub evil 'auth_basic "evil"; auth_basic_user_file /dev/null;'
EVIL_PORT=$STUB_PORT
http_stub redirect "return 302 http://127.0.0.1:$HOLE_PORT"'$request_uri;'
REDIR_PORT=$STUB_PORT

ALLOWED=http://127.0.0.1:$GIT_PORT/allowed/r.git
stack_up allow TFGIT_ALLOWED_REPOS="http://127.0.0.1:$GIT_PORT/allowed/*.git http://localhost:*/allowed/*.git http://127.0.0.1:$REDIR_PORT/allowed/*.git" \
	GIT_USERNAME=alice GIT_PASSWORD="$PW" TFGIT_NETRC=/nonexistent TFGIT_REMOTE_TIMEOUT=5
req LOCK "repository=$ALLOWED&state=x.tfstate" --data '{"ID":"ok-1"}'
req POST "repository=$ALLOWED&state=x.tfstate&ID=ok-1" --data "$STATE"
check "set-up: a repository the pattern names is written over smart HTTP" \
	expect_eq state "$STATE" "$(g "$GIT_DIR_ROOT/allowed/r.git" show master:x.tfstate 2>&1)"
req UNLOCK "repository=$ALLOWED&state=x.tfstate" --data '{"ID":"ok-1"}'

# 1. a percent-encoded path: tfgit decodes the query once, so %252F reaches the URL as %2F,
# which the git server decodes into allowed/../other.git
: >"$T_DIR/git/access.log"
ESC=http://127.0.0.1:$GIT_PORT/allowed/..%252Fother.git
req GET "repository=$ESC&state=x.tfstate"
check "1. GET through allowed/..%2Fother.git is 400" expect_eq code 400 "$CODE"
check "... and does not return other.git's state" eval "! grep -q other-secret <<<\"\$BODY\""
req LOCK "repository=$ESC&state=x.tfstate" --data '{"ID":"esc-1"}'
check "1. LOCK through allowed/..%2Fother.git is 400" expect_eq code 400 "$CODE"
req POST "repository=$ESC&state=x.tfstate&ID=esc-1" --data "$STATE"
check "1. POST through allowed/..%2Fother.git is 400" expect_eq code 400 "$CODE"
check "... and other.git's refs are unchanged" expect_eq refs "$OTHER_REFS" "$(other_refs)"
for bad in '..%252fother.git' '%252E%252E%252Fother.git' '..%255Cother.git' '..%255cother.git' \
	'%252e%252e/other.git' 'x%2500.git' 'x%25zz.git' 'x%252.git'; do
	req GET "repository=http://127.0.0.1:$GIT_PORT/allowed/$bad&state=x.tfstate"
	check "1. repository path allowed/${bad//%25/%} is 400" expect_eq code 400 "$CODE"
done
check "1. none of these reached the git server" expect_eq requests "" "$(cat "$T_DIR/git/access.log")"
# other spellings of the allowed repository (%-encoded letters, a trailing '/', the host in
# capitals) are the same repository: one cache entry and one flock, not a clone each
for spelling in "allowed/r.gi%2574" "%2561llowed/r.git" "allowed/r.git/"; do
	req GET "repository=http://127.0.0.1:$GIT_PORT/$spelling&state=x.tfstate"
	check "1. the spelling $spelling of the allowed repository is served" expect_eq code 200 "$CODE"
done
check "1. ... from the one cache entry of that repository" \
	expect_eq entries 1 "$(cache_entries "$T_DIR/stack-allow/cache" | grep -c '\.git$')"

# 2. userinfo: the allowed host's name before '@', another host after it
for u in "http://localhost:x@127.0.0.1:$EVIL_PORT/allowed/r.git" "http://localhost@127.0.0.1:$EVIL_PORT/allowed/r.git" \
	"http://alice@127.0.0.1:$GIT_PORT/allowed/r.git" "http://alice:x@127.0.0.1:$GIT_PORT/allowed/r.git"; do
	req GET "repository=$u&state=x.tfstate" --max-time 20
	check "2. userinfo in an http URL (${u%%/allowed*}) is 400" expect_eq code 400 "$CODE"
done
check "2. the other host got no request" expect_eq requests "" "$(cat "$T_DIR/evil/access.log")"
check "... and never saw GIT_PASSWORD" eval "! grep -q '$(printf %s "alice:$PW" | base64)' '$T_DIR/evil/access.log'"

# 3. redirects (tests/t-redirect.sh in depth): a 302 to another port of the same host
req GET "repository=http://127.0.0.1:$REDIR_PORT/allowed/r.git&state=x.tfstate" --max-time 20
check "3. a 302 from the remote is 502" expect_eq code 502 "$CODE"
check "... saying redirect and naming the target" grep -q "redirect.*http://127.0.0.1:$HOLE_PORT/" <<<"$(unslash)"
check "... the redirecting server was asked (and answered 302)" grep -q ' 302 ' "$T_DIR/redirect/access.log"
check "... and the target saw no connection" expect_eq accepted 0 "$(hole_accepted)"

# 12. nginx writes the request line (query and its credentials included) when it buffers a
# body over client_body_buffer_size (1m) to a temporary file
big=$T_DIR/big.json
{ printf '{"version":4,"serial":2,"lineage":"sec-1","pad":"'; head -c $((1536 * 1024)) /dev/zero | tr '\0' a; printf '"}'; } >"$big"
req POST "repository=http://carol:Ngx-Secr3t-12@127.0.0.1:$GIT_PORT/allowed/r.git&state=x.tfstate&ID=ok-1" \
	--data-binary "@$big" --max-time 20
check "12. set-up: a 1.5 MiB POST is answered" eval "[ -n '$CODE' ] && [ '$CODE' != 000 ]"
check "12. nginx logs no query string (request line of a body buffered to a file)" \
	expect_eq lines "" "$(grep -h 'tfgit?' "$T_DIR/nginx.log" "$T_DIR"/stack-*/access.log)"
check "... and so no password from a repository URL" \
	expect_eq files "" "$(grep -l 'Ngx-Secr3t-12' "$T_DIR/nginx.log" "$T_DIR"/stack-*/access.log)"

for path in /tfgit/ /tfgit/x /tfgit/lock/x; do
	out=$(curl -s -w '\n%{http_code}' "${URL%/tfgit}$path?repository=http://carol:Ngx-Path-Secr3t@127.0.0.1/x.git&state=a")
	check "12. another address under /tfgit ($path) is a JSON 404" \
		eval "[ '${out##*$'\n'}' = 404 ] && grep -q '^{\"error\":' <<<'${out%$'\n'*}'"
done
check "12. ... and nginx logs no line with its query string" \
	expect_eq files "" "$(grep -l 'Ngx-Path-Secr3t' "$T_DIR/nginx.log" "$T_DIR"/stack-*/access.log)"

# 12. a password with a double quote in the default repository's URL
CLOSED=$(free_port)
stack_up quote TFGIT_DEFAULT_REPOSITORY="http://u:pa\"ss-LONG@127.0.0.1:$CLOSED/r.git" TFGIT_NETRC=/nonexistent
log_mark
req GET "state=x.tfstate"
check "12. set-up: a request to the unreachable default repository fails" eval "[ '$CODE' -ge 500 ]"
check "12. a password holding \" is not in the error body" eval "! grep -q 'ss-LONG' <<<\"\$BODY\""
check "... nor in the pool log" eval "! grep -q 'ss-LONG' '$T_DIR/pool.log'"
check "... (which logged the request)" grep -q 'GET' <<<"$(since_mark)"

# 4. the cache is private to the pool's user, even when the pool was started with umask 000
R4=$(new_remote perms)
stack_up perms STACK_UMASK=000 TFGIT_DEFAULT_REPOSITORY="$R4"
echo "# the pool of stack perms runs with $(grep '^Umask' "/proc/$LAST_POOL_PID/status")"
C4=$T_DIR/stack-perms/cache
req LOCK "state=p.tfstate" --data '{"ID":"p-1"}'
req POST "state=p.tfstate&ID=p-1" --data "$STATE"
req GET "state=p.tfstate"
check "4. set-up: the state was written and read back" expect_eq state "$STATE" "$BODY"
check "4. set-up: the cache holds a repository" grep -q '\.git$' <<<"$(cache_entries "$C4")"
check "4. no file or directory in the cache has a group or other permission bit" \
	expect_eq open "" "$(find "$C4" -mindepth 1 -perm /077 -printf '%m %P\n' | head -5)"
check "4. every directory in the cache is 0700" \
	expect_eq dirs "" "$(find "$C4" -mindepth 1 -type d ! -perm 0700 -printf '%m %P\n' | head -5)"
check "4. the cache directory itself is 0700" expect_eq mode 700 "$(stat -c %a "$C4")"

# 8. log forging: a newline in ID (the 428 message quotes it), a newline in stored lock JSON
# (the force-unlock line prints it)
log_mark
req POST "state=q.tfstate&ID=zz%0Atfgit%5B1%5D%3A%20FORGED-BY-ID%0D" --data "$STATE"
check "8. set-up: a POST with a newline in ID on an unlocked state is 428" expect_eq code 428 "$CODE"
check "8. ... and logged" grep -q 'q.tfstate' <<<"$(since_mark)"
check "8. no line was injected through ID (the forged one says tfgit[1]: FORGED-BY-ID)" \
	expect_eq forged "" "$(since_mark | grep -a '^tfgit\[1\]: FORGED')"
req LOCK "state=f.tfstate" --data $'{"ID":"fu-1",\n"Who":"INJECTED-BY-LOCK"}'
check "8. set-up: a LOCK body with a newline between JSON tokens is 200" expect_eq code 200 "$CODE"
log_mark
req UNLOCK "state=f.tfstate" --data-binary ''
check "8. set-up: force-unlock is 200" expect_eq code 200 "$CODE"
check "8. the force-unlock line names user and address" \
	grep -q 'force-unlock of f.tfstate by user=- addr=127.0.0.1 removed the lock ' <<<"$(since_mark)"
check "8. ... and the lock JSON it prints injects no line" \
	expect_eq foreign "" "$(since_mark | grep -v '^tfgit\[')"
check "8. request lines carry user= and addr=" grep -q 'user=- addr=127.0.0.1' <<<"$(since_mark)"
# a user nginx really authenticated (without auth_basic in front the stack refuses any
# Authorization header: nothing would check it)
FORGER='ops addr=10.9.8.7 removed nothing; user=ops'
htpasswd_line "$FORGER" x >"$T_DIR/forge.htpasswd"
printf 'auth_basic "tfgit";\nauth_basic_user_file %s;\n' "$T_DIR/forge.htpasswd" >"$T_DIR/forge.conf"
chmod 644 "$T_DIR/forge.htpasswd" "$T_DIR/forge.conf"
stack_up forge STACK_NGINX_INCLUDE="$T_DIR/forge.conf" TFGIT_DEFAULT_REPOSITORY="$R4"
req LOCK "state=g.tfstate" --data '{"ID":"fu-2"}' -u "$FORGER:x"
log_mark
req UNLOCK "state=g.tfstate" --data-binary '' -u "$FORGER:x"
check "8. set-up: a force-unlock with a user name holding spaces and '=' is 200" expect_eq code 200 "$CODE"
check "8. the user name stays one field of the line (its spaces and '=' %-encoded)" \
	grep -q 'force-unlock of g.tfstate by user=ops%20addr%3D10.9.8.7%20removed%20nothing;%20user%3Dops addr=127.0.0.1 ' <<<"$(since_mark)"
check "8. ... no line shows the forged address as a field" expect_eq lines "" "$(since_mark | grep ' addr=10.9.8.7')"

# 1. local paths: a directory inside the allowed one whose .git, refs or objects is a symlink
# leading out of it is not a repository of the allowed directory
st() { printf '{"version":4,"serial":%s,"lineage":"sec"}' "$1"; }
AL=$T_DIR/remotes/allowed
mkdir -p "$AL"
OUT=$(new_remote outside)
commit_file "$OUT" master secret.tfstate '{"version":4,"serial":1,"lineage":"outside-secret"}' >/dev/null
mkdir "$AL/nonbare.git" && ln -s "$OUT" "$AL/nonbare.git/.git"
git init -q --bare "$AL/dotgit.git" && ln -s "$OUT" "$AL/dotgit.git/.git"
git init -q --bare "$AL/refs.git" && rm -rf "$AL/refs.git/refs" && ln -s "$OUT/refs" "$AL/refs.git/refs"
git init -q --bare "$AL/fine.git"
chown -R "$POOL_USER" "$AL"
out_refs=$(g "$OUT" for-each-ref)
stack_up local TFGIT_ALLOWED_REPOS="$AL/*.git" TFGIT_REQUIRE_LOCK=0
for r in nonbare dotgit refs; do
	req GET "repository=$AL/$r.git&state=secret.tfstate"
	check "1. a local repository $r.git with a symlink inside leading out of the allowed directory: GET is not served" \
		eval "[ '$CODE' != 200 ] && ! grep -q outside-secret <<<'$BODY'"
	req LOCK "repository=$AL/$r.git&state=x.tfstate" --data '{"ID":"esc"}'
	check "1. ... nor LOCK ($r.git)" eval "[ '$CODE' != 200 ]"
	req POST "repository=file://$AL/$r.git&state=x.tfstate" --data "$(st 1)"
	check "1. ... nor POST through file:// ($r.git)" eval "[ '$CODE' != 200 ]"
done
check "1. the repository outside got no ref and no commit" expect_eq refs "$out_refs" "$(g "$OUT" for-each-ref)"
req POST "repository=$AL/fine.git&state=x.tfstate" --data "$(st 1)"
check "1. a plain bare repository in the allowed directory is served" expect_eq code 200 "$CODE"
finish
