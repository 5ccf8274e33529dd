#!/usr/bin/env bash
# The TFGIT_* settings that change behaviour, nginx's own body limit answering in JSON, and a
# misspelt setting failing closed (issue 18) from spawn-fcgi.conf, the environment, the command.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

R=$(new_remote settings)
stack_up settings TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_DEFAULT_REF=main TFGIT_REQUIRE_LOCK=0 \
	TFGIT_FORCE_UNLOCK=0 TFGIT_AUTHOR_NAME="State Bot" TFGIT_AUTHOR_EMAIL=bot@example.test
Q="state=s.tfstate"

req POST "$Q" --data '{"version":4,"serial":1,"lineage":"t"}'
check "TFGIT_REQUIRE_LOCK=0: a POST without a lock is 200" expect_eq code 200 "$CODE"
check "TFGIT_DEFAULT_REF=main: the state is on main" expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$(g "$R" show main:s.tfstate)"
check "TFGIT_AUTHOR_NAME/EMAIL make the author" \
	expect_eq author "State Bot <bot@example.test>" "$(g "$R" log -1 --format='%an <%ae>' main)"
check "... and the committer" \
	expect_eq committer "State Bot <bot@example.test>" "$(g "$R" log -1 --format='%cn <%ce>' main)"

req LOCK "$Q" --data '{"ID":"held"}'
req POST "$Q" --data '{"version":4,"serial":2,"lineage":"t"}'
check "TFGIT_REQUIRE_LOCK=0 still refuses a POST while another ID holds the lock" expect_eq code 409 "$CODE"
req UNLOCK "$Q" --data-binary ''
check "TFGIT_FORCE_UNLOCK=0: force-unlock is 403" expect_eq code 403 "$CODE"
check "... saying why" grep -q TFGIT_FORCE_UNLOCK <<<"$BODY"
check "... and the lock stays" g "$R" rev-parse -q --verify refs/heads/locks/s.tfstate
check "... and its ID is not in the answer" eval "! grep -q held <<<'$BODY'"
req LOCK "$Q" --data '{"ID":"other"}'
check "TFGIT_FORCE_UNLOCK=0: a LOCK's 409 hides the holder's ID (it would unlock the lock)" \
	eval "[ '$CODE' = 409 ] && ! grep -q held <<<'$BODY'"
req UNLOCK "$Q" --data '{"ID":"held"}'
check "the holder can still unlock" expect_eq code 200 "$CODE"

big=$T_DIR/big.json
# over the 256 MiB of nginx/tfgit-location.conf (nginx answers from Content-Length: nothing is read)
{ printf '{"pad":"'; head -c $((257 * 1024 * 1024)) /dev/zero | tr '\0' a; printf '"}'; } >"$big"
req POST "$Q" --data-binary "@$big"
rm -f "$big"
check "a body over nginx's client_max_body_size is 413" expect_eq code 413 "$CODE"
check "... with a JSON error body from nginx" grep -q '^{"error":' <<<"$BODY"
check "the big refused bodies changed nothing" expect_eq commits 1 "$(g "$R" rev-list --count main)"

# a misspelt TFGIT_* name fails closed wherever it is set: the pool does not start
pool_with() { # pool_with CONF [VAR=value...]: scripts/pool.sh in the foreground, bounded; its output in pool-bad.log
	local conf=$1
	shift
	env -u TFGIT_CACHE_DIR "$@" TFGIT_CONF="$conf" FCGI_SOCKET="$T_DIR/bad/tfgit.sock" TFGIT_CACHE_DIR="$T_DIR/bad/cache" \
		timeout 20 "$ROOT/scripts/pool.sh" >"$T_DIR/pool-bad.log" 2>&1
}
mkdir -p "$T_DIR/bad"
good=$T_DIR/bad/good.conf
printf 'FCGI_SOCKET_MODE=0660\nFCGI_WORKERS=1\nFCGI_USER=%s\nFCGI_GROUP=%s\nTFGIT_DEFAULT_REPOSITORY=%s\n' \
	"$POOL_USER" "$(id -gn "$POOL_USER")" "$R" >"$good"
misspelt=$T_DIR/bad/misspelt.conf
{ cat "$good"; printf 'TFGIT_ALOWED_STATES=team-a/*\n'; } >"$misspelt"
pool_with "$misspelt"
rc=$?
check "TFGIT_ALOWED_STATES in spawn-fcgi.conf: the pool refuses to start (exit 2)" expect_eq exit 2 "$rc"
check "... naming the name" grep -q 'not a tfgit setting: TFGIT_ALOWED_STATES (environment)' "$T_DIR/pool-bad.log"
pool_with "$good" TFGIT_ALOWED_REFS=main TF_BACKEND_HTTP_ENCRYPTION_PASSPHRSE=x
rc=$?
check "misspelt names in the environment (TFGIT_*, the reference's TF_BACKEND_HTTP_*): the pool refuses to start" \
	expect_eq exit 2 "$rc"
check "... naming each" eval "grep -q 'TFGIT_ALOWED_REFS (environment)' '$T_DIR/pool-bad.log' &&
	grep -q 'TF_BACKEND_HTTP_ENCRYPTION_PASSPHRSE (environment)' '$T_DIR/pool-bad.log'"
check "... and no value reaches the log" eval "! grep -q 'team-a' '$T_DIR/pool-bad.log'"
pool_with "$good" tfgit_allowed_states=x TF_BACKEND_ENCRYPTION_PASSPHRASE=x
rc=$?
check "a lower-case tfgit_* and the reference's prefix without HTTP_ are refused too (exit 2)" \
	eval "[ $rc = 2 ] && grep -q 'tfgit_allowed_states (environment), TF_BACKEND_ENCRYPTION_PASSPHRASE (environment)' '$T_DIR/pool-bad.log'"
out=$(as_pool env -i PATH=/usr/bin:/bin TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$T_DIR/bad/cli" \
	TFGIT_ALOWED_STATES=x "$TFGIT_CLI_BIN" doctor 2>/dev/null)
rc=$?
check "tfgit doctor lists a misspelt name as a problem (exit 1)" \
	eval "[ $rc = 1 ] && grep -q '^problem: .*TFGIT_ALOWED_STATES' <<<'$out'"
out=$(as_pool env -i PATH=/usr/bin:/bin TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$T_DIR/bad/cli" \
	TFGIT_ALOWED_STATES=x "$TFGIT_CLI_BIN" states 2>&1)
check "... and the admin command refuses to run with it" grep -q 'not a tfgit setting: TFGIT_ALOWED_STATES' <<<"$out"
finish
