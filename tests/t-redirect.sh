#!/usr/bin/env bash
# No redirect is followed, to any host, port or path, over HTTP and HTTPS: a git server that
# answers 302/307 gets a 502 naming where it pointed, and nothing (no connection, no request,
# no credentials) reaches the target. libgit2 1.5 alone would follow a redirect to another
# port or path of the same host, with the Authorization header tfgit sends up front.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

blackhole # the other port: it prints "accepted" for any connection

# redirects SCHEME HOST OTHERHOST: the locations of a git server that redirects; elsewhere.git
# is a real repository of the same server, which a followed redirect would read or write.
redirects() {
	cat <<CONF
        location /to-port.git/ { return 302 $1://$2:$HOLE_PORT\$request_uri; }
        location /to-path.git/ { absolute_redirect off; return 302 /elsewhere.git/info/refs?\$args; }
        location /to-url.git/ { return 302 $1://$2:\$server_port/elsewhere.git/info/refs?\$args; }
        location /to-host.git/ { return 302 $1://$3:\$server_port\$request_uri; }
        location = /midway.git/git-upload-pack { absolute_redirect off; return 307 /elsewhere.git/git-upload-pack; }
        location = /midway.git/git-receive-pack { absolute_redirect off; return 307 /elsewhere.git/git-receive-pack; }
CONF
}

# seeded_repo DIR: a repository whose master holds a.tfstate, so that a GET must fetch.
seeded_repo() {
	local blob tree
	bare_repo "$1"
	blob=$(printf '{"serial":7}' | g "$1" hash-object -w --stdin)
	tree=$(printf '100644 blob %s\ta.tfstate\n' "$blob" | g "$1" mktree)
	g "$1" update-ref refs/heads/master "$(g "$1" commit-tree -m seed "$tree")"
}

GIT_HTTP_EXTRA=$(redirects http 127.0.0.1 localhost) git_http_server plain plain
P_PORT=$GIT_PORT P_ROOT=$GIT_DIR_ROOT
GIT_HTTP_EXTRA=$(redirects https localhost 127.0.0.1) git_http_server secure tls
S_PORT=$GIT_PORT S_ROOT=$GIT_DIR_ROOT
for root in "$P_ROOT" "$S_ROOT"; do
	htpasswd_line alice 'Redir-Pa55' >>"${root%/repos}/htpasswd"
	bare_repo "$root/state.git"
	seeded_repo "$root/elsewhere.git"
	seeded_repo "$root/midway.git"
done

stack_up redirect TFGIT_ALLOWED_REPOS="http://127.0.0.1:*/*.git https://localhost:*/*.git" \
	GIT_USERNAME=alice GIT_PASSWORD=Redir-Pa55 TFGIT_SSL_CA_FILE="$T_DIR/tls/ca.crt" TFGIT_NETRC=/nonexistent

LOCK='{"ID":"redir-1","Who":"ci@runner"}'
# refused METHOD REPOSITORY [TARGET]: 502, and the JSON error says the repository redirected
# (to TARGET)
refused() {
	local body=()
	[ "$1" = LOCK ] && body=(--data "$LOCK")
	req "$1" "repository=$2&state=a.tfstate" "${body[@]}"
	expect_eq code 502 "$CODE" || return 1
	sed 's|\\/|/|g' <<<"$BODY" | grep -qF "\"error\":\"the repository redirected$3" &&
		grep -qF 'tfgit follows no redirect"}' <<<"$BODY" || { echo "body: $BODY"; return 1; }
}
cycle() { # LOCK, GET, POST, GET, UNLOCK on REPOSITORY
	local q="repository=$1&state=b.tfstate"
	req LOCK "$q" --data "$LOCK"; [ "$CODE" = 200 ] || { echo "LOCK $CODE $BODY"; return 1; }
	req GET "$q"; [ "$CODE" = 204 ] || { echo "GET $CODE $BODY"; return 1; }
	req POST "$q&ID=redir-1" --data '{"serial":1,"lineage":"r"}'; [ "$CODE" = 200 ] || { echo "POST $CODE $BODY"; return 1; }
	req GET "$q"; [ "$BODY" = '{"serial":1,"lineage":"r"}' ] || { echo "GET after POST: $CODE $BODY"; return 1; }
	req UNLOCK "$q" --data "$LOCK"; [ "$CODE" = 200 ] || { echo "UNLOCK $CODE $BODY"; return 1; }
}

for mode in plain secure; do
	if [ $mode = plain ]; then
		S=http H=127.0.0.1 PORT=$P_PORT ROOT=$P_ROOT
	else
		S=https H=localhost PORT=$S_PORT ROOT=$S_ROOT
	fi
	BASE=$S://$H:$PORT
	check "$S: a 302 to another port of the same host is 502 naming it (GET)" \
		refused GET "$BASE/to-port.git" " to $S://$H:$HOLE_PORT/to-port.git;"
	check "$S: ... and for a push connection (LOCK)" refused LOCK "$BASE/to-port.git" " to $S://$H:$HOLE_PORT/to-port.git;"
	check "$S: ... and the other port saw no connection" expect_eq accepted 0 "$(grep -c accepted "$T_DIR/hole.out")"
	check "$S: a 302 to another path (Location: /elsewhere.git/...) is 502 naming it (GET)" \
		refused GET "$BASE/to-path.git" " to $BASE/elsewhere.git;"
	check "$S: ... and for a push connection (LOCK)" refused LOCK "$BASE/to-path.git" " to $BASE/elsewhere.git;"
	check "$S: a 302 to another path as a full URL of the same host and port is 502" \
		refused GET "$BASE/to-url.git" " to $BASE/elsewhere.git;"
	check "$S: a 302 to another host name is 502 (libgit2's own refusal)" refused GET "$BASE/to-host.git" ""
	# libgit2 follows a redirect only in answer to the first request (info/refs)
	check "$S: a 307 on the upload-pack POST after the advertisement is 502 (libgit2's refusal)" \
		refused GET "$BASE/midway.git" ""
	check "$S: a 307 on the receive-pack POST is 502 (libgit2's refusal)" refused LOCK "$BASE/midway.git" ""
	check "$S: ... and midway.git has no lock branch" expect_eq locks "" "$(g "$ROOT/midway.git" for-each-ref refs/heads/locks)"
	log=${ROOT%/repos}/access.log
	check "$S: the server did answer with 8 redirects" expect_eq redirects 8 "$(grep -cE ' 30[27] c=[0-9]+[-r.]?$' "$log")"
	check "$S: ... and got no request for the redirect target" eval "! grep -q ' /elsewhere.git' '$log'"
	check "$S: ... elsewhere.git is unchanged" expect_eq refs "refs/heads/master" "$(g "$ROOT/elsewhere.git" for-each-ref --format='%(refname)')"
	check "$S: a repository of the same server still works: LOCK, GET, POST, UNLOCK" cycle "$BASE/state.git"
done
check "the password is in no log" eval "! grep -rq 'Redir-Pa55' '$T_DIR/pool.log' '$T_DIR/nginx.log' '$T_DIR'/stack-*/access.log"
finish
