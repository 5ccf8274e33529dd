#!/usr/bin/env bash
# Issue 18, what one tenant can do to another on a shared server: a branch named locks that
# would block every lock, the web view asking git about a repository for a user with no grant
# on it, the admin command outside TFGIT_ALLOWED_STATES and TFGIT_ALLOWED_REFS.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

R=$(new_remote tenants)
declare -A PASS=([alice]=Al-pass-1 [bob]=Bo-pass-2)
for u in "${!PASS[@]}"; do htpasswd_line "$u" "${PASS[$u]}"; done >"$T_DIR/htpasswd"
printf 'auth_basic "tfgit";\nauth_basic_user_file %s;\n' "$T_DIR/htpasswd" >"$T_DIR/auth.conf"
cat >"$T_DIR/acl" <<ACL
alice  all   $R   *
bob    all   $T_DIR/remotes/bob-*.git   *
ACL
chmod 644 "$T_DIR/htpasswd" "$T_DIR/auth.conf" "$T_DIR/acl"
stack_up tenants STACK_NGINX_INCLUDE="$T_DIR/auth.conf" TFGIT_ACL_FILE="$T_DIR/acl" TFGIT_DEFAULT_REPOSITORY="$R" \
	TFGIT_ALLOWED_REPOS="$T_DIR/remotes/*.git"
CACHE=$T_DIR/stack-tenants/cache
as() { local u=$1; shift; req "$1" "$2" -u "$u:${PASS[$u]}" "${@:3}"; }
refs() { g "$R" for-each-ref --format='%(refname)'; }

# 1. ref=locks would make refs/heads/locks a file: no locks/<state> could be made after it
for ref in locks Locks LOCKS; do
	as alice LOCK "ref=$ref&state=a.tfstate" --data '{"ID":"t-1"}'
	check "1. LOCK with ref=$ref is 400" expect_eq code 400 "$CODE"
	check "... saying why" grep -q 'other than locks' <<<"$BODY"
	as alice POST "ref=$ref&state=a.tfstate" --data '{"version":4,"serial":1,"lineage":"t"}'
	check "1. POST with ref=$ref is 400" expect_eq code 400 "$CODE"
done
check "1. no branch locks was made" eval "! refs | grep -qi '^refs/heads/locks$'"
# a branch below the default one (or one of its directories), made first, would block it
for ref in master/evil; do
	as alice LOCK "ref=$ref&state=a.tfstate" --data '{"ID":"t-2"}'
	check "1. LOCK with ref=$ref (below the default branch) is 400" expect_eq code 400 "$CODE"
	as alice POST "ref=$ref&state=a.tfstate&ID=t-2" --data '{"version":4,"serial":1,"lineage":"t"}'
	check "1. POST with ref=$ref is 400" expect_eq code 400 "$CODE"
done
check "1. no branch below master was made" eval "! refs | grep -q '^refs/heads/master/'"
as alice LOCK "state=team-b/x.tfstate" --data '{"ID":"b-1"}'
check "1. another tenant's LOCK is still 200" expect_eq code 200 "$CODE"
check "... its lock branch exists" g "$R" rev-parse -q --verify refs/heads/locks/team-b/x.tfstate
as alice UNLOCK "state=team-b/x.tfstate" --data '{"ID":"b-1"}'

# 2. the web view: a user granted nothing on a repository is refused before git is asked,
# the same whether or not the repository exists
bare_repo "$T_DIR/remotes/secret.git" >/dev/null 2>&1 || git init -q --bare "$T_DIR/remotes/secret.git"
before=$(cache_entries "$CACHE")
for repo in "$R" "$T_DIR/remotes/secret.git" "$T_DIR/remotes/missing.git"; do
	code=$(curl -s -o "$T_DIR/page" -w '%{http_code}' -u "bob:${PASS[bob]}" "$URL/ui/?repository=$repo")
	check "2. ui/ of ${repo##*/} for bob (no grant) is 403" expect_eq code 403 "$code"
	check "... a JSON error" grep -q '"error":.*may not read any state of this repository' "$T_DIR/page"
	code=$(curl -s -o "$T_DIR/page" -w '%{http_code}' -u "bob:${PASS[bob]}" "$URL/ui/state?repository=$repo&state=a.tfstate")
	check "2. ui/state of ${repo##*/} for bob is 403" expect_eq code 403 "$code"
done
check "2. none of it cloned or fetched: the cache is as it was" expect_eq cache "$before" "$(cache_entries "$CACHE")"
code=$(curl -s -o "$T_DIR/page" -w '%{http_code}' -u "alice:${PASS[alice]}" "$URL/ui/?repository=$R")
check "2. ui/ of the repository alice is granted is 200" expect_eq code 200 "$code"
code=$(curl -s -o "$T_DIR/page" -w '%{http_code}' -u "bob:${PASS[bob]}" "$URL/ui/?repository=$T_DIR/remotes/bob-missing.git")
check "2. ui/ of a repository bob is granted is not a 403 (it tells bob it is missing)" \
	eval "[ '$code' != 403 ] && [ '$code' != 200 ]"

# 3. the admin command applies the same allowlists as the FastCGI program
as alice LOCK "state=team-a/app.tfstate" --data '{"ID":"a-1"}'
as alice POST "state=team-a/app.tfstate&ID=a-1" --data '{"version":4,"serial":1,"lineage":"a"}'
as alice LOCK "state=team-b/db.tfstate" --data '{"ID":"b-2"}'
as alice POST "state=team-b/db.tfstate&ID=b-2" --data '{"version":4,"serial":1,"lineage":"b"}'
tfgit() {
	as_pool env -i PATH=/usr/bin:/bin HOME=/ TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_CACHE_DIR="$CACHE" \
		TFGIT_ALLOWED_STATES='team-a/*' TFGIT_ALLOWED_REFS='master' "$TFGIT_CLI_BIN" "$@"
}
out=$(tfgit history --state team-b/db.tfstate 2>&1)
rc=$?
check "3. history of a state outside TFGIT_ALLOWED_STATES is refused (exit 1 or 2)" eval "[ $rc -ne 0 ]"
check "... saying which setting" grep -q 'TFGIT_ALLOWED_STATES' <<<"$out"
check "... and shows nothing of it" eval "! grep -q '\"b\"\\|lineage' <<<'$out'"
out=$(tfgit unlock --state team-b/db.tfstate 2>&1)
check "3. unlock of a state outside TFGIT_ALLOWED_STATES is refused" grep -q 'TFGIT_ALLOWED_STATES' <<<"$out"
check "... and the lock stays" g "$R" rev-parse -q --verify refs/heads/locks/team-b/db.tfstate
out=$(tfgit show --state team-b/db.tfstate --version master 2>&1)
check "3. show of a state outside it is refused" grep -q 'TFGIT_ALLOWED_STATES' <<<"$out"
out=$(tfgit history --state team-a/app.tfstate --ref other 2>&1)
check "3. a branch outside TFGIT_ALLOWED_REFS is refused" grep -q 'TFGIT_ALLOWED_REFS' <<<"$out"
out=$(tfgit history --state team-a/app.tfstate --ref locks 2>&1)
check "3. --ref locks is refused" grep -q 'other than locks' <<<"$out"
out=$(tfgit history --state team-a/app.tfstate 2>&1)
check "3. history of an allowed state works" eval "[ \$? = 0 ] || false; grep -q 'a-1' <<<'$out'"
out=$(tfgit states 2>&1)
check "3. states lists only the allowed states" eval "grep -q '^team-a/app.tfstate ' <<<'$out' && ! grep -q 'team-b' <<<'$out'"
out=$(tfgit locks 2>&1)
check "3. locks lists only the allowed states' locks" eval "grep -q 'team-a/app.tfstate' <<<'$out' && ! grep -q 'team-b' <<<'$out'"

# 4. without auth_basic in front, nginx would still fill REMOTE_USER from any Basic header: the
# stack (make run's nginx) refuses a request that carries one instead of letting it name a user
printf 'alice all * *\n' >"$T_DIR/acl-open"
chmod 644 "$T_DIR/acl-open"
stack_up open TFGIT_ACL_FILE="$T_DIR/acl-open" TFGIT_DEFAULT_REPOSITORY="$R"
code=$(command curl -s -o "$T_DIR/page" -w '%{http_code}' -X LOCK -H 'Content-Type: application/json' \
	-u alice:anything --data '{"ID":"claimed"}' "$URL?state=claimed.tfstate")
check "4. no authentication in front: a request claiming alice with any password is 400" expect_eq code 400 "$code"
check "... a JSON error saying nothing checks credentials" grep -q '"error":"this server checks no credentials' "$T_DIR/page"
check "... and took no lock" eval "! g '$R' rev-parse -q --verify refs/heads/locks/claimed.tfstate"
code=$(command curl -s -o /dev/null -w '%{http_code}' -X LOCK -H 'Content-Type: application/json' \
	--data '{"ID":"anon"}' "$URL?state=claimed.tfstate")
check "... an anonymous request meets the ACL (403)" expect_eq code 403 "$code"
finish
