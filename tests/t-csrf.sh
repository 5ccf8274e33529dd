#!/usr/bin/env bash
# Issue 18, cross-site request forgery: what a page on another site makes its visitor's browser
# send (CORS "simple" requests: no preflight, Content-Type text/plain, a form or none, Origin
# and Sec-Fetch-Site of the other site) is refused for every request that changes something,
# before anything touches git; Terraform's, OpenTofu's and a script's requests still work.
. "$(dirname "$0")/lib.sh"

R=$(new_remote csrf)
stack_up csrf TFGIT_DEFAULT_REPOSITORY="$R"
S=prod.tfstate
STATE='{"version":4,"serial":1,"lineage":"csrf-1","outputs":{},"resources":[]}'
EVIL='{"version":4,"serial":99,"lineage":"evil","outputs":{},"resources":[]}'
refs() { g "$R" for-each-ref --format='%(objectname) %(refname)'; }
# browser METHOD ADDRESS_SUFFIX QUERY BODY [headers...]: a browser's request, no JSON type
# added; sets CODE and BODY (the answer's)
browser() {
	local method=$1 suffix=$2 query=$3 body=$4 out
	shift 4
	out=$(command curl -s -X "$method" -w '\n%{http_code}' ${body:+--data-binary "$body"} "$@" "$URL$suffix?$query")
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}
is_json_error() { jq -e '.error | length > 0' >/dev/null <<<"$BODY"; }
CROSS=(-H 'Origin: http://evil.example' -H 'Sec-Fetch-Site: cross-site' -H 'Sec-Fetch-Mode: no-cors')
TEXT=(-H 'Content-Type: text/plain;charset=UTF-8')

# the owner locks and writes as Terraform does (JSON bodies, Content-MD5)
md5() { printf %s "$1" | openssl md5 -binary | base64; }
LOCK_ID=aaaa-1111
LOCKINFO="{\"ID\":\"$LOCK_ID\",\"Operation\":\"OperationTypeApply\",\"Info\":\"\",\"Who\":\"ci@runner\",\"Version\":\"1.11.4\",\"Created\":\"2026-12-05T10:00:00.000000001Z\",\"Path\":\"\"}"
browser LOCK "" "state=$S" "$LOCKINFO" -H 'Content-Type: application/json' -H "Content-MD5: $(md5 "$LOCKINFO")"
check "Terraform's LOCK (application/json, Content-MD5) is 200" expect_eq code 200 "$CODE"
browser POST "" "ID=$LOCK_ID&state=$S" "$STATE" -H 'Content-Type: application/json' -H "Content-MD5: $(md5 "$STATE")"
check "Terraform's POST is 200" expect_eq code 200 "$CODE"
BEFORE=$(refs)
log_mark

# 1. the issue's two requests: fetch(url, {method: "POST", mode: "no-cors", body})
browser POST /lock "state=other.tfstate" '{"ID":"evil-1"}' "${CROSS[@]}" "${TEXT[@]}"
check "1. a cross-site no-cors POST to …/lock is refused (403)" expect_eq code 403 "$CODE"
check "... with a JSON error body" is_json_error
browser POST "" "ID=$LOCK_ID&state=$S" "$EVIL" "${CROSS[@]}" "${TEXT[@]}"
check "1. a cross-site no-cors POST of a state under the holder's ID is refused (403)" expect_eq code 403 "$CODE"
check "... with a JSON error body" is_json_error
check "1. no ref changed: no lock taken, the state not replaced" expect_eq refs "$BEFORE" "$(refs)"
check "1. the state is still the owner's" expect_eq state "$STATE" "$(g "$R" show "master:$S")"

# 2. each sign of a browser on another site, alone, on every method and both addresses
for m in "POST /lock" "PUT /lock" "LOCK /lock" "LOCK " "POST " "PUT "; do
	set -- $m
	body='{"ID":"evil-2"}'
	[ "${2:-}" = "" ] && [ "$1" != LOCK ] && body=$EVIL
	q="state=$S&ID=$LOCK_ID"
	browser "$1" "${2:-}" "$q" "$body" -H 'Content-Type: application/json' -H 'Origin: http://evil.example'
	check "2. $1 ${2:-/} with another site's Origin is 403" expect_eq code 403 "$CODE"
	browser "$1" "${2:-}" "$q" "$body" -H 'Content-Type: application/json' -H 'Sec-Fetch-Site: cross-site'
	check "2. $1 ${2:-/} with Sec-Fetch-Site: cross-site is 403" expect_eq code 403 "$CODE"
	browser "$1" "${2:-}" "$q" "$body" -H 'Content-Type: application/json' -H 'Sec-Fetch-Site: same-site'
	check "2. $1 ${2:-/} with Sec-Fetch-Site: same-site is 403" expect_eq code 403 "$CODE"
	browser "$1" "${2:-}" "$q" "$body" -H 'Content-Type: application/json' -H 'Origin: null'
	check "2. $1 ${2:-/} with Origin: null (a sandboxed page) is 403" expect_eq code 403 "$CODE"
	for ct in 'text/plain' 'application/x-www-form-urlencoded' 'multipart/form-data; boundary=x'; do
		browser "$1" "${2:-}" "$q" "$body" -H "Content-Type: $ct"
		check "2. $1 ${2:-/} with Content-Type $ct is 415" expect_eq code 415 "$CODE"
	done
	browser "$1" "${2:-}" "$q" "$body" -H 'Content-Type:'
	check "2. $1 ${2:-/} with a body and no Content-Type (a Blob's fetch) is 415" expect_eq code 415 "$CODE"
	check "... with a JSON error body" is_json_error
done
for m in "DELETE " "UNLOCK " "UNLOCK /lock" "DELETE /lock"; do
	set -- $m
	browser "$1" "${2:-}" "state=$S&ID=$LOCK_ID" "" -H 'Origin: http://evil.example'
	check "2. $1 ${2:-/} (no body) with another site's Origin is 403" expect_eq code 403 "$CODE"
	browser "$1" "${2:-}" "state=$S&ID=$LOCK_ID" "" -H 'Sec-Fetch-Site: cross-site'
	check "2. $1 ${2:-/} (no body) with Sec-Fetch-Site: cross-site is 403" expect_eq code 403 "$CODE"
	browser "$1" "${2:-}" "state=$S" "{\"ID\":\"$LOCK_ID\"}" -H 'Content-Type: text/plain'
	check "2. $1 ${2:-/} with a text/plain body is 415" expect_eq code 415 "$CODE"
done
# another scheme or port of this very host is another origin
PORT=${URL#http://127.0.0.1:}; PORT=${PORT%%/*}
browser LOCK /lock "state=x.tfstate" '{"ID":"evil-3"}' -H 'Content-Type: application/json' -H "Origin: https://127.0.0.1:$PORT"
check "2. an Origin of this host over another scheme is 403" expect_eq code 403 "$CODE"
browser LOCK /lock "state=x.tfstate" '{"ID":"evil-3"}' -H 'Content-Type: application/json' -H "Origin: http://127.0.0.1:$((PORT + 1))"
check "2. an Origin of this host on another port is 403" expect_eq code 403 "$CODE"
# two copies of a header the check reads: which one would it read? Neither.
for hdr in "Origin: http://127.0.0.1:$PORT|Origin: http://evil.example" "Sec-Fetch-Site: none|Sec-Fetch-Site: cross-site" \
	"Content-Type: application/json|Content-Type: text/plain"; do
	browser LOCK /lock "state=x.tfstate" '{"ID":"evil-5"}' -H "${hdr%%|*}" -H "${hdr#*|}" \
		$([[ $hdr == Content-Type* ]] || echo "-H Content-Type:application/json")
	check "2. ${hdr%%:*} sent twice is 400" expect_eq code 400 "$CODE"
done
# DNS rebinding: another site's name pointed at 127.0.0.1 makes its page "same-origin"
out=$(command curl -s -o "$T_DIR/rebound" -w '%{http_code}' -X LOCK -H "Host: rebound.example:$PORT" \
	-H 'Content-Type: application/json' -H "Origin: http://rebound.example:$PORT" -H 'Sec-Fetch-Site: same-origin' \
	--data '{"ID":"evil-4"}' "$URL/lock?state=x.tfstate")
check "2. make run's nginx refuses another Host (DNS rebinding): 421 JSON" \
	eval "[ '$out' = 421 ] && jq -e .error '$T_DIR/rebound' >/dev/null"
check "2. nothing of it changed a ref: the lock and the state are the owner's" expect_eq refs "$BEFORE" "$(refs)"
check "2. every refused request was answered before git: no round trip in their log lines" \
	eval "! since_mark | grep -E ' -> (403|415) ' | grep -qv ' round_trips=0 '"
check "... and each was logged" eval "[ \$(since_mark | grep -cE ' -> (403|415) ') -ge 60 ]"

# 3. what must keep working: a page of this very origin, curl as the README says, OpenTofu
browser LOCK /lock "state=same.tfstate" '{"ID":"same-1"}' -H 'Content-Type: application/json' \
	-H "Origin: http://127.0.0.1:$PORT" -H 'Sec-Fetch-Site: same-origin'
check "3. a same-origin request (Origin is this server, Sec-Fetch-Site: same-origin) is served" expect_eq code 200 "$CODE"
browser UNLOCK /lock "state=same.tfstate" '{"ID":"same-1"}' -H 'Content-Type: application/json' -H 'Sec-Fetch-Site: none'
check "3. Sec-Fetch-Site: none (typed by the user) is served" expect_eq code 200 "$CODE"
out=$(command curl -s -o /dev/null -w '%{http_code}' -X LOCK -H 'Content-Type: application/json' \
	--data '{"ID":"script-1"}' "$URL?state=script.tfstate")
check "3. curl -H 'Content-Type: application/json' --data … locks (the README's script)" expect_eq code 200 "$out"
out=$(command curl -s -o /dev/null -w '%{http_code}' -X UNLOCK -H 'Content-Type: application/json; charset=utf-8' \
	--data '{"ID":"script-1"}' "$URL?state=script.tfstate")
check "3. ... and unlocks (a charset parameter allowed)" expect_eq code 200 "$out"
command curl -s -o /dev/null -X LOCK -H 'Content-Type: application/json' --data '{"ID":"script-1"}' "$URL?state=script.tfstate"
out=$(command curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL?state=script.tfstate&ID=script-1")
check "3. a DELETE without a body needs no Content-Type" expect_eq code 200 "$out"
out=$(command curl -s -o /dev/null -w '%{http_code}' --data '{"ID":"script-2"}' -X LOCK "$URL?state=script.tfstate")
check "3. curl --data without the header (form-urlencoded) is 415" expect_eq code 415 "$out"
# OpenTofu's force-unlock: lock JSON with only the ID the user typed
TOFU="{\"ID\":\"$LOCK_ID\",\"Operation\":\"\",\"Info\":\"\",\"Who\":\"\",\"Version\":\"\",\"Created\":\"0001-01-01T00:00:00Z\",\"Path\":\"\"}"
browser UNLOCK "" "state=$S" "$TOFU" -H 'Content-Type: application/json' -H "Content-MD5: $(md5 "$TOFU")"
check "3. OpenTofu's force-unlock (lock JSON, application/json) is 200" expect_eq code 200 "$CODE"
check "... and removed the lock" eval "! g '$R' rev-parse -q --verify 'refs/heads/locks/$S' >/dev/null"
# Terraform's force-unlock: UNLOCK with an empty body sent as application/json
browser LOCK "" "state=$S" "$LOCKINFO" -H 'Content-Type: application/json'
out=$(command curl -s -o /dev/null -w '%{http_code}' -X UNLOCK -H 'Content-Type: application/json' \
	-H 'Transfer-Encoding: chunked' --data-binary @/dev/null "$URL?state=$S")
check "3. Terraform's force-unlock (empty body, application/json, chunked) is 200" expect_eq code 200 "$out"
check "... and removed the lock" eval "! g '$R' rev-parse -q --verify 'refs/heads/locks/$S' >/dev/null"
tf_over "nginx with the cross-site defence" "$URL?ref=master" csrf-applied "$R" master

finish
