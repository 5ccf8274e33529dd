#!/usr/bin/env bash
# One binary, three process models: plain CGI (request from the environment and stdin), a
# pool started with fds 1 and 2 closed; a cache per account, refused when another user could
# have touched it.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/servers.sh"

ST='{"version":4,"serial":1,"lineage":"cgi"}'

# --- plain CGI, as mod_cgid runs it -----------------------------------------------------------
R=$(new_remote cgi)
C=$T_DIR/cgi-cache
mkdir -m 700 "$C" && chown "$POOL_USER" "$C"
cgi "$POOL_USER" "$ST" REQUEST_METHOD=POST QUERY_STRING="state=a.tfstate" CONTENT_LENGTH=${#ST} \
	TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$C" TFGIT_REQUIRE_LOCK=0
check "CGI: a POST with CONTENT_LENGTH is 200" expect_eq code 200 "$CODE"
check "CGI: the answer is a CGI response (Status: line first, headers, blank line)" \
	eval "head -1 '$T_DIR/cgi.out' | grep -q '^Status: 200 OK' && grep -q \$'^\\r\$' '$T_DIR/cgi.out'"
check "CGI: the state is on the remote" expect_eq state "$ST" "$(g "$R" show master:a.tfstate)"
check "CGI: settings come from the environment (TFGIT_DEFAULT_REPOSITORY, SetEnv's way)" \
	expect_eq commits 1 "$(g "$R" rev-list --count master)"
ST2='{"version":4,"serial":2,"lineage":"cgi"}'
cgi "$POOL_USER" "$ST2" REQUEST_METHOD=POST QUERY_STRING="state=a.tfstate" \
	TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$C" TFGIT_REQUIRE_LOCK=0
check "CGI: a body without CONTENT_LENGTH (chunked, as Apache passes it) is read to its end" \
	expect_eq state "$ST2" "$(g "$R" show master:a.tfstate)"
cgi "$POOL_USER" '{"version":4' REQUEST_METHOD=POST QUERY_STRING="state=a.tfstate" CONTENT_LENGTH=500 \
	TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$C" TFGIT_REQUIRE_LOCK=0
check "CGI: a body shorter than CONTENT_LENGTH is 400 and changes nothing" \
	eval "[ '$CODE' = 400 ] && [ \"\$(g '$R' show master:a.tfstate)\" = '$ST2' ]"
cgi "$POOL_USER" "" REQUEST_METHOD=GET QUERY_STRING="state=a.tfstate" TFGIT_DEFAULT_REPOSITORY="$R" \
	TFGIT_CACHE_DIR="$C"
check "CGI: GET returns the state" expect_eq body "$ST2" "$BODY"
check "CGI: ... with its Content-MD5" grep -q '^Content-MD5: ' "$T_DIR/cgi.out"
check "CGI: the request's log line goes to stderr (the web server's error log)" \
	grep -q 'GET state=a.tfstate .* -> 200' "$T_DIR/cgi.err"
cgi "$POOL_USER" "" REQUEST_METHOD=GET QUERY_STRING="state=a.tfstate" HTTP_TFGIT_DEFAULT_REPOSITORY="$R" \
	TFGIT_CACHE_DIR="$C"
check "CGI: a client's header (HTTP_TFGIT_DEFAULT_REPOSITORY) is never read as a setting" \
	answered 400 'no default repository'
cgi "$POOL_USER" "" REQUEST_METHOD=GET QUERY_STRING="state=a.tfstate" TFGIT_DEFAULT_REPOSITORY="$R" \
	TFGIT_CACHE_DIR="$C" TFGIT_REMOTE_TIMEOUT=soon
check "CGI: an unusable setting is a 500 with a JSON body" \
	answered 500 '{"error":"this server'"'"'s settings are not usable'
check "CGI: ... and the log names the setting" grep -q 'TFGIT_REMOTE_TIMEOUT=soon is not a number' "$T_DIR/cgi.err"
lockq="state=b.tfstate"
cgi "$POOL_USER" '{"ID":"cgi-1"}' REQUEST_METHOD=POST QUERY_STRING="$lockq" PATH_INFO=/lock \
	TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$C"
check "CGI: POST to …/lock (PATH_INFO) takes the lock" \
	eval "[ '$CODE' = 200 ] && g '$R' rev-parse -q --verify refs/heads/locks/b.tfstate"
cgi "$POOL_USER" "$ST" REQUEST_METHOD=PUT QUERY_STRING="$lockq&ID=cgi-1" TFGIT_DEFAULT_REPOSITORY="$R" \
	TFGIT_CACHE_DIR="$C"
check "CGI: PUT writes the state like POST" expect_eq state "$ST" "$(g "$R" show master:b.tfstate)"
cgi "$POOL_USER" '{"ID":"cgi-1"}' REQUEST_METHOD=DELETE QUERY_STRING="$lockq" PATH_INFO=/lock \
	TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$C"
check "CGI: DELETE of …/lock unlocks" \
	eval "[ '$CODE' = 200 ] && ! g '$R' rev-parse -q --verify refs/heads/locks/b.tfstate"
check "CGI: the state itself was not deleted by that DELETE" expect_eq state "$ST" "$(g "$R" show master:b.tfstate)"
cgi "$POOL_USER" '{"ID":"cgi-1"}' REQUEST_METHOD=DELETE QUERY_STRING="$lockq&ID=cgi-1" PATH_INFO=/unlock \
	TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$C" TFGIT_REQUIRE_LOCK=0
check "CGI: another path below the program (PATH_INFO=/unlock, a typo) is a JSON 404" \
	answered 404 '{"error":"no such address'
check "... and deleted nothing" expect_eq state "$ST" "$(g "$R" show master:b.tfstate)"
out=$(as_pool env -i "$TFGIT_BIN" </dev/null 2>&1)
rc=$?
check "started by hand (no socket, no CGI request) it exits 2" expect_eq status 2 "$rc"
check "... saying why" grep -q 'not started by a web server' <<<"$out"

# --- a pool started with fds 1 and 2 closed (cgi-fcgi -connect does that) ---------------------
closer=$T_DIR/close-fds
printf '#!/bin/sh\nexec "$@" >&- 2>&-\n' >"$closer"
chmod 755 "$closer"
RF=$(new_remote fds)
TFGIT_WRAPPER=$closer stack_up fds TFGIT_DEFAULT_REPOSITORY="$RF" TFGIT_REQUIRE_LOCK=0 FCGI_WORKERS=1
wait_for 10 "the pool's worker" pgrep -P "$LAST_POOL_PID"
worker=$(pgrep -P "$LAST_POOL_PID" | head -1)
# /dev/null (or, under make sanitize, the checker's log, opened before main): never a socket,
# the cache's flock or a repository file
std_fds_safe() {
	local fd link
	for fd in 1 2; do
		link=$(readlink "/proc/$worker/fd/$fd") || { echo "fd $fd is closed"; return 1; }
		case $link in socket:* | *.flock | */cache/*) echo "fd $fd is $link"; return 1 ;; esac
	done
}
check "fds 1 and 2 closed at start: the worker has reopened them on /dev/null" std_fds_safe
req POST "state=f.tfstate" --data "$ST"
req GET "state=f.tfstate"
check "... and requests are answered intact (no log line written into a connection)" expect_eq body "$ST" "$BODY"

# --- Apache's own 503 under mod_cgid (issue 20): the shipped ErrorDocument says what it may be ---
. "$ROOT/tests/apache.sh"
if ! apache_available; then
	skip "Apache's own 503 under tfgit-cgi.conf names the CGI daemon" "apache2 with mod_cgid is not installed (make deps)"
else
	AD=$T_DIR/apache-cgid
	mkdir -p "$AD"
	chmod 755 "$AD"
	bin=$(apache_bin "$AD" "$TFGIT_BIN")
	apache_writable_dir "$AD/cache"
	R503=$(new_remote apache503)
	printf '<Location /tfgit>\n    SetEnv TFGIT_DEFAULT_REPOSITORY %s\n    SetEnv TFGIT_CACHE_DIR %s\n</Location>\n' \
		"$R503" "$AD/cache" >"$AD/site.conf"
	APACHE_DEFINES="Define TFGIT_BIN $bin
Define TFGIT_ACCESS_LOG $AD/tfgit-access.log" apache_start "$AD" "$ROOT/apache/tfgit-cgi.conf" "$AD/site.conf" \
		>"$AD/start.out" 2>&1 || fail "Apache starts with apache/tfgit-cgi.conf" "$(cat "$AD/start.out")"
	code=$(curl -s -o /dev/null -w '%{http_code}' "$APACHE_URL/tfgit?state=a.tfstate")
	check "Apache with tfgit-cgi.conf: a GET is tfgit's answer (204, no state yet)" expect_eq code 204 "$code"
	# the CGI daemon out of reach, as after a2enmod cgid and a reload: its socket gone
	rm -f "$AD"/run/cgisock*
	code=$(curl -s -D "$T_DIR/h503" -o "$T_DIR/b503" -w '%{http_code}' "$APACHE_URL/tfgit?state=a.tfstate")
	check "mod_cgid's daemon out of reach: Apache answers 503 itself (AH01257 in its error log)" \
		eval "[ '$code' = 503 ] && grep -q AH01257 '$AD/error.log'"
	check "... with the shipped JSON: not 'busy', but the CGI daemon and restarting Apache, and where to look" \
		eval "jq -e '.error | test(\"CGI daemon\") and test(\"restart Apache\") and test(\"error log\") and (test(\"busy\") | not)' '$T_DIR/b503' &&
			grep -qi '^content-type: application/json' '$T_DIR/h503'"
	apache_stop "$APACHE_PID"
	# a2enmod cgid forgotten: no module runs the program, and Apache must not send it instead
	APACHE_SKIP_MODULES=cgid APACHE_DEFINES="Define TFGIT_BIN $bin
Define TFGIT_ACCESS_LOG $AD/tfgit-access.log" apache_start "$AD" "$ROOT/apache/tfgit-cgi.conf" "$AD/site.conf" \
		>"$AD/start2.out" 2>&1 || fail "Apache starts with apache/tfgit-cgi.conf and no mod_cgid" "$(cat "$AD/start2.out")"
	code=$(curl -s -o "$T_DIR/bnocgi" -w '%{http_code}' "$APACHE_URL/tfgit?state=a.tfstate")
	check "no mod_cgid loaded: tfgit-cgi.conf answers 403, not the program as a download" \
		eval "[ '$code' = 403 ] && ! grep -q ELF '$T_DIR/bnocgi'"
	apache_stop "$APACHE_PID"
fi

# --- a cache per account ---------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
	skip "two accounts, each with its own cache" "needs root to make the accounts"
	finish
	exit
fi
A=tfgit-test-a B=tfgit-test-b
for u in $A $B; do
	id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
done
UA=$(id -u $A) UB=$(id -u $B)
accounts_cleanup() {
	rm -rf "/dev/shm/tfgit-$UA" "/dev/shm/tfgit-$UB"
	userdel "$A" 2>/dev/null
	userdel "$B" 2>/dev/null
	cleanup
}
trap accounts_cleanup EXIT
rm -rf "/dev/shm/tfgit-$UA" "/dev/shm/tfgit-$UB"
RA=$(new_remote acct-a) RB=$(new_remote acct-b)
chown -R $A "$RA"
chown -R $B "$RB"
cgi $A "$ST" REQUEST_METHOD=POST QUERY_STRING="state=s.tfstate" TFGIT_DEFAULT_REPOSITORY="$RA" TFGIT_REQUIRE_LOCK=0
check "account A, no cache setting: its POST is 200" expect_eq code 200 "$CODE"
cgi $B "$ST" REQUEST_METHOD=POST QUERY_STRING="state=s.tfstate" TFGIT_DEFAULT_REPOSITORY="$RB" TFGIT_REQUIRE_LOCK=0
check "account B, no cache setting: its POST is 200 too" expect_eq code 200 "$CODE"
check "each account has its own cache, /dev/shm/tfgit-<uid>, 0700" \
	expect_eq caches "$A 700 $B 700" "$(stat -c '%U %a' "/dev/shm/tfgit-$UA" "/dev/shm/tfgit-$UB" | tr '\n' ' ' | sed 's/ $//')"

# the operator names a cache directory (TFGIT_CACHE_DIR) that another user made first, or one
# open to others: refused, never replaced by another one (the default one falls back: t-shm.sh)
get_a() {
	cgi $A "" REQUEST_METHOD=GET QUERY_STRING="state=s.tfstate" TFGIT_DEFAULT_REPOSITORY="$RA" \
		TFGIT_CACHE_DIR="/dev/shm/tfgit-$UA"
}
rm -rf "/dev/shm/tfgit-$UA"
install -d -m 700 -o $B "/dev/shm/tfgit-$UA"
get_a
check "a cache directory given, owned by another user, is refused (500)" expect_eq code 500 "$CODE"
check "... with an error naming the path and the reason" \
	answered 500 "/dev/shm/tfgit-$UA belongs to uid $UB, not to this process's user (uid $UA)"
rm -rf "/dev/shm/tfgit-$UA"
install -d -m 777 -o $A "/dev/shm/tfgit-$UA"
get_a
check "a world-writable cache directory is refused, naming it" \
	answered 500 "/dev/shm/tfgit-$UA is writable by every user"
chmod 770 "/dev/shm/tfgit-$UA"
get_a
check "a group-writable one too" answered 500 "/dev/shm/tfgit-$UA is writable by its group"
rm -rf "/dev/shm/tfgit-$UA"
install -d -m 700 -o $A "$T_DIR/a-real-cache"
chmod 755 "$T_DIR"
ln -s "$T_DIR/a-real-cache" "/dev/shm/tfgit-$UA"
get_a
check "a cache directory that is a symlink is not followed" answered 500 "a symlink is not followed"
check "... nothing was written through it" expect_eq entries "" "$(ls -A "$T_DIR/a-real-cache")"
rm -f "/dev/shm/tfgit-$UA"
get_a
check "with the directory gone, A's request works again" expect_eq code 200 "$CODE"
flock_file=$(find "/dev/shm/tfgit-$UA" -name '*.flock' | head -1)
chown $B "$flock_file"
get_a
check "a .flock owned by another user is refused, naming it" \
	answered 500 "$flock_file is not a file of this process's user"
chown $A "$flock_file"
chmod 666 "$flock_file"
get_a
check "a world-writable .flock is refused" answered 500 "$flock_file is not a file of this process's user"
finish
