#!/usr/bin/env bash
# Logs, metrics and health: a request id on every answer and in its log line; the JSON log;
# the counters at …/metrics adding up across a pool's workers, across replaced workers and
# across process models sharing the cache directory; …/health without any remote traffic,
# …/health?deep=1 bounded by TFGIT_REMOTE_TIMEOUT.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

ST='{"version":4,"serial":1,"lineage":"m"}'

# hreq METHOD QUERY [curl args...]: req, and the answer's X-Request-Id in RID.
hreq() {
	local method=$1 query=$2 out
	shift 2
	out=$(curl -s -D "$T_DIR/headers" -X "$method" -w '\n%{http_code}' "$@" "$URL?$query")
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
	RID=$(sed -n 's/^X-Request-Id: \([0-9a-f]*\)\r$/\1/Ip' "$T_DIR/headers")
}

# scrape: the counters, into $T_DIR/metrics; metric 'NAME{LABELS}': its value there (0 if absent).
scrape() { curl -s -o "$T_DIR/metrics" -w '%{http_code}' "$URL/metrics"; }
metric() { awk -v k="$1" '$1 == k {v = $2} END {print v + 0}' "$T_DIR/metrics"; }

# --- request ids, and the text log line -----------------------------------------------------
R=$(new_remote metrics)
ALLOW="$T_DIR/remotes/*.git git://127.0.0.1:*/*.git"
stack_up m TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_REQUIRE_LOCK=0 \
	FCGI_WORKERS=3 TFGIT_MAX_REQUESTS=2
MCACHE=$T_DIR/stack-m/cache
ids=()
log_mark
hreq POST "state=a.tfstate" --data "$ST"
check "X-Request-Id on a 200: 16 hex digits" eval "[ '$CODE' = 200 ] && [[ '$RID' =~ ^[0-9a-f]{16}$ ]]"
ids+=("$RID")
hreq GET "state=a.tfstate"
ids+=("$RID")
check "... the request's log line carries it, with its fields in their order" \
	grep -q "GET state=a.tfstate ref=master repo=$R user=- addr=127.0.0.1 -> 200 in [0-9.]* ms id=$RID round_trips=[0-9]* remote_ms=[0-9.]*" \
	<<<"$(since_mark)"
hreq GET "state=none.tfstate"
check "X-Request-Id on a 204" eval "[ '$CODE' = 204 ] && [ -n '$RID' ]"
ids+=("$RID")
hreq GET "state=../x"
check "X-Request-Id on a 400" eval "[ '$CODE' = 400 ] && [ -n '$RID' ]"
ids+=("$RID")
check "... in its log line too" grep -q "GET state=../x .* -> 400 in [0-9.]* ms id=$RID " <<<"$(since_mark)"
hreq PATCH "state=a.tfstate"
check "X-Request-Id on a 405" eval "[ '$CODE' = 405 ] && [ -n '$RID' ]"
ids+=("$RID")
hreq GET "repository=git://127.0.0.1:1/none.git&state=a.tfstate"
check "X-Request-Id on a 5xx (a repository that cannot be reached)" eval "[[ '$CODE' = 5* ]] && [ -n '$RID' ]"
ids+=("$RID")
check "... in its log line too" grep -q " -> $CODE in [0-9.]* ms id=$RID " <<<"$(since_mark)"
hreq GET ""
ids+=("$RID")
check "the ids differ from request to request (${#ids[@]} answers)" \
	expect_eq distinct "${#ids[@]}" "$(printf '%s\n' "${ids[@]}" | grep . | sort -u | wc -l)"

# --- the counters: every kind of request, at once, over three workers replaced every 2 ------
check "/metrics answers from 127.0.0.1" expect_eq code 200 "$(scrape)"
check "... in Prometheus' text format" \
	eval "curl -s -D - -o /dev/null '$URL/metrics' | grep -qi '^Content-Type: text/plain; version=0.0.4'"
before=$(metric tfgit_request_duration_seconds_count)
b_post=$(metric 'tfgit_requests_total{method="POST",status="200"}')
b_get=$(metric 'tfgit_requests_total{method="GET",status="200"}')
b_lock=$(metric 'tfgit_requests_total{method="LOCK",status="200"}')
b_409=$(metric 'tfgit_requests_total{method="LOCK",status="409"}')
b_conf=$(metric tfgit_lock_conflicts_total)
N=8
log_mark
at_once POST "state=s%i.tfstate" '{"version":4,"serial":1,"lineage":"s%i"}' $N "$URL"
check "$N POSTs at once: all 200" expect_eq ok $N "$AT_ONCE_200"
at_once GET "state=s%i.tfstate" "" $N "$URL"
check "$N GETs at once: all 200" expect_eq ok $N "$AT_ONCE_200"
req LOCK "state=l.tfstate" --data '{"ID":"first","Who":"alice@ci"}'
at_once LOCK "state=l.tfstate" '{"ID":"other-%i","Who":"bob@ci"}' 5 "$URL"
check "5 LOCKs of a held lock at once: all 409" expect_eq conflicts 5 "$AT_ONCE_409"
sent=$((N + N + 1 + 5))
scrape >/dev/null
check "POSTs counted exactly, across the workers" expect_eq POST $N $(($(metric 'tfgit_requests_total{method="POST",status="200"}') - b_post))
check "GETs counted exactly" expect_eq GET $N $(($(metric 'tfgit_requests_total{method="GET",status="200"}') - b_get))
check "LOCK 200 and 409 counted by status" expect_eq LOCK "1 5" \
	"$(($(metric 'tfgit_requests_total{method="LOCK",status="200"}') - b_lock)) $(($(metric 'tfgit_requests_total{method="LOCK",status="409"}') - b_409))"
check "lock conflicts counted" expect_eq conflicts 5 $(($(metric tfgit_lock_conflicts_total) - b_conf))
check "the histogram's _count grew by the requests sent" expect_eq count $sent \
	$(($(metric tfgit_request_duration_seconds_count) - before))
check "... its buckets never decrease, and +Inf is _count" awk '
	/^tfgit_request_duration_seconds_bucket/ { if ($2 < last) bad = 1; last = $2; inf = $2 }
	/^tfgit_request_duration_seconds_count/ { count = $2 }
	END { exit !(!bad && inf == count && count > 0) }' "$T_DIR/metrics"
check "... a _sum in seconds" grep -q '^tfgit_request_duration_seconds_sum [0-9]*\.[0-9]*$' "$T_DIR/metrics"
check "every counter is there (round trips, remote time, retries, clones, evictions)" eval "
	for m in tfgit_remote_round_trips_total tfgit_remote_seconds_total tfgit_cas_retries_total \
		tfgit_cache_clones_total tfgit_cache_evictions_total tfgit_lock_conflicts_total; do
		grep -q \"^# TYPE \$m counter\" '$T_DIR/metrics' && grep -q \"^\$m [0-9.]*\$\" '$T_DIR/metrics' || exit 1
	done"
check "workers were replaced meanwhile (TFGIT_MAX_REQUESTS=2), the counts still add up" \
	eval "[ \$(since_mark | grep -c 'served its TFGIT_MAX_REQUESTS') -ge 3 ]"
check "... the requests were served by more than three processes" \
	eval "[ \$(since_mark | sed -n 's/^tfgit\[\([0-9]*\)\]: .* -> [0-9]* in .*/\1/p' | sort -u | wc -l) -gt 3 ]"
check "the counters' file: 0600, the pool's, a regular file in the cache directory" \
	eval "[ \"\$(stat -c '%a %U %F' '$MCACHE/.metrics-v1')\" = '600 $POOL_USER regular file' ]"
check "/metrics and /health are not counted as requests" eval "
	a=\$(metric tfgit_request_duration_seconds_count); scrape >/dev/null; curl -s -o /dev/null '$URL/health'
	scrape >/dev/null; [ \"\$(metric tfgit_request_duration_seconds_count)\" = \"\$a\" ]"
check "a cache entry made is counted (tfgit_cache_clones_total)" eval "[ \$(metric tfgit_cache_clones_total) -ge 1 ]"

# --- another process model on the same cache directory adds to the same counters --------------
cgi() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid="$POOL_USER" --regid="$(id -g "$POOL_USER")" --clear-groups -- \
			env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 "$@" "$TFGIT_BIN" >"$T_DIR/cgi.out" 2>"$T_DIR/cgi.err" </dev/null
	else
		env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 "$@" "$TFGIT_BIN" >"$T_DIR/cgi.out" 2>"$T_DIR/cgi.err" </dev/null
	fi
}
scrape >/dev/null
b_204=$(metric 'tfgit_requests_total{method="GET",status="204"}')
for i in 1 2 3; do
	cgi REQUEST_METHOD=GET QUERY_STRING="state=cgi$i.tfstate" TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$MCACHE"
done
check "CGI runs answer with an X-Request-Id" grep -q '^X-Request-Id: [0-9a-f]\{16\}' "$T_DIR/cgi.out"
scrape >/dev/null
check "3 CGI runs on the pool's cache directory show in the pool's /metrics" \
	expect_eq GET-204 3 $(($(metric 'tfgit_requests_total{method="GET",status="204"}') - b_204))
cgi REQUEST_METHOD=GET PATH_INFO=/metrics TFGIT_CACHE_DIR="$MCACHE"
check "... and CGI's own /metrics reads the same counters" \
	grep -q "^tfgit_requests_total{method=\"GET\",status=\"204\"} $(metric 'tfgit_requests_total{method="GET",status="204"}')" "$T_DIR/cgi.out"

# --- health ----------------------------------------------------------------------------------
hreq GET "" -o /dev/null
curl -s -o "$T_DIR/health" -w '%{http_code}' "$URL/health" >"$T_DIR/health.code"
check "/health: 200" expect_eq code 200 "$(cat "$T_DIR/health.code")"
check "... JSON: status ok, the pool's model and size, a version" \
	jq -e '.status == "ok" and .model == "pool" and .workers == 3 and (.version | length > 0) and .counters == "ok"' "$T_DIR/health"
curl -s -o "$T_DIR/health" -w '%{http_code}' "$URL/health?deep=1" >"$T_DIR/health.code"
check "/health?deep=1 with a reachable default repository: 200" expect_eq code 200 "$(cat "$T_DIR/health.code")"
check "... saying the repository answered" jq -e '.status == "ok" and .repository.branch_exists == true' "$T_DIR/health"
check "/health refuses POST (405)" expect_eq code 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/health")"

blackhole
stack_up hole TFGIT_DEFAULT_REPOSITORY="git://127.0.0.1:$HOLE_PORT/hang.git" TFGIT_REMOTE_TIMEOUT=2
start=$(date +%s%N)
code=$(curl -s -o "$T_DIR/health" -w '%{http_code}' --max-time 10 "$URL/health")
ms=$((($(date +%s%N) - start) / 1000000))
check "/health with a default repository that never answers: 200 at once (${ms} ms)" \
	eval "[ '$code' = 200 ] && [ $ms -lt 1000 ]"
check "... no connection to the remote" expect_eq connections 0 "$(hole_accepted)"
start=$SECONDS
code=$(curl -s -o "$T_DIR/health" -w '%{http_code}' --max-time 20 "$URL/health?deep=1")
check "/health?deep=1: 503 within TFGIT_REMOTE_TIMEOUT (2 s, answered in $((SECONDS - start)) s)" \
	eval "[ '$code' = 503 ] && [ $((SECONDS - start)) -le 4 ]"
check "... JSON saying why" jq -e '.status == "unavailable" and (.repository.error | test("TFGIT_REMOTE_TIMEOUT|did not"))' "$T_DIR/health"
check "... after asking the remote" eval "[ \$(hole_accepted) -ge 1 ]"

# --- the JSON log ----------------------------------------------------------------------------
git_http_server gh plain
htpasswd_line ci s3cret-pass >>"$T_DIR/gh/htpasswd"
bare_repo "$GIT_DIR_ROOT/j.git"
HTTP_R="http://127.0.0.1:$GIT_PORT/j.git"
R2=$(new_remote metrics2)
stack_up json TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_LOG_FORMAT=json TFGIT_REQUIRE_LOCK=0 TFGIT_CACHE_MAX=1 \
	TFGIT_ALLOWED_REPOS="$ALLOW http://127.0.0.1:*/*.git" GIT_USERNAME=ci GIT_PASSWORD=s3cret-pass
log_mark
hreq POST "state=j.tfstate" --data "$ST"
post_id=$RID
hreq LOCK "state=j.tfstate" --data '{"ID":"holder-1","Who":"alice@ci"}'
hreq LOCK "state=j.tfstate" --data '{"ID":"holder-2","Who":"bob@ci"}'
conflict_id=$RID
hreq GET "state=../x"
hreq POST "repository=$HTTP_R&state=h.tfstate" --data "$ST"
http_id=$RID
hreq GET "repository=$R2&state=e.tfstate"
sent=6
since_mark | grep -v '^tfgit\[' >"$T_DIR/json.lines"
check "TFGIT_LOG_FORMAT=json: one line per request, each one JSON object" eval "
	[ \$(wc -l <'$T_DIR/json.lines') -eq $sent ] && jq -e -s 'length == $sent and all(type == \"object\")' '$T_DIR/json.lines' >/dev/null"
check "... no text request line" eval "! since_mark | grep -q ' -> [0-9]* in '"
check "... every line carries the fields" jq -e -s 'all(has("id") and has("method") and has("state") and
	has("ref") and has("repo") and has("user") and has("addr") and has("status") and has("ms") and
	has("round_trips") and has("remote_ms") and has("time"))' "$T_DIR/json.lines"
# one_decimal FILE N: the N JSON lines in FILE write "ms" and "remote_ms" with at most one decimal
one_decimal() {
	local fields
	fields=$(grep -oE '"(remote_)?ms":[^,}]*' "$1")
	[ "$(wc -l <<<"$fields")" -eq $((2 * $2)) ] || { echo "fields: $fields"; return 1; }
	! grep -vE '^"(remote_)?ms":[0-9]+(\.[0-9])?$' <<<"$fields"
}
check "... ms and remote_ms with at most one decimal in the raw line (not 9.0999999999999996)" \
	one_decimal "$T_DIR/json.lines" "$sent"
check "... the POST's line: its id, method, state, status, address" jq -e -s --arg id "$post_id" \
	'map(select(.id == $id)) | length == 1 and .[0].method == "POST" and .[0].state == "j.tfstate" and
	 .[0].status == 200 and .[0].addr == "127.0.0.1" and .[0].user == null' "$T_DIR/json.lines"
check "... a conflict's line names the holder (ID and Who)" jq -e -s --arg id "$conflict_id" \
	'map(select(.id == $id))[0] | .status == 409 and .holder.id == "holder-1" and .holder.who == "alice@ci"' "$T_DIR/json.lines"
check "... no secret in any line" eval "! grep -q s3cret '$T_DIR/json.lines'"
check "... a smart-HTTP remote's round trips and time are counted" jq -e -s --arg id "$http_id" \
	'map(select(.id == $id))[0] | .status == 200 and .round_trips >= 2 and .remote_ms > 0' "$T_DIR/json.lines"
check "... a local remote has none" jq -e -s --arg id "$post_id" 'map(select(.id == $id))[0].round_trips == 0' "$T_DIR/json.lines"
scrape >/dev/null
check "round trips in /metrics" eval "[ \$(metric tfgit_remote_round_trips_total) -ge 2 ]"
check "an eviction (TFGIT_CACHE_MAX=1, three repositories) is counted" eval "[ \$(metric tfgit_cache_evictions_total) -ge 1 ]"

# --- the shipped configurations restrict /metrics ---------------------------------------------
check "nginx: /tfgit/metrics is its own location, loopback only" \
	eval "sed -n '/location = \/tfgit\/metrics/,/}/p' '$ROOT/nginx/tfgit-location.conf' | tr -s ' ' |
		grep -q 'allow 127.0.0.1;' && sed -n '/location = \/tfgit\/metrics/,/}/p' '$ROOT/nginx/tfgit-location.conf' | grep -q 'deny all;'"
check "Apache: /tfgit/metrics requires a loopback address" eval "
	for f in tfgit-fcgid.conf tfgit-cgi.conf; do
		sed -n '/<Location \/tfgit\/metrics>/,/<\/Location>/p' '$ROOT/apache/'\$f | grep -q 'Require ip 127.0.0.1' || exit 1
	done; grep -q 'Require ip 127.0.0.1' '$ROOT/apache/htaccess'"

finish
