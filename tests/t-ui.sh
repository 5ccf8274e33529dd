#!/usr/bin/env bash
# Issue 12, the web view: …/ui/ (a branch's states), …/ui/state (resources, outputs' names,
# versions with their changes), …/ui/version (a download), loaded in headless Chromium
# (tests/tools/browse: DevTools over a pipe) against real nginx and a repository written by real
# Terraform applies. Pages load without a console error, with and without JavaScript; they list
# what the repository holds, show a held lock's holder and a version's change by resource,
# never a secret's value, and a state path holding <script> as text. The same ACL and
# allowlists as the API; nothing in them changes the repository. Screenshots of each page are
# kept in build/screenshots (make screenshots copies them next to the README's).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

BROWSE=$BUILD_DIR/tools/browse
SHOTS=$BUILD_DIR/screenshots
SECRET_OUT=S3cr3t-output-VALUE-8f2a91
SECRET_ATTR=hidden-attribute-value-77c3
tip() { g "$R" rev-parse -q --verify "refs/heads/$1" 2>/dev/null || echo none; }
is_json_error() { grep -q '"error" *:' <<<"$BODY"; }
page() { curl -s -D "$T_DIR/headers" -o "$T_DIR/page" -w '%{http_code}' "$URL/ui/$1"; }
st() { printf '{"version":4,"serial":%s,"lineage":"ui-%s","terraform_version":"1.11.0","outputs":{},"resources":[]}' "$1" "$2"; }
# post_state STATE SERIAL [WHO]: one version of STATE written under a lock, as Terraform does
post_state() {
	curl -s -o /dev/null -X LOCK --data "{\"ID\":\"p-1\",\"Who\":\"${3:-seed@ci}\"}" "$URL?state=$1" &&
		curl -s -o /dev/null -X POST --data "$(st "$2" "${1//[^a-z]/}")" "$URL?state=$1&ID=p-1" &&
		curl -s -o /dev/null -X UNLOCK --data '{"ID":"p-1"}' "$URL?state=$1"
}

R=$(new_remote ui)
stack_up ui TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_FORCE_UNLOCK=0
OPEN_URL=$URL
APP=prod/app.tfstate

# --- a repository written by Terraform: two applies of one configuration, a second state ----
if command -v terraform >/dev/null; then
	W=$T_DIR/tf-app
	tf_project "$W" "$URL?type=git&ref=master&state=$APP" "retry_max = 0"
	cat >"$W/main.tf" <<TF
variable "size" {
  default = "small"
}
resource "terraform_data" "network" {
  input = "net-10.0.0.0/16"
}
resource "terraform_data" "server" {
  count = 2
  input = { size = var.size, secret = "$SECRET_ATTR" }
}
output "db_password" {
  value     = "$SECRET_OUT"
  sensitive = true
}
output "network" {
  value = terraform_data.network.output
}
TF
	tfrun() { (cd "$W" && terraform "$@" -no-color -input=false) >"$T_DIR/tf.out" 2>&1; }
	check "terraform init and a first apply" tfrun init
	check "... apply" tfrun apply -auto-approve
	check "a second apply changes the servers' size" tfrun apply -auto-approve -var size=large
	W2=$T_DIR/tf-dns
	tf_project "$W2" "$URL?type=git&ref=master&state=envs/dns.tfstate" "retry_max = 0"
	check "terraform writes a second state" tf_init_apply "$W2" "dns-zone"
	HAVE_TF=1
else
	skip "terraform init and a first apply" "terraform is not on the PATH"
	# the same repository shape without Terraform: the browser checks still run
	post_state "$APP" 1
	post_state "$APP" 2
	post_state envs/dns.tfstate 1
	HAVE_TF=0
fi
check "the secret output and attribute are in the stored state (so their absence below means something)" \
	eval "[ $HAVE_TF = 0 ] || { g '$R' show 'master:$APP' | grep -q '$SECRET_OUT' && g '$R' show 'master:$APP' | grep -q '$SECRET_ATTR'; }"

# a state whose path holds markup, and one with more versions than a page shows
XSS='xss/<script>alert(1)</script>.tfstate'
XSS_Q=$(jq -rn --arg s "$XSS" '$s|@uri')
check "a state path holding <script> is written" post_state "$XSS_Q" 1
for i in $(seq 1 23); do post_state envs/many.tfstate "$i" || break; done
check "a state with 23 versions is written" expect_eq serial 23 "$(g "$R" show master:envs/many.tfstate | jq .serial)"
# another pipeline holds the lock of the app's state
HOLDER_ID=9d1c5e2a-held-lock-id-0001
curl -s -o /dev/null -X LOCK --data "{\"ID\":\"$HOLDER_ID\",\"Operation\":\"OperationTypeApply\",\"Who\":\"alice@pipeline-42\",\"Created\":\"2026-11-29T10:00:00Z\"}" "$URL?state=$APP"
check "the app's state is locked by another pipeline" expect_eq locked yes "$([ "$(tip "locks/$APP")" != none ] && echo yes)"
REFS_BEFORE=$(g "$R" for-each-ref --format='%(refname) %(objectname)')

# --- the pages over HTTP ---------------------------------------------------------------------
code=$(page "")
check "…/ui/ is 200 HTML" eval "[ $code = 200 ] && grep -qi '^content-type: text/html; charset=utf-8' '$T_DIR/headers'"
check "... with a Content-Security-Policy that allows no script and no other origin" \
	grep -qi "^content-security-policy: default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'" "$T_DIR/headers"
check "... nosniff, no framing, no referrer, not cached" \
	eval "grep -qi '^x-content-type-options: nosniff' '$T_DIR/headers' && grep -qi '^x-frame-options: deny' '$T_DIR/headers' && grep -qi '^referrer-policy: no-referrer' '$T_DIR/headers' && grep -qi '^cache-control: no-store' '$T_DIR/headers'"
check "... and no script element at all" eval "! grep -qi '<script' '$T_DIR/page'"
held=$(g "$R" ls-tree -r --name-only master | sort)
listed=$(grep -o '<tr><td class="mono"><a href="state?state=[^"]*">' "$T_DIR/page" | sed 's/.*state=\([^"]*\)">/\1/' |
	while read -r s; do printf '%b\n' "${s//%/\\x}"; done | sort)
check "the states table lists exactly the state files the branch holds" expect_eq states "$held" "$listed"
check "the Lock-ID column is the last change's: grouped under Last change, apart from the lock held now" \
	eval "grep -q '<th colspan=\"3\" class=\"group\"><a href=\"[^\"]*\">Last change</a></th><th rowspan=\"2\">Lock now</th></tr>' '$T_DIR/page' &&
		grep -q '^<tr><th>When</th><th>Who</th><th title=\"the lock the last change was written under\">its Lock-ID</th></tr>' '$T_DIR/page'"
check "... an unlocked state's row: its last change's Lock-ID there, and unlocked now" \
	eval "grep -F '>envs/many.tfstate</a>' '$T_DIR/page' | grep -q '<td class=\"mono id\">p-1</td><td><span class=\"badge free\">unlocked</span>'"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/ui?ref=master")
check "…/ui redirects to …/ui/ (relative, query kept)" expect_eq redirect "301 $URL/ui/?ref=master" "$code"
code=$(page "style.css")
check "the stylesheet is served as CSS" eval "[ $code = 200 ] && grep -qi '^content-type: text/css' '$T_DIR/headers' && grep -q 'table' '$T_DIR/page'"

code=$(page "?sort=changed")
first=$(grep -o '<tr><td class="mono"><a href="state?state=[^"]*"' "$T_DIR/page" | head -1)
check "sort=changed puts the last changed state first (the 23-version one)" grep -q 'envs/many.tfstate' <<<"$first"
code=$(page "?sort=size")
check "an unknown sort is 400 JSON" eval "[ $code = 400 ] && grep -q '\"error\"' '$T_DIR/page'"
code=$(page "state?state=$APP")
check "the state page is 200 and lists its resources with their instances" \
	eval "[ $code = 200 ] && grep -q '<td class=\"mono\">terraform_data.server</td>' '$T_DIR/page' && grep -q '<td class=\"num\">2</td>' '$T_DIR/page'"
check "... its outputs by name, the sensitive one marked" \
	eval "grep -q '<code>db_password</code> <span class=\"muted\">(sensitive)</span>' '$T_DIR/page' || [ $HAVE_TF = 0 ]"
check "... and never a value of an output or attribute" eval "! grep -q -e '$SECRET_OUT' -e '$SECRET_ATTR' -e 'net-10.0.0.0' '$T_DIR/page'"
check "... the last version names the changed resource and attribute" \
	eval "[ $HAVE_TF = 0 ] || grep -q '~ terraform_data.server\[0\] <span class=\"muted\">(input,output)</span>' '$T_DIR/page'"
check "... the holder of the lock, not its ID (TFGIT_FORCE_UNLOCK=0)" \
	eval "grep -q 'locked by alice@pipeline-42 · OperationTypeApply' '$T_DIR/page' && ! grep -q '$HOLDER_ID' '$T_DIR/page'"
first_commit=$(g "$R" log --format=%H --reverse master -- "$APP" | head -1)
code=$(curl -s -D "$T_DIR/headers" -o "$T_DIR/download" -w '%{http_code}' "$URL/ui/version?state=$APP&version=$first_commit")
check "a version's download is its JSON as stored, as an attachment" \
	eval "[ $code = 200 ] && cmp -s '$T_DIR/download' <(g '$R' show '$first_commit:$APP') && grep -qi '^content-disposition: attachment; filename=\"${first_commit:0:7}-app.tfstate.json\"' '$T_DIR/headers'"
code=$(page "state?state=envs/many.tfstate")
check "a state's first page shows 20 versions and a link to older ones" \
	eval "[ \$(grep -c '^<tr><td class=\"mono\">[0-9a-f]\{12\}</td>' '$T_DIR/page') = 20 ] && grep -q 'page=2\">older versions' '$T_DIR/page'"
code=$(page "state?state=envs/many.tfstate&page=2")
check "... the second page the 3 oldest and a link to newer ones" \
	eval "[ \$(grep -c '^<tr><td class=\"mono\">[0-9a-f]\{12\}</td>' '$T_DIR/page') = 3 ] && grep -q 'newer versions' '$T_DIR/page'"
code=$(page "state?state=envs/many.tfstate&page=0")
check "page=0 is 400 JSON" eval "[ $code = 400 ] && grep -q '\"error\"' '$T_DIR/page'"
code=$(page "state?state=envs/none.tfstate")
check "a state the branch never held is 404 JSON" eval "[ $code = 404 ] && grep -q '\"error\"' '$T_DIR/page'"
code=$(page "state?state=../x")
check "a bad state path is 400 JSON, before git" eval "[ $code = 400 ] && grep -q '\"error\"' '$T_DIR/page'"
# a crafted state: 100,000 empty instances (300 KB), twice; and instance keys of every kind
amp() { awk -v s="$1" 'BEGIN { printf "{\"version\":4,\"serial\":%d,\"lineage\":\"amp\",\"resources\":[{\"mode\":\"managed\",\"type\":\"t\",\"name\":\"n\",\"instances\":[", s
	for (i = 0; i < 100000; i++) printf "%s{}", i ? "," : ""
	printf "]},{\"mode\":\"managed\",\"type\":\"k\",\"name\":\"keys\",\"instances\":[{\"index_key\":\"a\\\"b\"},{\"index_key\":7},{\"index_key\":{\"secret\":\"IDX-SECRET-1\"}},{\"index_key\":[\"IDX-SECRET-2\"]}]}]}" }'; }
for i in 1 2; do
	curl -s -o /dev/null -X LOCK --data '{"ID":"amp"}' "$URL?state=amp.tfstate"
	amp $i | curl -s -o /dev/null -X POST --data-binary @- "$URL?state=amp.tfstate&ID=amp"
	curl -s -o /dev/null -X UNLOCK --data '{"ID":"amp"}' "$URL?state=amp.tfstate"
done
REFS_BEFORE=$(g "$R" for-each-ref --format="%(refname) %(objectname)")
code=$(page "state?state=amp.tfstate")
peak=0
for w in $(pgrep -P "$LAST_POOL_PID"); do
	m=$(awk '/VmHWM/ {print $2}' "/proc/$w/status" 2>/dev/null)
	[ "${m:-0}" -gt "$peak" ] && peak=$m
done
# under ASan or valgrind the checkers' own memory is in the figure: the bound is theirs
bound=102400
[[ $BUILD_DIR == *asan* || -n ${TFGIT_WRAPPER:-} ]] && bound=4194304
check "a state of 100,000 empty instances (300 KB) in two versions: its page is 200, each worker's peak under $((bound / 1024)) MB (${peak} kB)" \
	eval "[ $code = 200 ] && [ $peak -lt $bound ] && grep -q '<td class=\"num\">100000</td>' '$T_DIR/page'"
cp "$T_DIR/page" "$T_DIR/amp.html"
check "... instance keys as Terraform prints them; a key that is an object or array is not shown" \
	eval "grep -qF 'k.keys[&quot;a\\&quot;b&quot;]' '$T_DIR/page' && grep -qF 'k.keys[7]' '$T_DIR/page' && grep -qF 'k.keys[?]' '$T_DIR/page' && ! grep -q IDX-SECRET '$T_DIR/page'"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/ui?$(head -c 4100 /dev/zero | tr '\0' a)")
check "…/ui with a 4 KB query still redirects (the query dropped), not a 502" expect_eq redirect "301 $URL/ui/" "$code"
code=$(page "?repository=/etc")
check "a repository outside the allowlist is 403 JSON" eval "[ $code = 403 ] && grep -q '\"error\"' '$T_DIR/page'"
code=$(curl -s -o "$T_DIR/page" -w '%{http_code}' -X POST --data x "$URL/ui/state?state=$APP")
check "the pages are read-only: POST is 405 JSON" eval "[ $code = 405 ] && grep -q '\"error\"' '$T_DIR/page'"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/ui/other")
check "another address under ui/ is 404 (nginx's JSON)" expect_eq code 404 "$code"

# --- the last failed requests (issue 20): what Terraform does not print, with the request's id ----
# send METHOD QUERY BODY [curl args...]: a request; its X-Request-Id in RID
send() {
	local m=$1 q=$2 b=$3
	shift 3
	RID=$(curl -s -D - -o /dev/null -X "$m" ${b:+--data "$b"} "$@" "$URL?$q" | sed -n 's/^X-Request-Id: \([0-9a-f]*\)\r$/\1/Ip')
}
send POST "state=$XSS_Q" "$(st 5 xss)"
F428=$RID
send LOCK "state=$APP" '{"ID":"another-pipeline"}'
F_LOCK=$RID
send POST "state=$APP&ID=wrong-id" "$(st 9 app)"
F_WRONG=$RID
code=$(page "")
sed -n '/<h2>Recent failed requests/,$p' "$T_DIR/page" >"$T_DIR/failures"
check "ui/ lists the last failed requests: a POST without the lock, its id, 428 and message, newest first" \
	eval "[ $code = 200 ] && grep -q '<td class=\"mono\">$F428</td><td>POST</td>.*<td class=\"num\">428</td><td>state xss/&lt;script&gt;alert(1)&lt;/script&gt;.tfstate must be locked' '$T_DIR/failures' &&
		[ \"\$(grep -o '<td class=\"mono\">[0-9a-f]\{16\}</td>' '$T_DIR/failures' | head -1)\" = '<td class=\"mono\">$F_WRONG</td>' ]"
check "... the <script> path in it as text, no element" eval "! grep -qi '<script' '$T_DIR/failures'"
check "... a write under another ID than the holder's (409), without the holder's lock ID" \
	eval "grep -q '<td class=\"mono\">$F_WRONG</td><td>POST</td>.*409.*locked by another ID' '$T_DIR/failures' && ! grep -q '$HOLDER_ID' '$T_DIR/page'"
check "... but not a LOCK refused because another ID holds the lock (Terraform prints the holder)" \
	eval "[ -n '$F_LOCK' ] && ! grep -q '$F_LOCK' '$T_DIR/failures'"
# a failure whose state names a secret the server knows (GIT_PASSWORD): never on a page or in
# tfgit failures
FSECRET=Fail-s3cret-pw-77
RS=$(new_remote fsecret)
stack_up fsecret TFGIT_DEFAULT_REPOSITORY="$RS" GIT_PASSWORD="$FSECRET"
send POST "state=$FSECRET.tfstate" "$(st 1 s)"
code=$(page "")
check "a failure naming a secret: not on the page" eval "[ $code = 200 ] && ! grep -q '$FSECRET' '$T_DIR/page'"
as_pool env -i PATH=/usr/bin:/bin TFGIT_DEFAULT_REPOSITORY="$RS" TFGIT_CACHE_DIR="$T_DIR/stack-fsecret/cache" \
	"$TFGIT_CLI_BIN" failures >"$T_DIR/cli-failures" 2>&1
check "... tfgit failures lists it, the secret as ***" \
	eval "grep -q '$RID  POST .*428.*state \*\*\*.tfstate must be locked' '$T_DIR/cli-failures' && ! grep -q '$FSECRET' '$T_DIR/cli-failures'"
URL=$OPEN_URL

# --- in a browser ------------------------------------------------------------------------------
browse() { # browse NAME URL [--no-js]: loads URL; DOM in $T_DIR/NAME.html, screenshot in $SHOTS/NAME.png
	local name=$1 url=$2
	shift 2
	mkdir -p "$SHOTS"
	TMPDIR=$T_DIR timeout 90 "$BROWSE" --timeout 40 --width 1100 --height 700 --dom "$T_DIR/$name.html" \
		--screenshot "$SHOTS/$name.png" "$@" "$url" >"$T_DIR/$name.out" 2>&1
}
if ! command -v chromium >/dev/null || [ ! -x "$BROWSE" ]; then
	for t in "repository page" "state page" "page of the <script> state" "pages without JavaScript"; do
		skip "in Chromium: $t" "chromium or $BROWSE is missing (make deps installs chromium)"
	done
else
	check "in Chromium: the repository page loads with no console error, failed load or CSP report" \
		browse ui-repository "$URL/ui/?sort=path"
	[ -s "$T_DIR/ui-repository.out" ] && grep -v '^status' "$T_DIR/ui-repository.out" | head -5
	check "... the DOM lists every state of the branch" \
		eval "for s in \$(g '$R' ls-tree -r --name-only master | grep -v xss/); do grep -qF \">\$s</a>\" '$T_DIR/ui-repository.html' || exit 1; done"
	check "... the held lock shows its holder" grep -q 'locked by alice@pipeline-42' "$T_DIR/ui-repository.html"
	check "... the <script> path is text, not an element" \
		eval "grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;.tfstate' '$T_DIR/ui-repository.html' && ! grep -qi '<script' '$T_DIR/ui-repository.html'"
	check "... the stylesheet applied (a real browser fetched it under the policy)" grep -q 'rel="stylesheet"' "$T_DIR/ui-repository.html"
	check "in Chromium: the state page loads with no console error" browse ui-state "$URL/ui/state?state=$APP"
	check "... its versions name the resource the second apply changed" \
		eval "[ $HAVE_TF = 0 ] || grep -q '~ terraform_data.server\[1\]' '$T_DIR/ui-state.html'"
	check "... no secret value anywhere in the DOM (sensitive output, attribute, plain output)" \
		eval "! grep -q -e '$SECRET_OUT' -e '$SECRET_ATTR' -e 'net-10.0.0.0' '$T_DIR/ui-state.html' '$T_DIR/ui-repository.html'"
	check "in Chromium: the page of the <script> state loads, its path shown as text" \
		eval "browse ui-xss '$URL/ui/state?state=$XSS_Q' && grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;.tfstate' '$T_DIR/ui-xss.html' && ! grep -qi '<script' '$T_DIR/ui-xss.html'"
	check "in Chromium with JavaScript off: the pages show the same states and versions" \
		eval "browse ui-nojs '$URL/ui/' --no-js && grep -q 'locked by alice@pipeline-42' '$T_DIR/ui-nojs.html' && browse ui-nojs-state '$URL/ui/state?state=envs/many.tfstate' --no-js && grep -q 'older versions' '$T_DIR/ui-nojs-state.html'"
	rm -f "$SHOTS/ui-nojs.png" "$SHOTS/ui-nojs-state.png" "$SHOTS/ui-xss.png"
	check "a screenshot of each page is kept (PNG)" \
		eval "file '$SHOTS/ui-repository.png' '$SHOTS/ui-state.png' | grep -c 'PNG image data' | grep -qx 2"
fi
check "nothing the pages did changed a ref of the repository" \
	expect_eq refs "$REFS_BEFORE" "$(g "$R" for-each-ref --format='%(refname) %(objectname)')"

# --- the ACL: the read right, state by state ----------------------------------------------------
declare -A PASS=([viewer]=View-pass-1 [ops]=Ops-pass-2)
for u in "${!PASS[@]}"; do htpasswd_line "$u" "${PASS[$u]}"; done >"$T_DIR/htpasswd"
printf 'auth_basic "tfgit";\nauth_basic_user_file %s;\n' "$T_DIR/htpasswd" >"$T_DIR/auth.conf"
printf 'viewer read * envs/\nops read,force-unlock * *\n' >"$T_DIR/acl"
chmod 644 "$T_DIR/htpasswd" "$T_DIR/auth.conf" "$T_DIR/acl"
stack_up acl STACK_NGINX_INCLUDE="$T_DIR/auth.conf" TFGIT_ACL_FILE="$T_DIR/acl" TFGIT_DEFAULT_REPOSITORY="$R"
as() { curl -s -o "$T_DIR/page" -w '%{http_code}' -u "$1:${PASS[$1]}" "$URL/ui/$2"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/ui/")
check "with auth_basic, the pages need credentials (401)" expect_eq code 401 "$code"
code=$(as viewer "")
check "a user who may read envs/ only sees the envs/ states" \
	eval "[ $code = 200 ] && grep -q '>envs/dns.tfstate</a>' '$T_DIR/page' && ! grep -q -e 'prod/app' -e 'xss/' '$T_DIR/page'"
code=$(as viewer "state?state=$APP")
check "... and gets 403 JSON for another state's page" eval "[ $code = 403 ] && grep -q '\"error\"' '$T_DIR/page'"
code=$(as viewer "version?state=$APP&version=$first_commit")
check "... and for its download" eval "[ $code = 403 ] && grep -q '\"error\"' '$T_DIR/page'"
curl -s -o /dev/null -X LOCK --data '{"ID":"dns-held-id-55","Who":"bob@ci"}' "$OPEN_URL?state=envs/dns.tfstate"
g "$R" show master:envs/dns.tfstate | jq '.serial += 1' >"$T_DIR/dns.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "@$T_DIR/dns.json" "$OPEN_URL?state=envs/dns.tfstate&ID=dns-held-id-55")
check "a change is written under a lock still held" expect_eq code 200 "$code"
code=$(as viewer "")
check "a held lock's ID is hidden from who may not force-unlock (badge and the last change's Lock-ID)" \
	eval "grep -q 'locked by bob@ci' '$T_DIR/page' && ! grep -q 'dns-held-id-55' '$T_DIR/page'"
code=$(as ops "")
check "... and shown to who may (TFGIT_FORCE_UNLOCK on, the ACL's right)" grep -q 'dns-held-id-55' "$T_DIR/page"
# failed requests on the ACL's stack: each shown only to who may read its state
send POST "state=$APP" "$(st 3 app)" -u "ops:${PASS[ops]}"
F_OPS=$RID
send POST "state=envs/dns.tfstate" "$(st 3 dns)" -u "viewer:${PASS[viewer]}"
F_VIEWER=$RID
code=$(as viewer "")
check "failed requests: a user sees those of states they may read (their 403 on envs/), not another's on $APP" \
	eval "grep -q '<td class=\"mono\">$F_VIEWER</td><td>POST</td>.*403.*may not write state envs/dns.tfstate' '$T_DIR/page' && ! grep -q '$F_OPS' '$T_DIR/page'"
code=$(as ops "")
check "... who may read every state sees both" eval "grep -q '$F_OPS' '$T_DIR/page' && grep -q '$F_VIEWER' '$T_DIR/page'"

# --- the last changes a worker keeps: a new commit, and a branch moved back ---------------------
URL=$OPEN_URL
first_row() { curl -s "$URL/ui/?sort=changed" | grep -o '<tr><td class="mono"><a href="state?state=[^"]*"' | head -1 | sed 's/.*state=//; s/"$//'; }
# newest STATE: the state's last change is the newest of the branch (a tie within the same second counts)
newest() {
	curl -s "$URL/ui/" | sed -n 's/^<tr><td class="mono"><a href="state?state=\([^"]*\)".*<time datetime="\([^"]*\)".*/\2 \1/p' |
		sort -r | awk -v s="$1" 'NR == 1 { top = $1 } $1 == top && $2 == s { found = 1 } END { exit !found }'
}
for _ in 1 2 3 4; do first_row >/dev/null; done # each worker has listed the branch
before_new=$(tip master)
post_state envs/new.tfstate 1
check "after a new commit, every worker lists the new state as the last changed" \
	eval "newest envs/new.tfstate && newest envs/new.tfstate && newest envs/new.tfstate"
mid=$(tip master)
post_state "$XSS_Q" 2 rewound@ci
check "... then a change to an existing state, by its Who" \
	eval "for i in 1 2 3; do curl -s '$URL/ui/' >'$T_DIR/p' && grep -q '<td>rewound@ci</td>' '$T_DIR/p' || exit 1; done"
g "$R" update-ref refs/heads/master "$mid"
check "after the branch is moved back, no worker shows a change the branch no longer holds" \
	eval "for i in 1 2 3; do curl -s '$URL/ui/' >'$T_DIR/p' && grep -q 'new.tfstate' '$T_DIR/p' && ! grep -q 'rewound@ci' '$T_DIR/p' || exit 1; done"
g "$R" update-ref refs/heads/master "$before_new"
check "... nor a state it no longer holds" \
	eval "for i in 1 2 3; do r=\$(first_row); [ -n \"\$r\" ] && [ \"\$r\" != envs/new.tfstate ] || exit 1; done"
# a lock ID that the log's escaping changes (backslash, tab): still hidden in the last change
ODD_ID=$(printf 'job\\42\tx')
curl -s -o /dev/null -X LOCK --data "$(jq -cn --arg id "$ODD_ID" '{ID:$id,Who:"odd@ci"}')" "$URL?state=envs/many.tfstate"
g "$R" show master:envs/many.tfstate | jq -c '.serial += 1' >"$T_DIR/many.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "@$T_DIR/many.json" "$URL?state=envs/many.tfstate&ID=$(jq -rn --arg s "$ODD_ID" '$s|@uri')")
curl -s "$URL/ui/" >"$T_DIR/p"
check "a held lock ID with a backslash and a tab is hidden in the last change's Lock-ID too" \
	eval "[ $code = 200 ] && grep -q 'locked by odd@ci' '$T_DIR/p' && ! grep -q 'job' '$T_DIR/p'"
check "... while the commit's trailer holds it (escaped)" eval "g '$R' log -1 --format=%B master | grep -qF 'Lock-ID: job\\\\42\\tx'"
finish
