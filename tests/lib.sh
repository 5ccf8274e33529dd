# Helpers for tfgit's shell tests: TAP-style results, a stack per test file, git remotes.
# Each test file sources this, calls `stack_up`, runs `check` lines, and ends with `finish`.
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/stack.sh"

ROOT=$STACK_ROOT
BUILD_DIR=$ROOT/${BUILD:-build}
export TFGIT_BIN=$BUILD_DIR/tfgit.fcgi
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
# the test (root in CI) inspects repositories the pool's user owns
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'
export GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=test@localhost GIT_COMMITTER_NAME=test \
	GIT_COMMITTER_EMAIL=test@localhost

# The tests' requests are a script's, sent as the README says a script must: every body as
# Content-Type: application/json (tfgit refuses any other, the defence against cross-site
# request forgery). A test that plays a browser calls `command curl`.
curl() { command curl -H 'Content-Type: application/json' "$@"; }

T_NUM=0
T_FAILED=0
# under the run's own directory when tests/run.sh gives one (its leftover check looks there)
T_DIR=$(mktemp -d "${TEST_RUN_ROOT:-/tmp}/tfgit-test.XXXXXX")
chmod 755 "$T_DIR"
STACK_POOL_LOG=$T_DIR/pool.log
STACK_NGINX_LOG=$T_DIR/nginx.log
POOL_USER=$(stack_pool_user)
# the operators' command; like tfgit.fcgi, run as the pool's user by some tests
TFGIT_CLI_BIN=$BUILD_DIR/tfgit
# A clone the pool's user cannot reach (one under a 0700 directory: mktemp -d, /root): the
# tests that run the binaries as that user (CGI, accounts, the command) run copies in T_DIR
# (the pool itself copies its binary too: scripts/pool.sh)
if [ "$(id -u)" -eq 0 ] && ! runuser -u "$POOL_USER" -- test -x "$TFGIT_BIN" 2>/dev/null; then
	install -d -m 755 "$T_DIR/bin"
	install -m 755 "$TFGIT_BIN" "$T_DIR/bin/tfgit.fcgi"
	export TFGIT_BIN=$T_DIR/bin/tfgit.fcgi
	if [ -x "$TFGIT_CLI_BIN" ]; then
		install -m 755 "$TFGIT_CLI_BIN" "$T_DIR/bin/tfgit"
		TFGIT_CLI_BIN=$T_DIR/bin/tfgit
	fi
fi
STACKS=()

cleanup() {
	local s pid
	for s in "${STACKS[@]}"; do
		for pid in $s; do stop_pid "$pid"; done
	done
	awk -v d="$T_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | xargs -r umount
	if [ "$T_FAILED" -gt 0 ]; then
		echo "# pool log of $(basename "$0") (last 30 lines):"
		tail -n 30 "$T_DIR/pool.log" 2>/dev/null | sed 's/^/#   /'
	fi
	[ -n "${KEEP_T_DIR:-}" ] || rm -rf "$T_DIR"
}
trap cleanup EXIT

pass() { T_NUM=$((T_NUM + 1)); echo "ok $T_NUM - $1"; }
fail() {
	T_NUM=$((T_NUM + 1)); T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_NUM - $1"
	[ -z "${2:-}" ] || echo "$2" | sed 's/^/#   /'
}
skip() { T_NUM=$((T_NUM + 1)); echo "ok $T_NUM - $1 # SKIP $2"; }

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	if [ "$2" == "$3" ]; then return 0; fi
	echo "$1: expected [$2], got [$3]"
	return 1
}

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 12000)) # below the kernel's ephemeral ports
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

# stack_up NAME [VAR=value ...]: starts a stack with its own cache and the given settings;
# sets URL (its tfgit address) and LAST_POOL_PID.
stack_up() {
	local name=$1 kv port
	shift
	local dir=$T_DIR/stack-$name
	# dynamic scope: the settings reach this stack's processes only
	local -x TFGIT_CACHE_DIR=$dir/cache FCGI_SOCKET=$dir/tfgit.sock FCGI_WORKERS=${FCGI_WORKERS:-2}
	for kv in "$@"; do local -x "${kv?}"; done
	local tries=0
	until port=$(free_port) && stack_start "$dir" "$port"; do
		tries=$((tries + 1))
		if [ $tries -ge 3 ]; then
			fail "stack $name starts" "$(tail -n 20 "$T_DIR"/*.log)"
			exit 1
		fi
	done
	STACKS+=("$STACK_NGINX_PID $STACK_POOL_PID")
	LAST_POOL_PID=$STACK_POOL_PID
	URL=http://127.0.0.1:$port/tfgit
}

# new_remote NAME: an empty bare repository the pool's user can write; prints its path.
new_remote() {
	local r=$T_DIR/remotes/$1.git
	mkdir -p "$T_DIR/remotes"
	chmod 755 "$T_DIR/remotes"
	git init -q --bare "$r"
	chown -R "$POOL_USER" "$r"
	echo "$r"
}

# g REMOTE ARGS...: git on a remote.
g() { local r=$1; shift; git --git-dir="$r" "$@"; }

# req METHOD QUERY [curl args...]: sets CODE and BODY.
req() {
	local method=$1 query=$2 out
	shift 2
	out=$(curl -s -X "$method" -w '\n%{http_code}' "$@" "$URL?$query")
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}

# at_once METHOD QUERY BODY N URL...: sends N requests at the same moment, request i to the
# URLs in turn, with every %i in QUERY and BODY replaced by i. Leaves the status of request i
# in $T_DIR/code.i and its body in $T_DIR/body.i; sets AT_ONCE_200 and AT_ONCE_409 (counts).
at_once() {
	local method=$1 query=$2 body=$3 n=$4 i
	shift 4
	local urls=("$@") pids=()
	for i in $(seq 1 "$n"); do
		curl -s -o "$T_DIR/body.$i" -w '%{http_code}\n' -X "$method" --data "${body//%i/$i}" \
			"${urls[$(((i - 1) % ${#urls[@]}))]}?${query//%i/$i}" >"$T_DIR/code.$i" &
		pids+=($!)
	done
	wait "${pids[@]}" # not a bare wait: the stacks are children too
	AT_ONCE_200=$(cat "$T_DIR"/code.* | grep -c 200)
	AT_ONCE_409=$(cat "$T_DIR"/code.* | grep -c 409)
	rm -f "$T_DIR"/code.*
}

# tf_project DIR ADDRESS [EXTRA_BACKEND_LINE]: a Terraform configuration in DIR whose http
# backend uses ADDRESS for state, lock and unlock; resources go in other files of DIR.
tf_project() {
	local dir=$1 addr=$2
	mkdir -p "$dir"
	export TF_DATA_DIR=$dir/.terraform TF_CLI_CONFIG_FILE=$dir/none.tfrc TF_INPUT=0
	: >"$dir/none.tfrc"
	cat >"$dir/backend.tf" <<TF
terraform {
  backend "http" {
    address        = "$addr"
    lock_address   = "$addr"
    unlock_address = "$addr"
    ${3:-}
  }
}
TF
}

# tf_init_apply DIR VALUE: a terraform_data resource holding VALUE, then init and apply.
tf_init_apply() {
	printf 'resource "terraform_data" "x" {\n  input = "%s"\n}\n' "$2" >"$1/main.tf"
	(cd "$1" && terraform init -no-color -input=false && terraform apply -no-color -auto-approve -input=false) \
		>"$T_DIR/tf.out" 2>&1 || { tail -20 "$T_DIR/tf.out"; return 1; }
}

# tf_over LABEL ADDRESS_WITHOUT_STATE VALUE REPO REF: terraform init and apply of a resource
# holding VALUE through tfgit, then the state tf/terraform.tfstate on REF of REPO holds it.
# Reported as skipped when terraform is not on the PATH.
tf_over() {
	if ! command -v terraform >/dev/null; then
		skip "terraform init and apply over $1" "terraform is not on the PATH"
		skip "... the state is on the remote" "terraform is not on the PATH"
		return
	fi
	local dir=$T_DIR/tf-$RANDOM
	tf_project "$dir" "$2&state=tf/terraform.tfstate"
	check "terraform init and apply over $1" tf_init_apply "$dir" "$3"
	check "... the state is on the remote" grep -q "$3" <<<"$(g "$4" show "$5:tf/terraform.tfstate")"
}

# states_on R REF N: how many of the states s1..sN on REF of R hold {"version":4,"serial":i,"lineage":"t"}.
states_on() {
	local r=$1 ref=$2 n=$3 i found=0
	for i in $(seq 1 "$n"); do
		[ "$(git --git-dir="$r" show "$ref:s$i.tfstate" 2>/dev/null)" = "{\"version\":4,\"serial\":$i,\"lineage\":\"t\"}" ] && found=$((found + 1))
	done
	echo "$found"
}

# write_states_at_once QUERY N URL...: locks states s1..sN (ID w-i) through the first URL, then
# POSTs {"version":4,"serial":i,"lineage":"t"} to all of them at the same moment, spread over the URLs (see at_once).
# QUERY holds the other parameters (repository, ref), may be empty.
write_states_at_once() {
	local q=$1 n=$2 i
	shift 2
	for i in $(seq 1 "$n"); do
		curl -s -o /dev/null -X LOCK --data "{\"ID\":\"w-$i\"}" "$1?${q:+$q&}state=s$i.tfstate"
	done
	at_once POST "${q:+$q&}state=s%i.tfstate&ID=w-%i" '{"version":4,"serial":%i,"lineage":"t"}' "$n" "$@"
}

finish() {
	[ "$T_FAILED" -eq 0 ]
}

# log_mark: remembers where the pool log ends; since_mark prints what was logged after it.
log_mark() { LOG_MARK=$(stat -c %s "$T_DIR/pool.log" 2>/dev/null || echo 0); }
since_mark() { tail -c +$((${LOG_MARK:-0} + 1)) "$T_DIR/pool.log" 2>/dev/null; }

# cache_entries DIR: the repositories (*.git) and flock files (*.flock) in a cache directory.
cache_entries() { find "$1" -mindepth 1 -maxdepth 1 \( -name '*.git' -o -name '*.flock' \) -printf '%f\n' 2>/dev/null | sort; }

# cache_holding DIR COMMIT: how many cache repositories in DIR hold COMMIT.
cache_holding() {
	local c n=0
	for c in "$1"/*.git; do
		[ -d "$c" ] && git --git-dir="$c" cat-file -e "$2^{commit}" 2>/dev/null && n=$((n + 1))
	done
	echo "$n"
}

# commit_file REMOTE BRANCH PATH CONTENT [MODE]: a commit made with the git CLI (author test) on
# BRANCH of REMOTE setting PATH to CONTENT (MODE 100644; 120000: a symlink to CONTENT; 160000: a
# submodule at commit CONTENT), on top of the branch's tip; the remote keeps its owner.
# Prints the commit id.
commit_file() {
	local r=$1 branch=$2 path=$3 mode=${5:-100644} blob tree parent commit idx
	idx=$T_DIR/commit_file.index
	rm -f "$idx"
	parent=$(git --git-dir="$r" rev-parse -q --verify "refs/heads/$branch")
	if [ "$mode" = 160000 ]; then
		blob=$4
	else
		blob=$(printf %s "$4" | git --git-dir="$r" hash-object -w --stdin) || return 1
	fi
	[ -z "$parent" ] || GIT_INDEX_FILE=$idx git --git-dir="$r" read-tree "$parent" || return 1
	GIT_INDEX_FILE=$idx git --git-dir="$r" update-index --add --cacheinfo "$mode,$blob,$path" || return 1
	tree=$(GIT_INDEX_FILE=$idx git --git-dir="$r" write-tree) || return 1
	rm -f "$idx"
	commit=$(git --git-dir="$r" commit-tree "$tree" ${parent:+-p "$parent"} -m "test: set $path") || return 1
	git --git-dir="$r" update-ref "refs/heads/$branch" "$commit" || return 1
	chown -R --reference="$r" "$r"
	echo "$commit"
}

# cgi USER BODY|- VAR=value...: runs the binary as plain CGI (tests/t-cgi.sh, t-shm.sh) as USER with only the given
# variables (and REQUEST_METHOD etc. among them), BODY on stdin; the answer in $T_DIR/cgi.out,
# its status in CODE, its body in BODY.
cgi() {
	local user=$1 body=$2
	shift 2
	if [ "$(id -u)" -eq 0 ]; then
		printf '%s' "$body" | setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- \
			env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 CONTENT_TYPE=application/json "$@" "$TFGIT_BIN" >"$T_DIR/cgi.out" 2>"$T_DIR/cgi.err"
	else
		printf '%s' "$body" | env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 CONTENT_TYPE=application/json "$@" "$TFGIT_BIN" \
			>"$T_DIR/cgi.out" 2>"$T_DIR/cgi.err"
	fi
	CODE=$(sed -n '1s/^Status: \([0-9]*\).*/\1/p' "$T_DIR/cgi.out")
	BODY=$(sed '1,/^\r$/d' "$T_DIR/cgi.out")
}

# answered STATUS TEXT: the last answer had STATUS and its body holds TEXT.
answered() {
	expect_eq status "$1" "$CODE" || return 1
	sed 's|\\/|/|g' <<<"$BODY" | grep -qF -- "$2" || { echo "body: $BODY"; return 1; }
}

# unslash: BODY with JSON's escaped slashes (\/) unescaped, for grepping URLs in error bodies.
unslash() { sed 's|\\/|/|g' <<<"$BODY"; }

# pretty_state BYTES FILE [SERIAL]: a Terraform state of about BYTES in FILE, pretty-printed as
# Terraform writes it (2-space indent), of terraform_data resources with random ids.
pretty_state() {
	awk -v size="$1" -v serial="${3:-1}" 'BEGIN {
		srand(serial)
		printf "{\n  \"version\": 4,\n  \"terraform_version\": \"1.11.4\",\n  \"serial\": %d,\n  \"lineage\": \"3f0e9c1a-5b7d-4e2f-9a61-0c8d7b6e5a4f\",\n  \"outputs\": {},\n  \"resources\": [\n", serial
		n = 200
		for (i = 0; n < size - 60; i++) {
			id = sprintf("%08x-%04x-%04x-%04x-%06x%06x", int(rand() * 2147483647), int(rand() * 65536),
				int(rand() * 65536), int(rand() * 65536), int(rand() * 16777216), int(rand() * 16777216))
			r = sprintf("%s    {\n      \"mode\": \"managed\",\n      \"type\": \"terraform_data\",\n      \"name\": \"r%d\",\n      \"provider\": \"provider[\\\"terraform.io/builtin/terraform\\\"]\",\n      \"instances\": [\n        {\n          \"schema_version\": 0,\n          \"attributes\": {\n            \"id\": \"%s\",\n            \"input\": {\n              \"value\": \"v%d\",\n              \"type\": \"string\"\n            },\n            \"output\": {\n              \"value\": \"v%d\",\n              \"type\": \"string\"\n            },\n            \"triggers_replace\": null\n          },\n          \"sensitive_attributes\": []\n        }\n      ]\n    }", i ? ",\n" : "", i, id, i, i)
			printf "%s", r
			n += length(r)
		}
		printf "\n  ],\n  \"check_results\": null\n}\n" }' >"$2"
}
