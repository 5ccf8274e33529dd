#!/usr/bin/env bash
# Smart HTTP and HTTPS remotes with credentials: nginx + git http-backend behind auth_basic,
# a CA made here, password and token files rotated during the run, netrc for two remotes,
# secrets kept out of logs, bodies, cache names and commits, and the failures users meet.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

git_http_server plain plain
P_PORT=$GIT_PORT P_ROOT=$GIT_DIR_ROOT
git_http_server secure tls
S_PORT=$GIT_PORT S_ROOT=$GIT_DIR_ROOT
htpasswd_line alice 'pa55-Plain' >>"$T_DIR/plain/htpasswd"
htpasswd_line bob 'Tls-s3cret' >>"$T_DIR/secure/htpasswd"
bare_repo "$P_ROOT/state.git"
bare_repo "$S_ROOT/state.git" main # its default branch is main, the state goes on master
PLAIN=http://127.0.0.1:$P_PORT/state.git
SECURE=https://localhost:$S_PORT/state.git
ALLOW="http://127.0.0.1:*/*.git https://localhost:*/*.git"
LOCK='{"ID":"https-1","Who":"ci@runner"}'
cycle() { # cycle REPOSITORY STATE: LOCK, GET, POST, GET, UNLOCK; fails on the first surprise
	local q="repository=$1&state=$2"
	req LOCK "$q" --data "$LOCK"; [ "$CODE" = 200 ] || { echo "LOCK $CODE $BODY"; return 1; }
	req GET "$q"; [ "$CODE" = 204 ] || { echo "GET $CODE $BODY"; return 1; }
	req POST "$q&ID=https-1" --data '{"version":4,"serial":1,"lineage":"t"}'; [ "$CODE" = 200 ] || { echo "POST $CODE $BODY"; return 1; }
	req GET "$q"; [ "$BODY" = '{"version":4,"serial":1,"lineage":"t"}' ] || { echo "GET after POST: $CODE $BODY"; return 1; }
	req UNLOCK "$q" --data "$LOCK"; [ "$CODE" = 200 ] || { echo "UNLOCK $CODE $BODY"; return 1; }
}

printf 'pa55-Plain\n' >"$T_DIR/password"
chmod 644 "$T_DIR/password"
printf 'machine 127.0.0.1 login alice password pa55-Plain\nmachine localhost\n  login bob\n  password Tls-s3cret\n' >"$T_DIR/netrc"
chmod 644 "$T_DIR/netrc"

stack_up userpass TFGIT_ALLOWED_REPOS="$ALLOW" GIT_USERNAME=alice GIT_PASSWORD_FILE="$T_DIR/password" \
	TFGIT_SSL_CA_FILE="$T_DIR/tls/ca.crt" TFGIT_NETRC=/nonexistent
check "HTTP with GIT_USERNAME and GIT_PASSWORD_FILE: LOCK, GET, POST, UNLOCK" cycle "$PLAIN" a.tfstate
check "... the state is on the server's repository" expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$(g "$P_ROOT/state.git" show master:a.tfstate)"
check "... the lock branch was deleted on the server" expect_eq locks "" "$(g "$P_ROOT/state.git" for-each-ref refs/heads/locks)"
# the password changes on the server: until the file follows, authentication fails
htpasswd_line alice 'rotated-Pw2' >"$T_DIR/plain/htpasswd"
req GET "repository=$PLAIN&state=a.tfstate"
check "an outdated password is 502" expect_eq code 502 "$CODE"
check "... saying authentication to the repository failed" grep -q 'authentication to 127.0.0.1 failed' <<<"$BODY"
printf 'rotated-Pw2\n' >"$T_DIR/password"
req GET "repository=$PLAIN&state=a.tfstate"
check "GIT_PASSWORD_FILE rewritten mid-run is used without a restart" expect_eq code 200 "$CODE"
req GET "repository=$SECURE&state=a.tfstate"
check "alice's password on bob's HTTPS server is 502" expect_eq code 502 "$CODE"
check "... saying authentication failed" grep -q 'authentication to localhost failed' <<<"$BODY"

stack_up netrc TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_NETRC="$T_DIR/netrc" TFGIT_SSL_CA_FILE="$T_DIR/tls/ca.crt"
htpasswd_line alice 'pa55-Plain' >"$T_DIR/plain/htpasswd"
check "netrc: the plain server with alice's entry" cycle "$PLAIN" b.tfstate
check "netrc: the TLS server with bob's entry, private CA from TFGIT_SSL_CA_FILE" cycle "$SECURE" b.tfstate
check "... the state went to master although the server's default branch is main" \
	expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$(g "$S_ROOT/state.git" show master:b.tfstate)"
check "... and main was not created" expect_eq main "" "$(g "$S_ROOT/state.git" for-each-ref refs/heads/main)"

stack_up noca TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_NETRC="$T_DIR/netrc"
req GET "repository=$SECURE&state=b.tfstate"
check "HTTPS without the private CA is 502" expect_eq code 502 "$CODE"
check "... saying the certificate is not trusted" grep -q 'not trusted' <<<"$BODY"

stack_up noverify TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_NETRC="$T_DIR/netrc" TFGIT_SSL_NO_VERIFY=1
req GET "repository=$SECURE&state=b.tfstate"
check "TFGIT_SSL_NO_VERIFY=1 reads without the CA" expect_eq code 200 "$CODE"
check "... and warns at start" grep -q 'WARNING: TFGIT_SSL_NO_VERIFY=1' "$T_DIR/pool.log"

printf 'gh-T0ken-1\n' >"$T_DIR/token"
chmod 644 "$T_DIR/token"
htpasswd_line x-access-token 'gh-T0ken-1' >>"$T_DIR/plain/htpasswd"
stack_up token TFGIT_ALLOWED_REPOS="$ALLOW" GITHUB_TOKEN_FILE="$T_DIR/token" TFGIT_NETRC=/nonexistent
check "GITHUB_TOKEN_FILE alone (user x-access-token)" cycle "$PLAIN" c.tfstate
sed -i '/^x-access-token:/d' "$T_DIR/plain/htpasswd"
htpasswd_line x-access-token 'gh-T0ken-2' >>"$T_DIR/plain/htpasswd"
printf 'gh-T0ken-2\n' >"$T_DIR/token"
req GET "repository=$PLAIN&state=c.tfstate"
check "a token file rotated mid-run is used at the next request" expect_eq code 200 "$CODE"

htpasswd_line dave 'gh-T0ken-env' >>"$T_DIR/plain/htpasswd"
stack_up tokenenv TFGIT_ALLOWED_REPOS="$ALLOW" GIT_USERNAME=dave GITHUB_TOKEN=gh-T0ken-env TFGIT_NETRC=/nonexistent
req GET "repository=$PLAIN&state=c.tfstate"
check "GIT_USERNAME with GITHUB_TOKEN from the environment" expect_eq code 200 "$CODE"

# credentials in a URL: the operator's TFGIT_DEFAULT_REPOSITORY may carry them; a request's
# repository URL may not (they would sit in every Terraform configuration and in logs)
htpasswd_line carol 'Url-Secr3t-99' >>"$T_DIR/plain/htpasswd"
CRED=http://carol:Url-Secr3t-99@127.0.0.1:$P_PORT/state.git
stack_up urlcred TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_NETRC=/nonexistent TFGIT_DEFAULT_REPOSITORY="$CRED"
check "credentials in TFGIT_DEFAULT_REPOSITORY" cycle "" d.tfstate
req GET "repository=http://carol:Wrong-Secr3t-77@127.0.0.1:$P_PORT/state.git&state=d.tfstate"
check "credentials in a request's repository URL are 400" expect_eq code 400 "$CODE"
check "... and the error body does not contain them" eval "! grep -q 'Wrong-Secr3t-77' <<<'$BODY'"
stack_up urlwrong TFGIT_NETRC=/nonexistent \
	TFGIT_DEFAULT_REPOSITORY="http://carol:Wrong-Secr3t-77@127.0.0.1:$P_PORT/state.git"
req GET "state=d.tfstate"
check "a wrong password in TFGIT_DEFAULT_REPOSITORY is 502" expect_eq code 502 "$CODE"
check "... and the error body does not contain it" eval "! grep -q 'Wrong-Secr3t-77' <<<'$BODY'"
leaks=$(grep -rl -e 'Url-Secr3t-99' -e 'Wrong-Secr3t-77' -e 'pa55-Plain' -e 'Tls-s3cret' -e 'gh-T0ken' \
	"$T_DIR"/pool.log "$T_DIR"/nginx.log "$T_DIR"/stack-*/access.log 2>/dev/null)
check "no password or token reaches the pool's log or nginx's logs" expect_eq files "" "$leaks"
check "no cache directory name contains a secret" \
	eval "! find '$T_DIR' -path '*/cache/*' -maxdepth 4 | grep -q -e Secr3t -e carol"
check "no commit contains a secret" \
	eval "! g '$P_ROOT/state.git' log --all --format='%an %ae %cn %ce %B' | grep -q -e Secr3t -e pa55"
req GET "repository=http://carol:x@127.0.0.1:$P_PORT/state.git&state=../x"
check "the 400 for a bad state does not echo the URL" eval "! grep -q carol <<<'$BODY'"

# failures
blackhole
REFUSED=$(free_port)
stack_up failures TFGIT_ALLOWED_REPOS="http://127.0.0.1:*/*.git https://127.0.0.1:*/*.git" GIT_USERNAME=alice \
	GIT_PASSWORD=pa55-Plain TFGIT_REMOTE_TIMEOUT=2 FCGI_WORKERS=1 TFGIT_SSL_CA_FILE="$T_DIR/tls/ca.crt"
req GET "repository=http://127.0.0.1:$REFUSED/state.git&state=x.tfstate"
check "connection refused is 503" expect_eq code 503 "$CODE"
hdr=$(curl -s -D - -o /dev/null "$URL?repository=http://127.0.0.1:$REFUSED/state.git&state=x.tfstate" | tr -d '\r')
check "... with Retry-After" grep -qi '^Retry-After: ' <<<"$hdr"
req GET "repository=http://127.0.0.1:$P_PORT/missing.git&state=x.tfstate"
check "a repository the server does not have is 502" expect_eq code 502 "$CODE"
start=$SECONDS
req GET "repository=http://127.0.0.1:$HOLE_PORT/state.git&state=x.tfstate" --max-time 30
check "a remote that never answers is 504" expect_eq code 504 "$CODE"
check "... within TFGIT_REMOTE_TIMEOUT=2 (and a margin)" eval "[ $((SECONDS - start)) -le 6 ]"
check "... saying so" grep -q 'TFGIT_REMOTE_TIMEOUT' <<<"$BODY"
start=$SECONDS
req GET "repository=https://127.0.0.1:$HOLE_PORT/state.git&state=x.tfstate" --max-time 30
check "an HTTPS remote that never answers the handshake is 504" expect_eq code 504 "$CODE"
check "... within TFGIT_REMOTE_TIMEOUT=2 (and a margin)" eval "[ $((SECONDS - start)) -le 6 ]"
req GET "repository=https://127.0.0.1:$S_PORT/state.git&state=x.tfstate"
check "a certificate of a trusted CA for another name (localhost, not 127.0.0.1) is 502" expect_eq code 502 "$CODE"
check "... saying the certificate is not trusted" grep -q 'not trusted' <<<"$BODY"
req LOCK "repository=$PLAIN&state=e.tfstate" --data '{"ID":"after-timeout"}' --max-time 30
check "the only worker serves the next request" expect_eq code 200 "$CODE"

tf_over "smart HTTP with credentials" "$URL?repository=$PLAIN" over-http "$P_ROOT/state.git" master
stack_up tftls TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_NETRC="$T_DIR/netrc" TFGIT_SSL_CA_FILE="$T_DIR/tls/ca.crt"
tf_over "HTTPS with a private CA" "$URL?repository=$SECURE" over-https "$S_ROOT/state.git" master
check "git fsck of the HTTP server's repository is clean" g "$P_ROOT/state.git" fsck --strict
check "git fsck of the HTTPS server's repository is clean" g "$S_ROOT/state.git" fsck --strict
finish
