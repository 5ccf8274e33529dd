#!/usr/bin/env bash
# Issue 10, states encrypted at rest: the reference's "aes" format (both directions, against the
# independent Go implementation tests/enc/refcrypt.go and its committed fixtures), tfgit's own
# format with key rotation through Terraform, age and gpg as filters and filters that fail,
# migration both ways, lock files in clear text, ETag/Content-MD5 of the plaintext, no secret in
# the log, an error body or a process's command line.
# Issue 18: tfgit writes format 2, bound to the repository's identity, the branch and the path: a
# blob copied into another repository (pushed with plain git) or onto another branch is refused;
# TFGIT_REPOSITORY_IDS keeps a repository's identity across a move; format 1 (the committed
# tfgit-v1.blob, bound to its path only) is still read, re-sealed in format 2 by tfgit reencrypt,
# and refused with TFGIT_ENCRYPTION_REFUSE_V1=1.
#
# Choices where the spec leaves room (tell the C side if it disagrees):
# - ETag: besides "not the id of the stored (encrypted) blob", the check expects the git blob id
#   of the plaintext (what `git hash-object` gives for the body GET returned), i.e. the same
#   meaning as without encryption.
# - "a missing key names the key id": the id as 16 hexadecimal digits (either case).
# - Encryption off meeting an encrypted blob: checked with a v1 blob (magic "TFGITENC"); the
#   reference's format has no header, so nothing is expected of a reference blob met while off.
# - Migration: an identical POST over a clear-text state under MIGRATE=encrypt is not checked
#   (whether it re-encrypts or makes no commit is open); a POST over a clear-text state without
#   MIGRATE is not checked either (only reads are specified).
# - Binary blobs are committed with put_blob below, not lib.sh's commit_file: that one passes the
#   content through a shell variable, which cannot hold NUL bytes.
. "$(dirname "$0")/lib.sh"

ENC=$ROOT/tests/enc
PLAIN=$ENC/state.json
PASS='tfgit-TEST-passphrase-not-a-secret' # the passphrase of tests/enc/ref-aes.blob (see refcrypt.go)
WRONG_PASS='tfgit-TEST-wrong-passphrase'
GPG_PASS='tfgit-TEST-gpg-passphrase'
KEYS=$T_DIR/keys
mkdir -m 755 "$KEYS"
GH=$T_DIR/gnupg

# gpg's agent is a daemon the filter starts: stop it with the stacks
gpg_stop() { [ ! -d "$GH" ] || runuser -u "$POOL_USER" -- gpgconf --homedir "$GH" --kill all >/dev/null 2>&1; }
trap 'gpg_stop; cleanup' EXIT

COMMON=(TFGIT_DEFAULT_REF=main TFGIT_REQUIRE_LOCK=0 "TFGIT_ALLOWED_REPOS=$T_DIR/remotes/*.git")
ENC_VARS=(TF_BACKEND_HTTP_ENCRYPTION_PROVIDER TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE TFGIT_ENCRYPTION_KEYS
	TFGIT_ENCRYPT_CMD TFGIT_DECRYPT_CMD TFGIT_FILTER_TIMEOUT TFGIT_ENCRYPTION_MIGRATE TFGIT_REPOSITORY_IDS
	TFGIT_ENCRYPTION_REFUSE_V1)
unset "${ENC_VARS[@]}"

# mkkey NAME [FILE]: key file $KEYS/NAME (a copy of FILE, else 32 random bytes in base64), owned by
# the pool's user, 0600 (git keeps no modes: the committed test key is copied); prints its path.
mkkey() {
	local k=$KEYS/$1
	if [ -n "${2:-}" ]; then cp "$2" "$k"; else head -c 32 /dev/urandom | base64 >"$k"; fi
	chown "$POOL_USER" "$k"
	chmod 600 "$k"
	echo "$k"
}
# kid KEYFILE: the key id, first 8 bytes of SHA-256 of the raw key, in hex
kid() { base64 -d <"$1" | sha256sum | cut -c1-16; }
# blob_kid FILE: the key id in a tfgit blob's header (bytes 9..16)
blob_kid() { od -An -tx1 -j 9 -N 8 "$1" | tr -d ' \n'; }
# blob_head FILE: a tfgit blob's magic and format version, e.g. TFGITENC02
blob_head() { printf '%s%s' "$(head -c 8 "$1")" "$(od -An -tx1 -j 8 -N 1 "$1" | tr -d ' ')"; }
# ident REMOTE: the identity tfgit binds a local remote's states to (its real path)
ident() { realpath "$1"; }
size() { stat -c %s "$1"; }
# holds VALUE: the Terraform state on stdin is JSON holding the string VALUE (terraform_data's
# input is stored as {"value": ..., "type": "string"})
holds() { jq -e --arg v "$1" '[.. | strings] | index($v) != null' >/dev/null; }

# put_blob REMOTE PATH FILE [BRANCH]: a commit (git CLI) setting PATH to FILE's bytes on BRANCH (main)
put_blob() {
	local r=$1 path=$2 file=$3 branch=${4:-main} blob parent tree commit idx=$T_DIR/put.index
	rm -f "$idx"
	blob=$(g "$r" hash-object -w "$file") || return 1
	parent=$(g "$r" rev-parse -q --verify "refs/heads/$branch")
	[ -z "$parent" ] || GIT_INDEX_FILE=$idx g "$r" read-tree "$parent" || return 1
	GIT_INDEX_FILE=$idx g "$r" update-index --add --cacheinfo "100644,$blob,$path" || return 1
	tree=$(GIT_INDEX_FILE=$idx g "$r" write-tree) || return 1
	rm -f "$idx"
	commit=$(g "$r" commit-tree "$tree" ${parent:+-p "$parent"} -m "test: set $path") || return 1
	g "$r" update-ref "refs/heads/$branch" "$commit" || return 1
	chown -R --reference="$r" "$r"
}
# stored REMOTE PATH [REF]: the stored bytes of PATH into $T_DIR/stored
stored() { g "$1" cat-file blob "${3:-main}:$2" >"$T_DIR/stored" 2>/dev/null; }
tip() { g "$1" rev-parse -q --verify "refs/heads/${2:-main}" 2>/dev/null || echo none; }
commits() { g "$1" rev-list --count main 2>/dev/null || echo 0; }

# get QUERY: GET into $T_DIR/got (bytes) and $T_DIR/hdr; sets CODE and BODY; every body is kept
get() {
	CODE=$(curl -s -D "$T_DIR/hdr" -o "$T_DIR/got" -w '%{http_code}' --max-time 60 "$URL?$1")
	BODY=$(tr -d '\0' <"$T_DIR/got")
	printf '%s\n' "$BODY" >>"$T_DIR/bodies"
}
# post QUERY FILE: POST FILE's bytes; sets CODE and BODY
post() {
	req POST "$1" --data-binary "@$2" --max-time 60
	printf '%s\n' "$BODY" >>"$T_DIR/bodies"
}
header() { tr -d '\r' <"$T_DIR/hdr" | sed -n "s/^$1: *//Ip" | head -1; }
is_json_error() { jq -e '.error | type == "string"' >/dev/null 2>&1 <<<"$BODY"; }
# err500 STATE [TEXT]: the answer is a 500 JSON error naming STATE (and TEXT), not a blob
err500() {
	expect_eq code 500 "$CODE" || return 1
	is_json_error || { echo "not a JSON error: $BODY"; return 1; }
	grep -qF -- "$1" <<<"$(unslash)" || { echo "does not name $1: $BODY"; return 1; }
	[ -z "${2:-}" ] || grep -qiF -- "$2" <<<"$BODY" || { echo "does not say '$2': $BODY"; return 1; }
}
same_bytes() { cmp "$1" "$2"; }
md5_ok() { expect_eq Content-MD5 "$(openssl md5 -binary "$T_DIR/got" | base64)" "$(header Content-MD5)"; }
etag_of_plain() { expect_eq ETag "\"$(git hash-object "$T_DIR/got")\"" "$(header ETag)"; }
# no_worker_died: the log since log_mark shows no worker ending
no_worker_died() { ! since_mark | grep -E 'worker [0-9]+ ended'; }
# stack_down: stops the last stack started
stack_down() { stop_pid "$STACK_NGINX_PID"; stop_pid "$STACK_POOL_PID"; }

# tamper IN OUT OFFSET: OUT is IN with the byte at OFFSET (negative: from the end) flipped
tamper() {
	local off=$3 b
	[ "$off" -ge 0 ] || off=$(($(size "$1") + off))
	cp "$1" "$2"
	b=$(od -An -tu1 -j "$off" -N 1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$2" bs=1 seek="$off" conv=notrunc status=none
}

# the Go reference implementation: built here, nothing written outside the test's directory
RC=""
if command -v go >/dev/null; then
	if GOCACHE=$T_DIR/gocache HOME=$T_DIR GOPATH=$T_DIR/gopath GOPROXY=off GOTOOLCHAIN=local GOFLAGS='' \
		go build -o "$T_DIR/refcrypt" "$ENC/refcrypt.go" >"$T_DIR/go.out" 2>&1; then
		RC=$T_DIR/refcrypt
		pass "refcrypt.go builds offline"
	else
		fail "refcrypt.go builds offline" "$(cat "$T_DIR/go.out")"
	fi
else
	skip "refcrypt.go builds offline" "go is not on the PATH"
fi
# gocheck NAME COMMAND...: check, or skip when refcrypt could not be built
gocheck() { if [ -n "$RC" ]; then check "$@"; else skip "$1" "no refcrypt (go)"; fi; }
HAVE_TF=$(command -v terraform >/dev/null && echo 1)

gocheck "refcrypt reads the committed fixtures (ref-aes.blob, tfgit-v1.blob)" eval \
	"'$RC' ref-decrypt '$PASS' <'$ENC/ref-aes.blob' | cmp - '$PLAIN' &&
	 '$RC' tfgit-decrypt '$ENC/tfgit-v1.key' envs/prod.tfstate <'$ENC/tfgit-v1.blob' | cmp - '$PLAIN'"
check "fixture sizes: ref = plain + 28, v1 = plain + 45" eval \
	"[ $(size "$ENC/ref-aes.blob") -eq $(($(size "$PLAIN") + 28)) ] && [ $(size "$ENC/tfgit-v1.blob") -eq $(($(size "$PLAIN") + 45)) ]"

sed 's/"serial": 3/"serial": 4/' "$PLAIN" >"$T_DIR/s4.json"
sed 's/"serial": 3/"serial": 5/' "$PLAIN" >"$T_DIR/s5.json"

# ---------------------------------------------------------------- reference-compatible mode
RR=$(new_remote ref)
put_blob "$RR" ref.tfstate "$ENC/ref-aes.blob"
tamper "$ENC/ref-aes.blob" "$T_DIR/ref-tag.blob" -1
put_blob "$RR" tampered-tag.tfstate "$T_DIR/ref-tag.blob"
tamper "$ENC/ref-aes.blob" "$T_DIR/ref-ct.blob" 100
put_blob "$RR" tampered-ct.tfstate "$T_DIR/ref-ct.blob"
head -c 27 "$ENC/ref-aes.blob" >"$T_DIR/ref-27.blob"
put_blob "$RR" short27.tfstate "$T_DIR/ref-27.blob"
head -c 5 "$ENC/ref-aes.blob" >"$T_DIR/ref-5.blob"
put_blob "$RR" short5.tfstate "$T_DIR/ref-5.blob"
: >"$T_DIR/empty.blob"
put_blob "$RR" empty.tfstate "$T_DIR/empty.blob"
stack_up ref "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RR" TF_BACKEND_HTTP_ENCRYPTION_PROVIDER=aes \
	TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE="$PASS"

get "state=ref.tfstate"
check "ref: the committed ref-aes.blob is read: GET 200" expect_eq code 200 "$CODE"
check "... the body is state.json byte for byte" same_bytes "$PLAIN" "$T_DIR/got"
check "... Content-MD5 is base64(md5) of the plaintext returned" md5_ok
check "... ETag is not the id of the stored (encrypted) blob" eval \
	"[ -n \"\$(header ETag)\" ] && [ \"\$(header ETag)\" != '\"$(g "$RR" rev-parse main:ref.tfstate)\"' ]"
check "... ETag is the git blob id of the plaintext (choice, see top)" etag_of_plain
n=$(tip "$RR")
post "state=ref.tfstate" "$PLAIN"
check "ref: POSTing the same clear text over the reference's blob is 200 and makes no commit" eval \
	"[ '$CODE' = 200 ] && [ '$(tip "$RR")' = '$n' ]"

post "state=new.tfstate" "$PLAIN"
check "ref: POST of state.json is 200" expect_eq code 200 "$CODE"
stored "$RR" new.tfstate
check "... the stored blob is plain + 28 bytes" expect_eq size $(($(size "$PLAIN") + 28)) "$(size "$T_DIR/stored")"
check "... and holds no clear text" eval "! grep -q fixture-secret-value '$T_DIR/stored'"
gocheck "... refcrypt (the reference's algorithm) decrypts it to the same bytes" eval \
	"'$RC' ref-decrypt '$PASS' <'$T_DIR/stored' | cmp - '$PLAIN'"
n=$(commits "$RR")
post "state=new.tfstate" "$PLAIN"
check "ref: the identical POST again is 200" expect_eq code 200 "$CODE"
check "... and makes no commit (plaintexts compared, not fresh ciphertexts)" expect_eq commits "$n" "$(commits "$RR")"
get "state=new.tfstate"
check "ref: tfgit reads back what it wrote" same_bytes "$PLAIN" "$T_DIR/got"

for t in tag:tampered-tag ct:tampered-ct; do
	get "state=${t#*:}.tfstate"
	check "ref: a flipped byte (${t%%:*}) is a 500 JSON naming the state, 'wrong key or damaged'" \
		err500 "${t#*:}.tfstate" "wrong key or damaged"
done
log_mark
for s in short27 short5 empty; do
	get "state=$s.tfstate"
	check "ref: a blob shorter than nonce + tag ($s) is a 500 JSON naming the state" err500 "$s.tfstate"
done
get "state=ref.tfstate"
check "... and the pool still serves the next request" expect_eq code 200 "$CODE"
check "... no worker died on the short blobs" no_worker_died

req LOCK "state=ref.tfstate" --data '{"ID":"enc-lock-1","Who":"t"}'
check "ref: LOCK is 200" expect_eq code 200 "$CODE"
check "... the lock file is clear-text JSON" eval \
	"g '$RR' show locks/ref.tfstate:ref.tfstate.lock | jq -e '.ID == \"enc-lock-1\"'"
req UNLOCK "state=ref.tfstate" --data '{"ID":"enc-lock-1"}'
check "... UNLOCK is 200" expect_eq code 200 "$CODE"

if [ -n "$HAVE_TF" ]; then
	tf_project "$T_DIR/tf-ref" "$URL?state=tf/terraform.tfstate"
	check "ref: terraform init and apply" tf_init_apply "$T_DIR/tf-ref" ref-mode-value-1
	stored "$RR" tf/terraform.tfstate
	check "... the stored state holds no clear text" eval "! grep -q ref-mode-value-1 '$T_DIR/stored'"
	gocheck "... refcrypt decrypts it to a state holding the value" eval \
		"'$RC' ref-decrypt '$PASS' <'$T_DIR/stored' | holds ref-mode-value-1"
	check "... terraform plan reads it back: no changes" eval \
		"(cd '$T_DIR/tf-ref' && terraform plan -no-color -input=false -detailed-exitcode)"
else
	for n in "ref: terraform init and apply" "... the stored state holds no clear text" \
		"... refcrypt decrypts it to a state holding the value" "... terraform plan reads it back: no changes"; do
		skip "$n" "terraform is not on the PATH"
	done
fi
# the passphrase and the key derived from it are in no process's command line while serving
echo "$PASS" >"$T_DIR/secrets"
printf %s "$PASS" | md5sum | cut -c1-32 >>"$T_DIR/secrets"
check "ref: no command line holds the passphrase or its key" eval \
	"! grep -alFf '$T_DIR/secrets' /proc/[0-9]*/cmdline"
stack_down

stack_up refwrong "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RR" TF_BACKEND_HTTP_ENCRYPTION_PROVIDER=aes \
	TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE="$WRONG_PASS"
echo "$WRONG_PASS" >>"$T_DIR/secrets"
printf %s "$WRONG_PASS" | md5sum | cut -c1-32 >>"$T_DIR/secrets"
log_mark
get "state=ref.tfstate"
check "ref: a wrong passphrase is a 500 JSON naming the state, 'wrong key or damaged'" \
	err500 ref.tfstate "wrong key or damaged"
check "... the body is not the ciphertext" eval "! cmp -s '$ENC/ref-aes.blob' '$T_DIR/got'"
check "... it is logged" eval "since_mark | grep -i 'wrong key or damaged'"
n=$(tip "$RR")
post "state=ref.tfstate" "$T_DIR/s4.json"
check "ref: a POST over a state the passphrase cannot read changes nothing (not 200)" eval \
	"[ '$CODE' != 200 ] && [ '$(tip "$RR")' = '$n' ]"
stack_down

# ---------------------------------------------------------------- built-in mode (v1)
KFIX=$(mkkey fix "$ENC/tfgit-v1.key")
KOTHER=$(mkkey other)
K1=$(mkkey k1)
K2=$(mkkey k2)
RV=$(new_remote v1)
RM=$(new_remote migrate)
put_blob "$RV" envs/prod.tfstate "$ENC/tfgit-v1.blob"
put_blob "$RV" envs/moved.tfstate "$ENC/tfgit-v1.blob"
tamper "$ENC/tfgit-v1.blob" "$T_DIR/v1-tag.blob" -1
put_blob "$RV" tampered-tag.tfstate "$T_DIR/v1-tag.blob"
tamper "$ENC/tfgit-v1.blob" "$T_DIR/v1-nonce.blob" 20
put_blob "$RV" tampered-nonce.tfstate "$T_DIR/v1-nonce.blob"
tamper "$ENC/tfgit-v1.blob" "$T_DIR/v1-version.blob" 8
put_blob "$RV" version.tfstate "$T_DIR/v1-version.blob"
head -c 44 "$ENC/tfgit-v1.blob" >"$T_DIR/v1-44.blob"
put_blob "$RV" short44.tfstate "$T_DIR/v1-44.blob"
head -c 10 "$ENC/tfgit-v1.blob" >"$T_DIR/v1-10.blob"
put_blob "$RV" short10.tfstate "$T_DIR/v1-10.blob"
put_blob "$RM" clear.tfstate "$PLAIN"
put_blob "$RM" envs/prod.tfstate "$ENC/tfgit-v1.blob"
stack_up v1 "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RV" TFGIT_ENCRYPTION_KEYS="$KFIX"

get "state=envs/prod.tfstate"
check "v1: the committed tfgit-v1.blob is read: GET 200" expect_eq code 200 "$CODE"
check "... the body is state.json byte for byte" same_bytes "$PLAIN" "$T_DIR/got"
check "... Content-MD5 is base64(md5) of the plaintext returned" md5_ok
check "... ETag is the git blob id of the plaintext (choice, see top)" etag_of_plain

post "state=envs/new.tfstate" "$PLAIN"
check "v1: POST of state.json is 200" expect_eq code 200 "$CODE"
stored "$RV" envs/new.tfstate
check "... the stored blob is plain + 45 bytes" expect_eq size $(($(size "$PLAIN") + 45)) "$(size "$T_DIR/stored")"
check "... it begins with TFGITENC and version 2 (written since issue 18)" expect_eq header "TFGITENC02" \
	"$(blob_head "$T_DIR/stored")"
check "... under the key's id" expect_eq "key id" "$(kid "$KFIX")" "$(blob_kid "$T_DIR/stored")"
check "... and holds no clear text" eval "! grep -q fixture-secret-value '$T_DIR/stored'"
gocheck "... refcrypt decrypts it (repository identity, branch main, path envs/new.tfstate bound) to the same bytes" eval \
	"'$RC' tfgit2-decrypt '$KFIX' '$(ident "$RV")' main envs/new.tfstate <'$T_DIR/stored' | cmp - '$PLAIN'"
gocheck "... and refcrypt refuses it under another path, branch or repository identity (all three bound)" eval \
	"! '$RC' tfgit2-decrypt '$KFIX' '$(ident "$RV")' main envs/prod.tfstate <'$T_DIR/stored' >/dev/null &&
	 ! '$RC' tfgit2-decrypt '$KFIX' '$(ident "$RV")' other envs/new.tfstate <'$T_DIR/stored' >/dev/null &&
	 ! '$RC' tfgit2-decrypt '$KFIX' '$(ident "$RM")' main envs/new.tfstate <'$T_DIR/stored' >/dev/null"
n=$(commits "$RV")
post "state=envs/new.tfstate" "$PLAIN"
check "v1: the identical POST again is 200 and makes no commit" eval \
	"[ '$CODE' = 200 ] && [ $n = $(commits "$RV") ]"

get "state=envs/moved.tfstate"
check "v1: a blob moved to another state path is a 500 JSON naming it, 'wrong key or damaged'" \
	err500 envs/moved.tfstate "wrong key or damaged"
check "... the body is not the ciphertext" eval "! cmp -s '$ENC/tfgit-v1.blob' '$T_DIR/got'"
for s in tampered-tag tampered-nonce; do
	get "state=$s.tfstate"
	check "v1: a flipped byte ($s) is a 500 JSON naming the state, 'wrong key or damaged'" \
		err500 "$s.tfstate" "wrong key or damaged"
done
log_mark
get "state=version.tfstate"
check "v1: an unknown format version is a 500 JSON naming the state" err500 version.tfstate
for s in short44 short10; do
	get "state=$s.tfstate"
	check "v1: a blob shorter than header + tag ($s) is a 500 JSON naming the state" err500 "$s.tfstate"
done
get "state=envs/prod.tfstate"
check "... and the pool still serves the next request; no worker died" eval \
	"[ '$CODE' = 200 ] && no_worker_died"

req LOCK "state=envs/prod.tfstate" --data '{"ID":"enc-lock-2"}'
check "v1: the lock file is clear-text JSON" eval \
	"[ '$CODE' = 200 ] && g '$RV' show locks/envs/prod.tfstate:envs/prod.tfstate.lock | jq -e '.ID == \"enc-lock-2\"'"
req UNLOCK "state=envs/prod.tfstate" --data '{"ID":"enc-lock-2"}'

# migration, encryption on without TFGIT_ENCRYPTION_MIGRATE: a clear-text state is an error
get "repository=$RM&state=clear.tfstate"
check "migrate: a clear-text state while encryption is on is a 500 JSON naming the state" err500 clear.tfstate
check "... the body is not the clear text" eval "! grep -q fixture-secret-value '$T_DIR/got'"
stack_down

stack_up v1other "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RV" TFGIT_ENCRYPTION_KEYS="$KOTHER"
get "state=envs/prod.tfstate"
check "v1: a blob under a key not configured is a 500 JSON naming the state" err500 envs/prod.tfstate
check "... and the missing key's id ($(kid "$KFIX"))" grep -qi "$(kid "$KFIX")" <<<"$BODY"
stack_down

# key files: 0600/0400 of the pool's user or root; base64 of exactly 32 bytes. A pool (--workers)
# checks the settings of its environment at start and stops on a bad one (as for every setting);
# a single responder (FCGI_WORKERS=0, as under a web server) answers 500 JSON per request.
cp "$KOTHER" "$KEYS/loose" && chown "$POOL_USER" "$KEYS/loose" && chmod 644 "$KEYS/loose"
head -c 16 /dev/urandom | base64 >"$KEYS/short" && chown "$POOL_USER" "$KEYS/short" && chmod 600 "$KEYS/short"
for k in loose short; do
	what=$([ $k = loose ] && echo "0644" || echo "base64 of 16 bytes")
	d=$T_DIR/refuse-$k
	( export FCGI_SOCKET=$d/tfgit.sock TFGIT_CACHE_DIR=$d/cache FCGI_WORKERS=2 TFGIT_DEFAULT_REF=main \
		TFGIT_DEFAULT_REPOSITORY="$RV" TFGIT_ENCRYPTION_KEYS="$KEYS/$k"
	  exec "$ROOT/scripts/pool.sh" ) >"$d.log" 2>&1 &
	pid=$!
	if wait_for 10 "the pool to refuse a bad key file" eval "! alive $pid"; then
		wait "$pid"; rc=$?
		check "v1: a pool refuses to start on a key file that is $what (exit $rc)" eval \
			"[ $rc -ne 0 ] && grep -F '$KEYS/$k' '$d.log'"
	else
		stop_pid "$pid"
		fail "v1: a pool refuses to start on a key file that is $what" "it was still running after 10 s"
	fi
	stack_up "key-$k" "${COMMON[@]}" FCGI_WORKERS=0 TFGIT_DEFAULT_REPOSITORY="$RV" TFGIT_ENCRYPTION_KEYS="$KEYS/$k"
	log_mark
	get "state=envs/prod.tfstate"
	check "v1: a single responder answers a 500 JSON while the key file is $what" \
		eval "[ '$CODE' = 500 ] && is_json_error"
	check "... the log names the key file" eval "since_mark | grep -F '$KEYS/$k'"
	stack_down
done

# ---------------------------------------------------------------- rotation through Terraform
RT=$(new_remote rotate)
TQ="state=tf/terraform.tfstate"
if [ -z "$HAVE_TF" ]; then
	for n in "rotation: apply with k1" "... the blob is under k1's id" "rotation: apply with \"k2 k1\"" \
		"... the new blob is under k2's id" "... the old (k1) version is still readable" \
		"rotation: with k2 only, terraform plan reads the current state: no changes" \
		"... apply again, under k2" "... the k1 version is a 500 naming k1's id"; do
		skip "$n" "terraform is not on the PATH"
	done
else
	stack_up rot1 "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RT" TFGIT_ENCRYPTION_KEYS="$K1"
	tf_project "$T_DIR/tf-rot1" "$URL?$TQ"
	check "rotation: apply with k1" tf_init_apply "$T_DIR/tf-rot1" rot-value-1
	stored "$RT" tf/terraform.tfstate
	check "... the blob is under k1's id" expect_eq "key id" "$(kid "$K1")" "$(blob_kid "$T_DIR/stored")"
	old=$(tip "$RT") # read later as version=$old: a blob is bound to its branch
	stack_down

	stack_up rot2 "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RT" TFGIT_ENCRYPTION_KEYS="$K2 $K1"
	tf_project "$T_DIR/tf-rot2" "$URL?$TQ"
	check "rotation: apply with \"k2 k1\"" tf_init_apply "$T_DIR/tf-rot2" rot-value-2
	stored "$RT" tf/terraform.tfstate
	check "... the new blob is under k2's id" expect_eq "key id" "$(kid "$K2")" "$(blob_kid "$T_DIR/stored")"
	gocheck "... refcrypt decrypts it with k2 and the path tf/terraform.tfstate (Terraform sent it %-encoded)" eval \
		"'$RC' tfgit2-decrypt '$K2' '$(ident "$RT")' main tf/terraform.tfstate <'$T_DIR/stored' | holds rot-value-2"
	get "version=$old&$TQ"
	check "... the old (k1) version is still readable" eval \
		"[ '$CODE' = 200 ] && holds rot-value-1 <'$T_DIR/got'"
	stack_down

	stack_up rot3 "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RT" TFGIT_ENCRYPTION_KEYS="$K2"
	tf_project "$T_DIR/tf-rot3" "$URL?$TQ"
	printf 'resource "terraform_data" "x" {\n  input = "rot-value-2"\n}\n' >"$T_DIR/tf-rot3/main.tf"
	check "rotation: with k2 only, terraform plan reads the current state: no changes" eval \
		"(cd '$T_DIR/tf-rot3' && terraform init -no-color -input=false && terraform plan -no-color -input=false -detailed-exitcode) >'$T_DIR/tf.out' 2>&1 || { tail -20 '$T_DIR/tf.out'; false; }"
	check "... apply again, under k2" eval \
		"tf_init_apply '$T_DIR/tf-rot3' rot-value-3 && stored '$RT' tf/terraform.tfstate && [ \"\$(blob_kid '$T_DIR/stored')\" = '$(kid "$K2")' ]"
	get "version=$old&$TQ"
	check "... the k1 version is a 500 naming k1's id" eval \
		"err500 tf/terraform.tfstate && grep -qi '$(kid "$K1")' <<<\"\$BODY\""
	stack_down
fi

# ---------------------------------------------------------------- tfgit reencrypt (rotation at rest)
# Not in the test brief, but in the issue and README: the operators' command writes every state
# sealed with an older key, or in format 1 (issue 18), again under the first key in format 2, in
# one commit; what it cannot read (a blob sealed for another repository) it leaves.
RE=$(new_remote reencrypt)
# cli_reencrypt KEYS [ARGS...]: tfgit reencrypt on RE's main as the pool's user, output in reencrypt.out
cli_reencrypt() {
	local keys=$1
	shift
	runuser -u "$POOL_USER" -- env TFGIT_CACHE_DIR="$T_DIR/cli-cache" TFGIT_DEFAULT_REPOSITORY="$RE" \
		TFGIT_ENCRYPTION_KEYS="$keys" "$@" "$T_DIR/tfgit" reencrypt --repository "$RE" --ref main \
		>"$T_DIR/reencrypt.out" 2>&1 || { cat "$T_DIR/reencrypt.out"; return 1; }
}
# v2_under KEY PATH PLAINFILE: RE's main:PATH is format 2 under KEY, bound to RE, main and PATH,
# and opens to PLAINFILE's bytes (refcrypt)
v2_under() {
	g "$RE" cat-file blob "main:$2" >"$T_DIR/re.out" &&
		expect_eq "$2's header" TFGITENC02 "$(blob_head "$T_DIR/re.out")" &&
		"$RC" tfgit2-decrypt "$1" "$(ident "$RE")" main "$2" <"$T_DIR/re.out" | cmp - "$3"
}
if [ -n "$RC" ] && [ -x "$BUILD_DIR/tfgit" ]; then
	"$RC" tfgit-encrypt "$K1" a.tfstate <"$PLAIN" >"$T_DIR/re-a.blob"
	"$RC" tfgit2-encrypt "$K1" "$(ident "$RE")" main envs/b.tfstate <"$T_DIR/s4.json" >"$T_DIR/re-b.blob"
	"$RC" tfgit2-encrypt "$K2" "$(ident "$RE")" main c.tfstate <"$T_DIR/s5.json" >"$T_DIR/re-c.blob"
	"$RC" tfgit-encrypt "$K2" d.tfstate <"$T_DIR/s5.json" >"$T_DIR/re-d.blob"
	"$RC" tfgit2-encrypt "$K1" "$(ident "$RV")" main f.tfstate <"$T_DIR/s5.json" >"$T_DIR/re-f.blob"
	printf 'not a state\n' >"$T_DIR/re-readme"
	put_blob "$RE" a.tfstate "$T_DIR/re-a.blob"
	put_blob "$RE" envs/b.tfstate "$T_DIR/re-b.blob"
	put_blob "$RE" c.tfstate "$T_DIR/re-c.blob"
	put_blob "$RE" d.tfstate "$T_DIR/re-d.blob"
	put_blob "$RE" envs/prod.tfstate "$ENC/tfgit-v1.blob" # format 1, made once (see refcrypt.go)
	put_blob "$RE" f.tfstate "$T_DIR/re-f.blob"           # sealed for repository RV, under k1
	put_blob "$RE" README.md "$T_DIR/re-readme"
	before=$(tip "$RE")
	declare -A kept=()
	for f in c.tfstate f.tfstate README.md; do kept[$f]=$(g "$RE" rev-parse "main:$f"); done
	untouched() { local f; for f in "${!kept[@]}"; do expect_eq "$f" "${kept[$f]}" "$(g "$RE" rev-parse "main:$f")" || return 1; done; }
	install -m 755 "$BUILD_DIR/tfgit" "$T_DIR/tfgit"
	install -d -m 700 -o "$POOL_USER" "$T_DIR/cli-cache"
	check "reencrypt: tfgit reencrypt with \"k2 k1 fix\" succeeds" cli_reencrypt "$K2 $K1 $KFIX"
	check "... in one commit" expect_eq "parent of the new tip" "$before" "$(g "$RE" rev-parse -q --verify main~1 2>/dev/null)"
	check "... a.tfstate (format 1, k1) and envs/b.tfstate (format 2, k1) are now format 2 under k2, same clear text" eval \
		"v2_under '$K2' a.tfstate '$PLAIN' && v2_under '$K2' envs/b.tfstate '$T_DIR/s4.json'"
	check "... d.tfstate (format 1 under k2, the current key) is re-sealed in format 2" \
		v2_under "$K2" d.tfstate "$T_DIR/s5.json"
	check "... the committed format-1 fixture (envs/prod.tfstate) is re-sealed in format 2 under k2" \
		v2_under "$K2" envs/prod.tfstate "$PLAIN"
	check "... c.tfstate (format 2, k2), f.tfstate (another repository's, k1: never re-sealed here) and README.md are untouched" untouched
	check "... and it says some files were left" grep -q "some files left" "$T_DIR/reencrypt.out"
	n=$(tip "$RE")
	check "reencrypt: run again, nothing is left to re-seal (format 2 is not stale): no commit" eval \
		"cli_reencrypt '$K2 $K1 $KFIX' && grep -q 'nothing to re-encrypt' '$T_DIR/reencrypt.out' && [ '$(tip "$RE")' = '$n' ]"
	# TFGIT_ENCRYPTION_REFUSE_V1=1, once every branch is re-sealed: format 1 is no longer read
	put_blob "$RE" envs/prod.tfstate "$ENC/tfgit-v1.blob" v1
	stack_up refusev1 "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RE" TFGIT_ENCRYPTION_KEYS="$K2 $KFIX" \
		TFGIT_ENCRYPTION_REFUSE_V1=1
	get "state=envs/prod.tfstate"
	check "refuse-v1: the re-sealed state (format 2) is read: GET 200, state.json" eval \
		"[ '$CODE' = 200 ] && cmp '$PLAIN' '$T_DIR/got'"
	get "ref=v1&state=envs/prod.tfstate"
	check "... a format-1 blob is a 500 JSON naming the state and TFGIT_ENCRYPTION_REFUSE_V1" \
		err500 envs/prod.tfstate TFGIT_ENCRYPTION_REFUSE_V1
	check "... the body is not the clear text" eval "! grep -q fixture-secret-value '$T_DIR/got'"
	n=$(tip "$RE" v1)
	post "ref=v1&state=envs/prod.tfstate" "$T_DIR/s4.json"
	check "... a POST over it is refused too, nothing written" eval "[ '$CODE' = 500 ] && [ '$(tip "$RE" v1)' = '$n' ]"
	stack_down
	runuser -u "$POOL_USER" -- env TFGIT_CACHE_DIR="$T_DIR/cli-cache" TFGIT_DEFAULT_REPOSITORY="$RE" \
		TFGIT_ENCRYPTION_KEYS="$K2 $KFIX" TFGIT_ENCRYPTION_REFUSE_V1=1 "$T_DIR/tfgit" reencrypt --ref v1 \
		>"$T_DIR/reencrypt.out" 2>&1
	check "refuse-v1: tfgit reencrypt does not read format 1 either (nothing re-sealed on branch v1)" eval \
		"grep -q 'nothing to re-encrypt' '$T_DIR/reencrypt.out' && [ '$(tip "$RE" v1)' = '$n' ]"
else
	skip "reencrypt: tfgit reencrypt" "no refcrypt (go) or no build/tfgit"
fi

# ---------------------------------------------------------------- bound to the repository (issue 18)
# Who can read repository A's objects and push to B copies A's sealed state into B at the same
# path (plain git): a user of B must not read A's clear text through tfgit, nor tfgit replace it.
RBA=$(new_remote bind-a)
RBB=$(new_remote bind-b)
# push_copy FROM TO PATH: FROM's main:PATH bytes pushed as PATH on TO's main, as anyone who can
# read FROM and push to TO would (git clone, commit, push; the clone is kept in work-copy). git's
# local transport drops GIT_CONFIG_* for its upload-pack and receive-pack: safe.directory (the
# remotes are the pool user's) comes from a global config of the test's own
GITHOME=$T_DIR/githome
mkdir -p "$GITHOME" && printf '[safe]\n\tdirectory = *\n' >"$GITHOME/.gitconfig"
push_copy() {
	local w=$T_DIR/work-copy
	local -x HOME=$GITHOME
	rm -rf "$w"
	git clone -q "$2" "$w" 2>/dev/null && git -C "$w" checkout -q -B main origin/main || return 1
	mkdir -p "$w/$(dirname "$3")"
	g "$1" cat-file blob "main:$3" >"$w/$3" || return 1
	git -C "$w" add "$3" && git -C "$w" commit -q -m "copy $3" && git -C "$w" push -q origin main || return 1
	chown -R --reference="$2" "$2"
}
sed 's/fixture-secret-value/b-own-value/' "$PLAIN" >"$T_DIR/b.json"
# a sibling directory of A without .git: another repository, never A's identity (review of issue 18)
RBS=${RBA%.git}
git init -q --bare "$RBS" && chown -R "$POOL_USER" "$RBS"
stack_up bind "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RBA" TFGIT_ENCRYPTION_KEYS="$K1" \
	"TFGIT_ALLOWED_REPOS=$T_DIR/remotes/*.git $RBS"
post "state=app/db.tfstate" "$PLAIN"
check "bind: A's state written (200)" expect_eq code 200 "$CODE"
post "repository=$RBB&state=app/other.tfstate" "$T_DIR/b.json"
check "bind: B has a state of its own (200)" expect_eq code 200 "$CODE"
check "bind: A's sealed app/db.tfstate pushed into B at the same path with plain git" push_copy "$RBA" "$RBB" app/db.tfstate
bt=$(tip "$RBB")
check "... the copy is the very blob A holds" expect_eq blob "$(g "$RBA" rev-parse main:app/db.tfstate)" \
	"$(g "$RBB" rev-parse main:app/db.tfstate 2>&1)"
log_mark
get "repository=$RBB&state=app/db.tfstate"
check "bind: GET of the copy through B is a 500 JSON naming the state, 'wrong key or damaged'" \
	err500 app/db.tfstate "wrong key or damaged"
check "... it says the blob may be sealed for another repository" grep -qi "another repository" <<<"$BODY"
check "... no clear text in the body, nor the ciphertext" eval \
	"! grep -q fixture-secret-value '$T_DIR/got' && ! g '$RBA' cat-file blob main:app/db.tfstate | cmp -s - '$T_DIR/got'"
check "... the log names B's repository identity" eval "since_mark | grep -qF 'repository identity $(ident "$RBB")'"
post "repository=$RBB&state=app/db.tfstate" "$T_DIR/b.json"
check "bind: a POST over the copy in B is refused, B unchanged" eval \
	"[ '$CODE' = 500 ] && [ '$(tip "$RBB")' = '$bt' ]"
get "repository=$RBB&state=app/other.tfstate"
check "... B's own state still reads" eval "[ '$CODE' = 200 ] && cmp '$T_DIR/b.json' '$T_DIR/got'"
get "state=app/db.tfstate"
check "... and A's in A" eval "[ '$CODE' = 200 ] && cmp '$PLAIN' '$T_DIR/got'"
check "bind: A's main pushed into ${RBS##*/}, A's sibling without .git (plain git)" eval \
	"HOME='$GITHOME' git --git-dir='$RBA' push -q '$RBS' main:main && chown -R --reference='$RBA' '$RBS'"
get "repository=$RBS&state=app/db.tfstate"
check "bind: GET of it there is a 500, no clear text (a and a.git are two identities)" eval \
	"err500 app/db.tfstate 'wrong key or damaged' && ! grep -q fixture-secret-value '$T_DIR/got'"
# the same blob on another branch of the same repository
check "bind: A's main pushed as branch other of A (plain git: a branch made from another)" eval \
	"HOME='$GITHOME' git -C '$T_DIR/work-copy' fetch -q '$RBA' main && HOME='$GITHOME' git -C '$T_DIR/work-copy' push -q '$RBA' FETCH_HEAD:refs/heads/other &&
	 chown -R --reference='$RBA' '$RBA'"
at=$(tip "$RBA" other)
get "ref=other&state=app/db.tfstate"
check "bind: GET on the other branch is a 500 JSON naming the state, not the clear text" eval \
	"err500 app/db.tfstate 'wrong key or damaged' && ! grep -q fixture-secret-value '$T_DIR/got'"
check "... nothing changed on that branch" expect_eq tip "$at" "$(tip "$RBA" other)"
gocheck "... refcrypt opens the blob bound to A's identity and main, and not to B's or to other" eval \
	"g '$RBA' cat-file blob main:app/db.tfstate >'$T_DIR/bound' &&
	 '$RC' tfgit2-decrypt '$K1' '$(ident "$RBA")' main app/db.tfstate <'$T_DIR/bound' | cmp - '$PLAIN' &&
	 ! '$RC' tfgit2-decrypt '$K1' '$(ident "$RBB")' main app/db.tfstate <'$T_DIR/bound' >/dev/null &&
	 ! '$RC' tfgit2-decrypt '$K1' '$(ident "$RBA")' other app/db.tfstate <'$T_DIR/bound' >/dev/null"
# format 1 was bound to the path only: the committed fixture, copied anywhere at its path, opens
# (what README says until tfgit reencrypt and TFGIT_ENCRYPTION_REFUSE_V1=1)
stack_down

# TFGIT_REPOSITORY_IDS: a repository that moves keeps its identity
RX=$(new_remote move-x)
stack_up idx "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RX" TFGIT_ENCRYPTION_KEYS="$K1" \
	TFGIT_REPOSITORY_IDS="$RX=infra-prod"
post "state=app/db.tfstate" "$PLAIN"
check "ids: a state written to X under TFGIT_REPOSITORY_IDS=X=infra-prod (200)" expect_eq code 200 "$CODE"
stored "$RX" app/db.tfstate
gocheck "... it is bound to the ID infra-prod, not to X's URL" eval \
	"'$RC' tfgit2-decrypt '$K1' infra-prod main app/db.tfstate <'$T_DIR/stored' | cmp - '$PLAIN' &&
	 ! '$RC' tfgit2-decrypt '$K1' '$(ident "$RX")' main app/db.tfstate <'$T_DIR/stored' >/dev/null"
stack_down
RY=$T_DIR/remotes/move-y.git
cp -a "$RX" "$RY"
stack_up idy "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RY" TFGIT_ENCRYPTION_KEYS="$K1" \
	TFGIT_REPOSITORY_IDS="$RY=infra-prod"
get "state=app/db.tfstate"
check "ids: moved to Y with TFGIT_REPOSITORY_IDS=Y=infra-prod, the state is read: GET 200" eval \
	"[ '$CODE' = 200 ] && cmp '$PLAIN' '$T_DIR/got'"
stack_down
stack_up idnone "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RY" TFGIT_ENCRYPTION_KEYS="$K1"
get "state=app/db.tfstate"
check "ids: at Y without the setting it is refused (500 naming the state, not the clear text)" eval \
	"err500 app/db.tfstate && ! grep -q fixture-secret-value '$T_DIR/got'"
stack_down
# tfgit doctor names the identity the default repository's states are bound to
install -d -m 700 -o "$POOL_USER" "$T_DIR/doc-cache"
doctor() {
	runuser -u "$POOL_USER" -- env TFGIT_CACHE_DIR="$T_DIR/doc-cache" TFGIT_DEFAULT_REPOSITORY="$RY" TFGIT_DEFAULT_REF=main \
		TFGIT_ENCRYPTION_KEYS="$K1" "$@" "$TFGIT_CLI_BIN" doctor 2>&1
}
doc_out=$(doctor)
doc_rc=$?
check "ids: tfgit doctor names the identity: Y's URL identity without the setting, infra-prod with it" eval \
	"grep -qF 'bound to its identity $(ident "$RY") ' <<<\"\$doc_out\" &&
	 doctor TFGIT_REPOSITORY_IDS='$RY=infra-prod' | grep -qF 'bound to its identity infra-prod '"
check "... without the setting, the state sealed for infra-prod does not open: a problem naming it (exit 1)" eval \
	"[ $doc_rc = 1 ] && grep -q '^problem: state app/db.tfstate on branch main does not open' <<<\"\$doc_out\""
# malformed or unsafe values fail closed: one ID for two repositories, no URL=ID, no keys
for v in "ids2:$RX=infra-prod $RY=infra-prod" "noeq:$RX" "nokeys:$RX=infra-prod"; do
	name=${v%%:*}
	keys=$([ "$name" = nokeys ] || echo "TFGIT_ENCRYPTION_KEYS=$K1")
	stack_up "ids-$name" "${COMMON[@]}" FCGI_WORKERS=0 TFGIT_DEFAULT_REPOSITORY="$RY" ${keys:+"$keys"} \
		TFGIT_REPOSITORY_IDS="${v#*:}"
	log_mark
	get "state=app/db.tfstate"
	check "ids: TFGIT_REPOSITORY_IDS refused ($name): GET is a 500 JSON, no state; the log names the setting" eval \
		"[ '$CODE' = 500 ] && is_json_error && ! grep -q fixture-secret-value '$T_DIR/got' &&
		 since_mark | grep -q TFGIT_REPOSITORY_IDS"
	stack_down
done

# ---------------------------------------------------------------- migration
stack_up migenc "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RM" TFGIT_ENCRYPTION_KEYS="$KFIX" \
	TFGIT_ENCRYPTION_MIGRATE=encrypt
get "state=clear.tfstate"
check "migrate=encrypt: a clear-text state is read: GET 200, the clear text" eval \
	"[ '$CODE' = 200 ] && cmp '$PLAIN' '$T_DIR/got'"
get "state=envs/prod.tfstate"
check "... an encrypted one too" eval "[ '$CODE' = 200 ] && cmp '$PLAIN' '$T_DIR/got'"
post "state=clear.tfstate" "$T_DIR/s4.json"
stored "$RM" clear.tfstate
check "... the next POST is 200 and stores a format 2 blob under the key" eval \
	"[ '$CODE' = 200 ] && [ \"\$(blob_head '$T_DIR/stored')\" = TFGITENC02 ] && [ \"\$(blob_kid '$T_DIR/stored')\" = '$(kid "$KFIX")' ]"
gocheck "... which refcrypt decrypts to the POSTed bytes" eval \
	"'$RC' tfgit2-decrypt '$KFIX' '$(ident "$RM")' main clear.tfstate <'$T_DIR/stored' | cmp - '$T_DIR/s4.json'"
get "state=clear.tfstate"
check "... and GET returns them" eval "[ '$CODE' = 200 ] && cmp '$T_DIR/s4.json' '$T_DIR/got'"
get "repository=$RR&state=ref.tfstate"
check "... a reference (aes) blob is not taken for clear text: a 500 JSON, not the blob" eval \
	"err500 ref.tfstate && ! cmp -s '$ENC/ref-aes.blob' '$T_DIR/got'"
stack_down

stack_up migdec "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RM" TFGIT_ENCRYPTION_KEYS="$KFIX" \
	TFGIT_ENCRYPTION_MIGRATE=decrypt
get "state=envs/prod.tfstate"
check "migrate=decrypt: an encrypted state is read: GET 200, the plaintext" eval \
	"[ '$CODE' = 200 ] && cmp '$PLAIN' '$T_DIR/got'"
post "state=envs/prod.tfstate" "$T_DIR/s5.json"
stored "$RM" envs/prod.tfstate
check "... the next POST is 200 and stores the clear text byte for byte" eval \
	"[ '$CODE' = 200 ] && cmp '$T_DIR/s5.json' '$T_DIR/stored'"
get "state=envs/prod.tfstate"
check "... and GET returns it" eval "[ '$CODE' = 200 ] && cmp '$T_DIR/s5.json' '$T_DIR/got'"
stack_down

stack_up off "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RM"
get "state=clear.tfstate"
check "encryption off: a tfgit blob is a 500 JSON naming the state (not the blob)" err500 clear.tfstate
get "state=envs/prod.tfstate"
check "... a clear-text state is read as ever" eval "[ '$CODE' = 200 ] && cmp '$T_DIR/s5.json' '$T_DIR/got'"
get "repository=$RR&state=ref.tfstate"
check "... a reference (aes) blob is a 500 JSON naming the state, not the blob" eval \
	"err500 ref.tfstate && ! cmp -s '$ENC/ref-aes.blob' '$T_DIR/got'"
stack_down

# ---------------------------------------------------------------- filters: age and gpg
RA=$(new_remote age)
AGEKEY=$KEYS/age.key
if command -v age >/dev/null && command -v age-keygen >/dev/null; then
	age-keygen -o "$AGEKEY" 2>/dev/null
	chown "$POOL_USER" "$AGEKEY" && chmod 600 "$AGEKEY"
	grep '^AGE-SECRET-KEY-' "$AGEKEY" >>"$T_DIR/secrets"
	recipient=$(age-keygen -y "$AGEKEY")
	stack_up age "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RA" TFGIT_ENCRYPT_CMD="age -r $recipient" \
		TFGIT_DECRYPT_CMD="age -d -i $AGEKEY"
	if [ -n "$HAVE_TF" ]; then
		tf_project "$T_DIR/tf-age" "$URL?$TQ"
		check "age: terraform init and apply" tf_init_apply "$T_DIR/tf-age" age-value-1
		stored "$RA" tf/terraform.tfstate
		check "... the stored blob is age's output, without the clear text" eval \
			"[ \"\$(head -c 21 '$T_DIR/stored')\" = age-encryption.org/v1 ] && ! grep -q age-value-1 '$T_DIR/stored'"
		check "... age -d gives the state" eval \
			"age -d -i '$AGEKEY' <'$T_DIR/stored' | holds age-value-1"
		check "... terraform plan reads it back: no changes" eval \
			"(cd '$T_DIR/tf-age' && terraform plan -no-color -input=false -detailed-exitcode)"
	else
		for n in "age: terraform init and apply" "... the stored blob is age's output, without the clear text" \
			"... age -d gives the state" "... terraform plan reads it back: no changes"; do
			skip "$n" "terraform is not on the PATH"
		done
	fi
	post "state=s.tfstate" "$PLAIN"
	get "state=s.tfstate"
	check "age: POST then GET gives state.json byte for byte" eval "[ '$CODE' = 200 ] && cmp '$PLAIN' '$T_DIR/got'"
	check "... ETag and Content-MD5 are of the plaintext" eval "md5_ok && etag_of_plain"
	n=$(commits "$RA")
	post "state=s.tfstate" "$PLAIN"
	check "... an identical POST makes no commit (age's output differs each time)" eval \
		"[ '$CODE' = 200 ] && [ $n = $(commits "$RA") ]"
	stack_down
else
	skip "age filter" "age is not installed (scripts/deps.sh)"
fi

RG=$(new_remote gpg)
if command -v gpg >/dev/null; then
	install -d -m 700 -o "$POOL_USER" "$GH"
	echo "$GPG_PASS" >"$KEYS/gpg.pass" && chown "$POOL_USER" "$KEYS/gpg.pass" && chmod 600 "$KEYS/gpg.pass"
	echo "$GPG_PASS" >>"$T_DIR/secrets"
	gpg_opts="--homedir $GH --batch --quiet --pinentry-mode loopback --passphrase-file $KEYS/gpg.pass"
	stack_up gpg "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RG" \
		TFGIT_ENCRYPT_CMD="gpg $gpg_opts --yes --symmetric --cipher-algo AES256 --output -" \
		TFGIT_DECRYPT_CMD="gpg $gpg_opts --decrypt"
	if [ -n "$HAVE_TF" ]; then
		tf_project "$T_DIR/tf-gpg" "$URL?$TQ"
		check "gpg: terraform init and apply" tf_init_apply "$T_DIR/tf-gpg" gpg-value-1
		stored "$RG" tf/terraform.tfstate
		check "... the stored blob is an OpenPGP message without the clear text" eval \
			"[ \"\$(od -An -tx1 -N 1 '$T_DIR/stored' | tr -d ' ')\" = 8c ] && ! grep -q gpg-value-1 '$T_DIR/stored'"
		# shellcheck disable=SC2086 # gpg_opts is a word list
		check "... gpg --decrypt gives the state" eval \
			"runuser -u '$POOL_USER' -- gpg $gpg_opts --decrypt <'$T_DIR/stored' | holds gpg-value-1"
		check "... terraform plan reads it back: no changes" eval \
			"(cd '$T_DIR/tf-gpg' && terraform plan -no-color -input=false -detailed-exitcode)"
	else
		for n in "gpg: terraform init and apply" "... the stored blob is an OpenPGP message without the clear text" \
			"... gpg --decrypt gives the state" "... terraform plan reads it back: no changes"; do
			skip "$n" "terraform is not on the PATH"
		done
	fi
	post "state=s.tfstate" "$PLAIN"
	get "state=s.tfstate"
	check "gpg: POST then GET gives state.json byte for byte" eval "[ '$CODE' = 200 ] && cmp '$PLAIN' '$T_DIR/got'"
	stack_down
	gpg_stop
else
	skip "gpg filter" "gpg is not installed (scripts/deps.sh)"
fi

# ---------------------------------------------------------------- filters that fail closed
RF=$(new_remote filters)
commit_file "$RF" main f.tfstate 'opaque-stored-blob' >/dev/null

# hung_left: a `sleep 60` (or a shell running it) of the pool's user, started since the tick
# count HUNG_SINCE, from this test's pools (the stack's FCGI_SOCKET, under $T_DIR, is in its
# environment: filters lose only tfgit's settings and secrets), still runs; prints the pids.
ticks_now() { awk -v hz="$(getconf CLK_TCK)" '{print int($1 * hz)}' /proc/uptime; }
hung_left() {
	local p found=1
	for p in $(pgrep -u "$POOL_USER" -f 'sleep 60'); do # one scan: the filter lives 2 s only
		[ "$(awk '{print $22}' "/proc/$p/stat" 2>/dev/null || echo 0)" -ge "$HUNG_SINCE" ] || continue
		grep -qsaF "$T_DIR/" "/proc/$p/environ" || continue
		echo "$p"
		found=0
	done
	return $found
}

# a POST of a new state runs the encrypt command only; a GET of f.tfstate the decrypt command
stack_up fexit "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RF" \
	TFGIT_ENCRYPT_CMD='echo enc-filter-said-no >&2; exit 1' TFGIT_DECRYPT_CMD='echo dec-filter-said-no >&2; exit 1'
before=$(tip "$RF")
log_mark
post "state=new.tfstate" "$PLAIN"
check "filter exit 1: POST is a 500 JSON" eval "[ '$CODE' = 500 ] && is_json_error"
check "... nothing written (branch tip unchanged)" expect_eq tip "$before" "$(tip "$RF")"
check "... the command's stderr is in the log" eval "since_mark | grep -q enc-filter-said-no"
post "state=f.tfstate" "$PLAIN"
check "... a POST over a stored state is a 500 too, nothing written" eval \
	"[ '$CODE' = 500 ] && [ '$(tip "$RF")' = '$before' ]"
log_mark
get "state=f.tfstate"
check "filter exit 1: GET is a 500 JSON, not the stored blob" eval \
	"[ '$CODE' = 500 ] && is_json_error && ! grep -q opaque-stored-blob '$T_DIR/got'"
check "... the command's stderr is in the log; no worker died" eval \
	"since_mark | grep -q dec-filter-said-no && no_worker_died"
stack_down

stack_up fempty "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RF" TFGIT_ENCRYPT_CMD=true TFGIT_DECRYPT_CMD=true
log_mark
post "state=new.tfstate" "$PLAIN"
check "filter with empty output (true): POST is a 500 JSON, nothing written" eval \
	"[ '$CODE' = 500 ] && is_json_error && [ '$(tip "$RF")' = '$before' ]"
get "state=f.tfstate"
check "... GET is a 500 JSON" eval "[ '$CODE' = 500 ] && is_json_error"
post "state=new.tfstate" "$PLAIN"
check "... and the pool still answers; no worker died (the filter read no stdin)" eval \
	"[ '$CODE' = 500 ] && no_worker_died"
stack_down

# a decrypt filter whose output is not a state: never handed to Terraform
stack_up fgarbage "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RF" TFGIT_ENCRYPT_CMD=cat \
	TFGIT_DECRYPT_CMD="echo notjson"
get "state=f.tfstate"
check "a decrypt filter that prints something not a state: GET is a 500 JSON, not its output" eval \
	"[ '$CODE' = 500 ] && is_json_error && ! grep -q notjson <<<\"\$BODY\""
stack_down

stack_up fhang "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RF" TFGIT_ENCRYPT_CMD='sleep 60' \
	TFGIT_DECRYPT_CMD='sleep 60' TFGIT_FILTER_TIMEOUT=2
HUNG_SINCE=$(ticks_now)
start=$SECONDS
curl -s -o "$T_DIR/hang.body" -w '%{http_code}' --max-time 60 --data-binary "@$PLAIN" \
	"$URL?state=new.tfstate" >"$T_DIR/hang.code" &
cpid=$!
# the detection itself is proved: the hanging command is found while it hangs
check "filter hanging: the command is seen running (the kill check below can see it)" \
	wait_for 5 "the hanging filter to show" hung_left
wait "$cpid"
took=$((SECONDS - start))
CODE=$(cat "$T_DIR/hang.code") BODY=$(cat "$T_DIR/hang.body")
printf '%s\n' "$BODY" >>"$T_DIR/bodies"
check "filter hanging past TFGIT_FILTER_TIMEOUT=2: POST is a 500 JSON within 10 s (took ${took}s)" eval \
	"[ '$CODE' = 500 ] && is_json_error && [ $took -le 10 ]"
check "... the hung commands are killed (none left within 5 s)" \
	wait_for 5 "the hung filter to go" eval "! hung_left >/dev/null"
check "... nothing written" expect_eq tip "$before" "$(tip "$RF")"
start=$SECONDS
get "state=f.tfstate"
took=$((SECONDS - start))
check "... GET is a 500 JSON within 10 s (took ${took}s)" eval "[ '$CODE' = 500 ] && is_json_error && [ $took -le 10 ]"
check "... and the GET's hung command is killed too" \
	wait_for 5 "the hung filter to go" eval "! hung_left >/dev/null"
for p in $(hung_left); do kill "$p" 2>/dev/null; done # what tfgit left: ours to end
stack_down

# the filters' environment: none of tfgit's settings or secrets (README: "They never see tfgit's
# own secrets (GIT_PASSWORD, TFGIT_*, the passphrase) in their environment")
install -d -m 700 -o "$POOL_USER" "$T_DIR/fenv"
stack_up fenv "${COMMON[@]}" TFGIT_DEFAULT_REPOSITORY="$RF" GIT_PASSWORD=tfgit-TEST-git-password \
	TFGIT_ENCRYPT_CMD="env >$T_DIR/fenv/enc.env; cat" TFGIT_DECRYPT_CMD="env >$T_DIR/fenv/dec.env; cat"
echo tfgit-TEST-git-password >>"$T_DIR/secrets"
post "state=env.tfstate" "$PLAIN"
get "state=env.tfstate"
check "filters: a filter's environment has no TFGIT_* setting and no GIT_PASSWORD" eval \
	"[ -s '$T_DIR/fenv/enc.env' ] && [ -s '$T_DIR/fenv/dec.env' ] &&
	 ! grep -E '^(TFGIT_|GIT_PASSWORD|TF_BACKEND_HTTP_ENCRYPTION)' '$T_DIR/fenv/enc.env' '$T_DIR/fenv/dec.env'"
stack_down

# ---------------------------------------------------------------- secrets and commit messages
for k in "$KFIX" "$KOTHER" "$K1" "$K2"; do
	tr -d ' \n' <"$k" >>"$T_DIR/secrets" && echo >>"$T_DIR/secrets"
	base64 -d <"$k" | od -An -tx1 | tr -d ' \n' >>"$T_DIR/secrets" && echo >>"$T_DIR/secrets"
done
check "secrets: no passphrase or key material in the pool log" eval "! grep -aFf '$T_DIR/secrets' '$T_DIR/pool.log'"
check "... nor in nginx's log" eval "! grep -aFf '$T_DIR/secrets' '$T_DIR/nginx.log'"
check "... nor in any answer" eval "! grep -aFf '$T_DIR/secrets' '$T_DIR/bodies'"
check "... nor in any process's command line" eval "! grep -alFf '$T_DIR/secrets' /proc/[0-9]*/cmdline"
check "commit messages carry no state content" eval \
	"! for r in '$RR' '$RV' '$RM' '$RT' '$RE' '$RA' '$RG' '$RF' '$RBA' '$RBB' '$RX'; do g \"\$r\" log --all --format=%B 2>/dev/null; done |
	 grep -E 'fixture-secret-value|-value-[0-9]|\"lineage\"'"
finish
