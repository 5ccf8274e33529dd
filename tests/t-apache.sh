#!/usr/bin/env bash
# tfgit behind a real Apache 2.4 with the shipped configurations, each Included as it is:
# mod_fcgid (apache/tfgit-fcgid.conf), plain CGI under mod_cgid (apache/tfgit-cgi.conf), and the
# shared-hosting .htaccess (apache/htaccess) in a directory with AllowOverride. Terraform's cycle
# through each (init, apply of a state over 1 MB, plan refused while another ID holds the lock,
# force-unlock, destroy), GitLab's lock layout (POST/DELETE on .../lock, PUT for writes), a
# remote that never answers (tfgit's JSON 504, not Apache's page), JSON for the errors Apache
# answers itself, no query string in Apache's logs. Runs with build/tfgit.fcgi and, when it
# exists, build/static/tfgit.fcgi. Prints warm GET/POST latencies as "# figures:" lines.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"
. "$(dirname "$0")/apache.sh"

if ! apache_available; then
	skip "tfgit under Apache" "apache2 with mod_fcgid and mod_cgid is not installed (make deps)"
	finish
	exit
fi

BINS=("$TFGIT_BIN")
[ -x "$BUILD_DIR/static/tfgit.fcgi" ] && BINS+=("$BUILD_DIR/static/tfgit.fcgi")
HAVE_TF=0
command -v terraform >/dev/null && HAVE_TF=1
OTHER_ID=11111111-2222-3333-4444-555555555555
OTHER_LOCK='{"ID":"'$OTHER_ID'","Operation":"OperationTypeApply","Info":"","Who":"other@ci-runner","Version":"1.11.4","Created":"2026-11-24T10:00:00.000000001Z","Path":""}'
# a secret a client might put into a query string: it must reach no log
SECRET=Sekr1tInTheQuery
# a body one byte over TFGIT_MAX_BODY (sparse)
truncate -s $((256 * 1024 * 1024 + 1)) "$T_DIR/toolarge"
blackhole

# apache_stack NAME MODE BIN: an Apache serving a copy of BIN with the shipped configuration of
# MODE (fcgid or cgi), settings as a site would give them; a new remote as the default
# repository. Sets AD (its directory), R (the remote), U (its /tfgit address).
apache_stack() {
	local name=$1 mode=$2 bin
	AD=$T_DIR/apache-$name
	mkdir -p "$AD"
	chmod 755 "$AD"
	bin=$(apache_bin "$AD" "$3")
	apache_writable_dir "$AD/cache"
	R=$(new_remote "$name")
	# shellcheck disable=SC2034 # read by apache_conf
	local APACHE_DEFINES="Define TFGIT_BIN $bin
Define TFGIT_ACCESS_LOG $AD/tfgit-access.log"
	{
		echo "# the site's own access log, without tfgit's requests as the shipped file says"
		echo "CustomLog \"$AD/site-access.log\" common env=!tfgit"
		if [ "$mode" = fcgid ]; then
			# the process environment for some settings, the request's variables for others
			echo "FcgidInitialEnv TFGIT_CACHE_DIR $AD/cache"
			echo "FcgidInitialEnv TFGIT_REMOTE_TIMEOUT 3"
		else
			echo "<Location /tfgit>"
			echo "    SetEnv TFGIT_CACHE_DIR $AD/cache"
			echo "    SetEnv TFGIT_REMOTE_TIMEOUT 3"
			echo "</Location>"
		fi
		echo "<Location /tfgit>"
		echo "    SetEnv TFGIT_DEFAULT_REPOSITORY $R"
		echo "    SetEnv TFGIT_ALLOWED_REPOS \"git://127.0.0.1:$HOLE_PORT/*.git\""
		echo "</Location>"
	} >"$AD/site.conf"
	if ! apache_start "$AD" "$ROOT/apache/tfgit-$mode.conf" "$AD/site.conf" >"$AD/start.out" 2>&1; then
		fail "Apache starts with apache/tfgit-$mode.conf ($name)" "$(cat "$AD/start.out")"
		return 1
	fi
	U=$APACHE_URL/tfgit
	pass "Apache starts with apache/tfgit-$mode.conf ($name)"
}

# tf ARGS...: terraform in the project W; the end of its output when it fails
tf() { (cd "$W" && terraform "$@" -no-color) >"$T_DIR/tf.out" 2>&1 || { tail -n 12 "$T_DIR/tf.out"; return 1; }; }
tip() { g "$1" rev-parse -q --verify "refs/heads/$2" 2>/dev/null || echo none; }

# tf_cycle LABEL REMOTE STATE ADDRESS [gitlab]: Terraform's cycle through ADDRESS (the state's
# address; with "gitlab", the lock address is ADDRESS's path + /lock, with POST, DELETE and
# PUT): init, apply of a state over 1 MB, plan refused while another ID holds the lock,
# force-unlock, destroy. The state is STATE on master of REMOTE.
tf_cycle() {
	local label=$1 r=$2 s=$3 addr=$4 lock_addr=$4 lock_method=LOCK i
	local steps=("init" "apply of a state over 1 MB" "plan while another ID holds the lock"
		"force-unlock" "destroy")
	if [ $HAVE_TF -eq 0 ]; then
		for i in "${steps[@]}"; do skip "$label: terraform $i" "terraform is not on the PATH"; done
		return
	fi
	W=$T_DIR/tf-${label//[\/ ]/-}
	tf_project "$W" "$addr" "retry_max      = 0"
	if [ "${5:-}" = gitlab ]; then
		lock_addr=${addr/\/tfgit\?//tfgit/lock?}
		lock_addr=${lock_addr/tfgit.fcgi\?/tfgit.fcgi/lock?}
		lock_method=POST
		cat >"$W/backend.tf" <<TF
terraform {
  backend "http" {
    address        = "$addr"
    update_method  = "PUT"
    lock_address   = "$lock_addr"
    lock_method    = "POST"
    unlock_address = "$lock_addr"
    unlock_method  = "DELETE"
    retry_max      = 0
  }
}
TF
	fi
	# about 1.1 MB in the input, as much again in the output: a state over 2 MB
	cat >"$W/main.tf" <<TF
variable "n" {
  type    = number
  default = 1
}
locals {
  chunk = "$(head -c 1100 /dev/zero | tr '\0' x)"
}
resource "terraform_data" "big" {
  input = "\${var.n}-\${join("", [for i in range(1000) : local.chunk])}"
}
resource "terraform_data" "small" {
  input = "small-\${var.n}"
}
TF
	check "$label: terraform init" tf init -input=false
	check "$label: terraform apply of a state over 1 MB" tf apply -auto-approve -input=false
	check "$label: ... the state on the remote is over 1 MB and holds both resources" eval \
		"[ \$(g '$r' cat-file -s 'master:$s') -gt 1048576 ] && g '$r' show 'master:$s' | grep -q '\"small-1\"'"
	check "$label: ... apply left no lock" expect_eq lock none "$(tip "$r" "locks/$s")"
	local code before
	code=$(curl -s -o /dev/null -w '%{http_code}' -X "$lock_method" --data "$OTHER_LOCK" "$lock_addr")
	check "$label: another ID takes the lock ($lock_method)" expect_eq code 200 "$code"
	before=$(tip "$r" master)
	if tf plan -input=false -var n=2 >/dev/null; then
		fail "$label: terraform plan while another ID holds the lock fails" "$(cat "$T_DIR/tf.out")"
	else
		check "$label: terraform plan while another ID holds the lock fails, naming the holder" eval \
			"grep -q 'Error acquiring the state lock' '$T_DIR/tf.out' && grep -q '$OTHER_ID' '$T_DIR/tf.out'"
	fi
	check "$label: terraform force-unlock" tf force-unlock -force "$OTHER_ID"
	check "$label: ... the lock branch is gone" expect_eq lock none "$(tip "$r" "locks/$s")"
	check "$label: ... and the state is untouched" expect_eq master "$before" "$(tip "$r" master)"
	check "$label: terraform destroy" tf destroy -auto-approve -input=false -var n=2
	check "$label: ... the state has no resources left, no lock" eval \
		"! g '$r' show 'master:$s' | grep -q terraform_data && [ \"\$(tip '$r' 'locks/$s')\" = none ]"
}

# figures LABEL URL: 50 sequential warm GETs of a state, then 50 POSTs (each a commit) under a
# lock; prints median and 90th percentile as a "# figures:" line; passes when all were 200.
figures() {
	local label=$1 url=$2 q="state=bench/$RANDOM.tfstate" i codes
	curl -s -o /dev/null -X LOCK --data '{"ID":"bench"}' "$url?$q"
	curl -s -o /dev/null --data '{"version":4,"serial":0,"lineage":"b"}' "$url?$q&ID=bench"
	: >"$T_DIR/get.times"
	: >"$T_DIR/post.times"
	for i in $(seq 1 50); do
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$url?$q" >>"$T_DIR/get.times"
	done
	for i in $(seq 1 50); do
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
			--data "{\"version\":4,\"serial\":$i,\"lineage\":\"b\"}" "$url?$q&ID=bench" >>"$T_DIR/post.times"
	done
	curl -s -o /dev/null -X UNLOCK --data '{"ID":"bench"}' "$url?$q"
	pct() { awk '{print $2 * 1000}' "$1" | sort -n | awk -v p="$2" '{v[NR] = $1} END {i = int(NR * p + 0.999); printf "%.1f", v[i]}'; }
	echo "# figures: $label: warm GET median $(pct "$T_DIR/get.times" 0.5) ms, p90 $(pct "$T_DIR/get.times" 0.9) ms;" \
		"POST (a commit each) median $(pct "$T_DIR/post.times" 0.5) ms, p90 $(pct "$T_DIR/post.times" 0.9) ms (50 sequential each)"
	codes=$(cut -d' ' -f1 "$T_DIR/get.times" "$T_DIR/post.times" | sort | uniq -c | tr -s ' ')
	check "$label: 50 GETs and 50 POSTs in a row are all 200" expect_eq codes " 100 200" "$codes"
}

# is_json_error FILE: the body is tfgit's (or the configuration's) JSON error object.
is_json_error() { grep -q '^{"error":"' "$1"; }

# common_checks LABEL NAME: what any Apache stack must do besides Terraform's cycle.
common_checks() {
	local label=$1 name=$2 out t0 ms
	# a remote that never answers: tfgit's own 504 after TFGIT_REMOTE_TIMEOUT (3 s), as JSON
	t0=$(date +%s%N)
	out=$(curl -s -D "$T_DIR/h" -o "$T_DIR/b" -w '%{http_code}' --max-time 60 \
		"$U?repository=git://127.0.0.1:$HOLE_PORT/hole.git&state=h.tfstate")
	ms=$((($(date +%s%N) - t0) / 1000000))
	check "$label: a remote that never answers is tfgit's 504 (not Apache's 500), in ${ms} ms" \
		expect_eq code 504 "$out"
	check "$label: ... its body is tfgit's JSON error" eval \
		"is_json_error '$T_DIR/b' && grep -qi '^Content-Type: application/json' '$T_DIR/h'"
	# a body over TFGIT_MAX_BODY is refused from its Content-Length, with JSON, before it is read
	out=$(curl -s -D "$T_DIR/h" -o "$T_DIR/b" -w '%{http_code}' --max-time 60 \
		--data-binary @"$T_DIR/toolarge" "$U?state=big.tfstate&ID=x&note=$SECRET")
	check "$label: a body over 256 MiB is 413 with a JSON body" eval \
		"[ '$out' = 413 ] && is_json_error '$T_DIR/b' && grep -qi '^Content-Type: application/json' '$T_DIR/h'"
	# requests at the same moment, each in a process of its own (CGI) or queued for mod_fcgid's
	# processes: one lock wins, and every write lands
	at_once LOCK "state=race.tfstate" '{"ID":"race-%i"}' 6 "$U"
	check "$label: 6 LOCKs at once: one 200, five 409" expect_eq "200/409" "1/5" "$AT_ONCE_200/$AT_ONCE_409"
	write_states_at_once "" 6 "$U"
	check "$label: 6 writes of 6 states at once all land" expect_eq states "6 6" "$AT_ONCE_200 $(states_on "$R" master 6)"
	# only /tfgit and /tfgit/lock are addresses: a typo is a JSON 404, not the state's address
	out=$(curl -s -D "$T_DIR/h" -o "$T_DIR/b" -w '%{http_code}' -X DELETE "$U/unlock?state=$S")
	check "$label: DELETE on /tfgit/unlock is a JSON 404 (not a DELETE of the state)" eval \
		"[ '$out' = 404 ] && is_json_error '$T_DIR/b' && grep -qi '^Content-Type: application/json' '$T_DIR/h'"
	# the web view through Apache: PATH_INFO /ui/… reaches it, its relative links resolve
	out=$(curl -s -D "$T_DIR/h" -o "$T_DIR/b" -w '%{http_code}' "$U/ui/")
	check "$label: the web view's states page (/tfgit/ui/) lists the states, with its policy" eval \
		"[ '$out' = 200 ] && grep -q '>s1.tfstate</a>' '$T_DIR/b' && grep -qi \"^Content-Security-Policy: default-src 'none'\" '$T_DIR/h'"
	out=$(curl -s -o "$T_DIR/b" -w '%{http_code} %{content_type}' "$U/ui/style.css")
	check "$label: ... its stylesheet and a state's page" eval \
		"[ '$out' = '200 text/css; charset=utf-8' ] && [ \"\$(curl -s -o /dev/null -w '%{http_code}' '$U/ui/state?state=s1.tfstate')\" = 200 ]"
	# a client's header is never a setting
	local other
	other=$(new_remote "hdr-$name")
	curl -s -o /dev/null -X LOCK -H "Tfgit-Default-Repository: $other" --data '{"ID":"h"}' "$U?state=hdr.tfstate"
	curl -s -o /dev/null -H "Tfgit-Default-Repository: $other" --data '{"version":4,"serial":1,"lineage":"h"}' \
		"$U?state=hdr.tfstate&ID=h"
	curl -s -o /dev/null -X UNLOCK -H "Tfgit-Default-Repository: $other" --data '{"ID":"h"}' "$U?state=hdr.tfstate"
	check "$label: a client's Tfgit-Default-Repository header is not a setting" eval \
		"g '$R' cat-file -e master:hdr.tfstate && [ -z \"\$(g '$other' for-each-ref)\" ]"
	# no line Apache writes carries the query string
	curl -s -o /dev/null "$U?state=q.tfstate&note=$SECRET"
	curl -s -o /dev/null "$U/nothing?state=q.tfstate&note=$SECRET"
	curl -s -o /dev/null "$U?repository=http://u:$SECRET@127.0.0.1:1/x.git&state=q.tfstate"
	curl -s -o /dev/null -X PROPFIND "$U?state=q.tfstate&note=$SECRET"
	check "$label: no access or error log line carries the query string" eval \
		"! grep -r -l '$SECRET' '$AD'/*.log"
	check "$label: ... tfgit's access log has the requests, paths only" eval \
		"grep -q '\"GET /tfgit\" 204' '$AD/tfgit-access.log' && grep -q '\"PROPFIND /tfgit\" 405' '$AD/tfgit-access.log' && grep -q '\"DELETE /tfgit/unlock\" 404' '$AD/tfgit-access.log'"
}

# stop_checks LABEL: Apache stops, and every tfgit process it started with it.
stop_checks() {
	local label=$1 left t0
	t0=$SECONDS
	apache_stop "$APACHE_PID"
	left=$(apache_children "$AD/bin/tfgit.fcgi")
	check "$label: Apache stops with all its tfgit processes ($((SECONDS - t0)) s)" eval \
		"! kill -0 $APACHE_PID 2>/dev/null && [ -z '$left' ]"
	# shellcheck disable=SC2086 # one pid a word
	[ -z "$left" ] || kill -KILL $left 2>/dev/null
}

# the shipped bounds agree with tfgit's defaults: bodies up to TFGIT_MAX_BODY (256 MiB), and more
# time than TFGIT_REMOTE_TIMEOUT (60 s) plus TFGIT_QUEUE_TIMEOUT (10 s) for tfgit to answer
conf_value() { awk -v k="$2" '$1 == k {print $2; exit}' "$ROOT/apache/$1"; }
check "apache/tfgit-fcgid.conf: FcgidMaxRequestLen is TFGIT_MAX_BODY, FcgidIOTimeout above 70 s" eval \
	"[ '$(conf_value tfgit-fcgid.conf FcgidMaxRequestLen)' = 268435456 ] && [ '$(conf_value tfgit-fcgid.conf FcgidIOTimeout)' -gt 70 ] && [ '$(conf_value tfgit-fcgid.conf FcgidBusyTimeout)' -gt '$(conf_value tfgit-fcgid.conf FcgidIOTimeout)' ]"
check "apache/tfgit-cgi.conf: LimitRequestBody is TFGIT_MAX_BODY, CGIDScriptTimeout above 70 s" eval \
	"[ '$(conf_value tfgit-cgi.conf LimitRequestBody)' = 268435456 ] && [ '$(conf_value tfgit-cgi.conf CGIDScriptTimeout)' -gt 70 ]"

# make install fills in the paths the shipped files name
inst=$T_DIR/install
if make -s -C "$ROOT" install DESTDIR="$inst" PREFIX=/usr BUILD="${BUILD:-build}" >"$T_DIR/install.out" 2>&1; then
	check "make install PREFIX=/usr: apache/* with their paths filled in" eval \
		"! grep -n '@[A-Z]*@' '$inst/usr/share/tfgit/apache/'* && grep -q 'Define TFGIT_BIN /usr/libexec/tfgit/tfgit.fcgi' '$inst/usr/share/tfgit/apache/tfgit-fcgid.conf' && [ -x '$inst/usr/libexec/tfgit/tfgit.fcgi' ] && cmp -s '$ROOT/apache/htaccess' '$inst/usr/share/tfgit/apache/htaccess'"
else
	fail "make install PREFIX=/usr DESTDIR=..." "$(tail -n 20 "$T_DIR/install.out")"
fi

for bin in "${BINS[@]}"; do
	kind=dynamic
	[ "$bin" = "$TFGIT_BIN" ] || kind=static
	for mode in fcgid cgi; do
		label="$mode/$kind"
		name=$mode-$kind
		[ "$mode" = cgi ] && label="CGI/$kind"
		apache_stack "$name" "$mode" "$bin" || continue
		S=prod/terraform.tfstate
		tf_cycle "$label" "$R" "$S" "$U?type=git&ref=master&state=$S"
		if [ "$mode" = fcgid ] && [ "$kind" = dynamic ]; then
			S2=gitlab/terraform.tfstate
			tf_cycle "$label GitLab-style lock address" "$R" "$S2" "$U?type=git&ref=master&state=$S2" gitlab
		fi
		common_checks "$label" "$name"
		figures "$label" "$U"
		[ "$mode" = cgi ] ||
			check "$label: mod_fcgid keeps a warm tfgit process" eval "[ -n \"\$(apache_children '$AD/bin/tfgit.fcgi')\" ]"
		stop_checks "$label"
	done
done

# The shipped .htaccess on a "shared host": the program and the .htaccess in a directory of the
# site with AllowOverride, Apache's user running it (a host without suexec: tests/t-suexec.sh has
# the host with it); every setting comes from the .htaccess's SetEnv lines (nothing in the
# server's configuration names the repository). Plain CGI as shipped, then mod_fcgid.
for handler in cgi fcgid; do
	label="htaccess/$handler"
	AD=$T_DIR/apache-htaccess-$handler
	mkdir -p "$AD/htdocs/tfgit"
	chmod 755 "$AD" "$AD/htdocs" "$AD/htdocs/tfgit"
	install -m 755 "${BINS[-1]}" "$AD/htdocs/tfgit/tfgit.fcgi"
	R=$(new_remote "htaccess-$handler")
	apache_writable_dir "$AD/home"
	# a host without suexec (Apache's user runs every site's CGI): the .htaccess's SetEnv lines
	sed -e "s|^#SetEnv TFGIT_DEFAULT_REPOSITORY .*|SetEnv TFGIT_DEFAULT_REPOSITORY $R\nSetEnv TFGIT_CACHE_DIR $AD/home/tfgit-cache|" \
		"$ROOT/apache/htaccess" >"$AD/htdocs/tfgit/.htaccess"
	edits=2
	if [ "$handler" = fcgid ]; then
		# mod_fcgid, and basic authentication as the comments say: uncomment, delete "all granted"
		htpasswd_line ci ci-secret >"$AD/home/htpasswd"
		chmod 644 "$AD/home/htpasswd"
		sed -i -e 's|^\( *\)SetHandler cgi-script|\1#SetHandler cgi-script|' \
			-e 's|^\( *\)#SetHandler fcgid-script|\1SetHandler fcgid-script|' \
			-e 's|^#\(Auth[TN].*\)|\1|' -e "s|^#AuthUserFile .*|AuthUserFile $AD/home/htpasswd|" \
			-e 's|^#Require valid-user|Require valid-user|' -e '/^Require all granted/d' \
			"$AD/htdocs/tfgit/.htaccess"
		edits=9
	fi
	check "$label: the test's .htaccess differs from the shipped one only in lines marked EDIT ($edits)" eval \
		"[ \$(diff '$ROOT/apache/htaccess' '$AD/htdocs/tfgit/.htaccess' | grep -c '^[<>]') -le $((edits * 2)) ]"
	cat >"$AD/site.conf" <<CONF
CustomLog "$AD/site-access.log" common
<Directory "$AD/htdocs">
    AllowOverride FileInfo AuthConfig Limit Indexes
    Options +ExecCGI
</Directory>
CONF
	if ! apache_start "$AD" "$AD/site.conf" >"$AD/start.out" 2>&1; then
		fail "$label: Apache starts" "$(cat "$AD/start.out")"
		continue
	fi
	base=$APACHE_URL/tfgit
	U=$base/tfgit.fcgi
	if [ "$handler" = fcgid ]; then
		out=$(curl -s -D "$T_DIR/h" -o "$T_DIR/b" -w '%{http_code}' "$U?state=x.tfstate")
		check "$label: without credentials, a JSON 401" eval \
			"[ '$out' = 401 ] && is_json_error '$T_DIR/b' && grep -qi '^Content-Type: application/json' '$T_DIR/h'"
	fi
	# GitLab's layout as the .htaccess's comments give it (with credentials, where asked for)
	S=shared/curl.tfstate
	curl -s -o /dev/null -u ci:ci-secret -X POST --data '{"ID":"ht"}' "$U/lock?state=$S"
	curl -s -o /dev/null -u ci:ci-secret -X PUT --data '{"version":4,"serial":1,"lineage":"ht"}' "$U?state=$S&ID=ht"
	curl -s -o /dev/null -u ci:ci-secret -X DELETE --data '{"ID":"ht"}' "$U/lock?state=$S"
	check "$label: lock, PUT and unlock reach the repository named only in .htaccess" eval \
		"g '$R' show 'master:$S' | grep -q '\"lineage\":\"ht\"' && [ \"\$(tip '$R' 'locks/$S')\" = none ]"
	out=$(curl -s -u ci:ci-secret -o "$T_DIR/b" -w '%{http_code}' "$U/ui/")
	check "$label: the web view at tfgit.fcgi/ui/ (the .htaccess admits it)" eval \
		"[ '$out' = 200 ] && grep -q '>shared/curl.tfstate</a>' '$T_DIR/b'"
	if [ "$handler" = fcgid ]; then
		check "$label: ... tfgit sees the user Apache authenticated (REMOTE_USER)" \
			grep -q "PUT state=$S .*user=ci " "$AD/error.log"
		check "$label: ... served by a warm mod_fcgid process" eval \
			"[ -n \"\$(apache_children '$AD/htdocs/tfgit/tfgit.fcgi')\" ]"
	else
		S=shared/terraform.tfstate
		tf_cycle "$label" "$R" "$S" "$U?type=git&state=$S" gitlab
	fi
	check "$label: the cache is where .htaccess puts it, private to the program's user" eval \
		"[ \"\$(stat -c '%a %U' '$AD/home/tfgit-cache')\" = '700 $POOL_USER' ] && ls '$AD/home/tfgit-cache' | grep -q ."
	if [ "$handler" = cgi ]; then
		out=$(curl -s -D "$T_DIR/h" -o "$T_DIR/b" -w '%{http_code}' --max-time 60 \
			--data-binary @"$T_DIR/toolarge" "$U?state=big.tfstate&ID=x")
		check "$label: a body over 256 MiB is 413 with a JSON body" eval \
			"[ '$out' = 413 ] && is_json_error '$T_DIR/b' && grep -qi '^Content-Type: application/json' '$T_DIR/h'"
	fi
	out=$(curl -s -D "$T_DIR/h" -o "$T_DIR/b" -w '%{http_code}' -u ci:ci-secret -X DELETE "$U/unlock?state=$S&ID=x")
	check "$label: DELETE on tfgit.fcgi/unlock is a JSON 404 (not a DELETE of the state)" eval \
		"[ '$out' = 404 ] && is_json_error '$T_DIR/b' && grep -qi '^Content-Type: application/json' '$T_DIR/h'"
	code=$(curl -s -o "$T_DIR/b" -w '%{http_code}' "$base/.htaccess")
	check "$label: the .htaccess itself is not served" expect_eq code 403 "$code"
	code=$(curl -s -o "$T_DIR/b" -w '%{http_code}' "$base/")
	check "$label: no directory listing" expect_eq code 403 "$code"
	stop_pid "$APACHE_PID"
	left=$(apache_children "$AD/htdocs/tfgit/tfgit.fcgi")
	check "$label: Apache stops with all its tfgit processes" expect_eq left "" "$left"
done

# nginx and the pool, for the figures only
if stack_up bench TFGIT_DEFAULT_REPOSITORY="$(new_remote bench)" >/dev/null; then
	figures "nginx + pool" "$URL"
fi
finish
