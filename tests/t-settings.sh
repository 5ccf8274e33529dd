#!/usr/bin/env bash
# The TFGIT_* settings that change behaviour, and nginx's own body limit answering in JSON.
. "$(dirname "$0")/lib.sh"

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
finish
