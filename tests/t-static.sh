#!/usr/bin/env bash
# make static: build/static/tfgit.fcgi carries its libraries (only glibc and GSSAPI stay
# dynamic) and serves plain CGI as a shared host's web server starts it: the request in the
# environment, the body on stdin, the answer on stdout.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

BIN=$BUILD_DIR/static/tfgit.fcgi
if [ ! -x "$BIN" ]; then
	# make test builds it; BUILD=build-asan (make sanitize) does not
	skip "the static binary" "$BIN is not built (make static)"
	finish
	exit
fi
strip -o "$T_DIR/stripped" "$BIN"
echo "# $BIN: $(stat -c %s "$BIN") bytes, $(stat -c %s "$T_DIR/stripped") stripped;" \
	"needs glibc $(objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 | cut -d_ -f2)"

# the libraries ldd lists, by name (libgit2.so.1.5 -> libgit2)
# run as the pool's user: a copy where it can reach it (a clone under a 0700 directory)
RUN_BIN=$T_DIR/static-tfgit.fcgi
install -m 755 "$BIN" "$RUN_BIN"
linked=$(ldd "$BIN" | awk '{print $1}' | sed -n 's|^.*/||; s/\.so.*//p' | sort -u)
bundled="libgit2 libssh2 libfcgi libjson-c libssl libcrypto libhttp_parser libpcre2-8 libz libmbedtls libmbedx509 libmbedcrypto"
found=""
for l in $bundled; do grep -qx "$l" <<<"$linked" && found="$found $l"; done
check "ldd shows none of the bundled libraries ($bundled)" expect_eq "dynamic bundled libraries" "" "$found"
# glibc's loader (ld-linux-<arch>.so.2) aside
needed=$(objdump -p "$BIN" | awk '$1 == "NEEDED" && $2 !~ /^ld-linux/ {print $2}' | sort | tr '\n' ' ')
check "it needs only glibc and GSSAPI (Debian's libgit2 is built with it; krb5 ships no .a)" \
	expect_eq NEEDED "libc.so.6 libgssapi_krb5.so.2 " "$needed"
check "ldd resolves every library it needs" eval "! ldd '$BIN' | grep -q 'not found'"

# cgi METHOD QUERY [BODY]: one CGI request to the static binary as the pool's user, with only
# the variables a web server sets; sets CODE (its Status: header, 200 without one), BODY.
CGI=$T_DIR/cgi
mkdir -p "$CGI"
chown "$POOL_USER" "$CGI"
cgi() {
	local method=$1 query=$2 body=${3-} vars
	vars=(PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 SERVER_NAME=localhost
	      SERVER_PORT=80 SCRIPT_NAME=/cgi-bin/tfgit.fcgi REMOTE_ADDR=127.0.0.1
	      REQUEST_METHOD="$method" QUERY_STRING="$query" TFGIT_CACHE_DIR="$CGI/cache"
	      TFGIT_DEFAULT_REPOSITORY="$R")
	[ -z "$body" ] || vars+=(CONTENT_LENGTH="${#body}" CONTENT_TYPE=application/json)
	printf %s "$body" | (cd "$CGI" && as_pool env -i "${vars[@]}" "$RUN_BIN") >"$CGI/out" 2>>"$T_DIR/pool.log"
	CGI_EXIT=$?
	# the headers end at the first empty line (CRLF or LF)
	HEAD=$(sed '/^\r\{0,1\}$/q' "$CGI/out" | tr -d '\r')
	BODY=$(awk 'b {print; next} /^\r?$/ {b = 1}' "$CGI/out")
	CODE=$(sed -n 's/^Status: *\([0-9][0-9][0-9]\).*/\1/p' <<<"$HEAD" | head -1)
	[ -n "$CODE" ] || { grep -qi '^Content-Type:' <<<"$HEAD" && CODE=200; }
}

R=$(new_remote static)
Q="state=static.tfstate"
STATE='{"version":4,"serial":1,"lineage":"static"}'
cgi LOCK "$Q" '{"ID":"static-1"}'
check "CGI: LOCK is 200" expect_eq code 200 "$CODE"
check "... the answer starts with its headers (Status: first)" eval "head -1 '$CGI/out' | grep -q '^Status: 200'"
check "... and the process exits 0" expect_eq exit 0 "$CGI_EXIT"
check "... the lock is on the remote" g "$R" rev-parse -q --verify refs/heads/locks/static.tfstate
cgi POST "$Q&ID=static-1" "$STATE"
check "CGI: POST with CONTENT_LENGTH and the body on stdin is 200" expect_eq code 200 "$CODE"
check "... the state is committed on the remote" expect_eq state "$STATE" "$(g "$R" show master:static.tfstate)"
cgi GET "$Q"
check "CGI: GET returns what was written" expect_eq body "$STATE" "$BODY"
check "... as JSON" grep -qi '^Content-Type: application/json' <<<"$HEAD"
cgi UNLOCK "$Q" '{"ID":"static-1"}'
check "CGI: UNLOCK is 200" expect_eq code 200 "$CODE"
check "... the lock branch is gone" eval "! g '$R' rev-parse -q --verify refs/heads/locks/static.tfstate"
check "the cache is the pool user's own, 0700" \
	expect_eq cache "$POOL_USER 700" "$(stat -c '%U %a' "$CGI/cache" 2>&1)"

# The CGI tests (t-cgi) again with this binary: lib.sh takes the binary from $BUILD, so
# BUILD=<build>/static runs them on it; their TAP lines are folded into this file's.
# (t-apache runs its mod_fcgid and CGI cycles with both binaries itself.)
for t in t-cgi; do
	[ -f "$ROOT/tests/$t.sh" ] || continue
	BUILD="${BUILD:-build}/static" bash "$ROOT/tests/$t.sh" >"$T_DIR/$t.tap" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"not ok "*) fail "static binary, $t: ${line#not ok * - }" ;;
		"ok "*" # SKIP "*) line=${line#ok * - }; skip "static binary, $t: ${line% # SKIP *}" "${line##* # SKIP }" ;;
		"ok "*) pass "static binary, $t: ${line#ok * - }" ;;
		"#"*) echo "$line" ;;
		esac
	done <"$T_DIR/$t.tap"
	[ "$rc" -eq 0 ] || grep -q '^not ok ' "$T_DIR/$t.tap" ||
		fail "static binary, $t: runs to its end" "$(tail -n 20 "$T_DIR/$t.tap")"
done
finish
