#!/usr/bin/env bash
# tfgit doctor finds what breaks requests (issue 20), run as the pool's user: a repository that
# user cannot write (a LOCK through the stack is then a 500 too), a key that does not open the
# states on the branch, settings that serve nothing, misspelt names; a healthy setup is
# 0 problems and doctor leaves no trace in the repository (local, and smart HTTP where the
# server's log shows the probe's pushes). Exit 1 for each problem, each with its fix.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

KEYS=$T_DIR/keys
install -d -m 755 "$KEYS"
mkkey() {
	head -c 32 /dev/urandom | base64 >"$KEYS/$1"
	chown "$POOL_USER" "$KEYS/$1"
	chmod 600 "$KEYS/$1"
	echo "$KEYS/$1"
}
K1=$(mkkey k1)
K2=$(mkkey k2)
R=$(new_remote doc)
stack_up doc TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K1"
CACHE=$T_DIR/stack-doc/cache
# doctor VAR=value...: tfgit doctor as the pool's user with only these settings (and the pool's
# cache); its output in $T_DIR/doc.out (stdout) and doc.err, its exit status in RC
doctor() {
	as_pool env -i PATH=/usr/bin:/bin HOME=/ TFGIT_CACHE_DIR="$CACHE" "$@" "$TFGIT_CLI_BIN" doctor \
		>"$T_DIR/doc.out" 2>"$T_DIR/doc.err"
	RC=$?
}
out() { cat "$T_DIR/doc.out"; }
# has_problem PATTERN: a problem line matching PATTERN, followed by its fix line
has_problem() { grep -A1 -E "^problem: .*$1" "$T_DIR/doc.out" | grep -q '^         fix: '; }

# two states written through the stack with k1, and a file that is no state
for s in app envs/prod; do
	req LOCK "state=$s.tfstate" --data '{"ID":"d-1"}'
	req POST "state=$s.tfstate&ID=d-1" --data '{"version":4,"serial":1,"lineage":"doc","resources":[]}'
	req UNLOCK "state=$s.tfstate" --data '{"ID":"d-1"}'
done
commit_file "$R" master README.md "states of the doc test" >/dev/null
check "two states written with key k1 through the stack" \
	eval "[ \"\$(g '$R' ls-tree -r --name-only master | sort | tr '\n' ' ')\" = 'README.md app.tfstate envs/prod.tfstate ' ]"

# healthy: 0 problems, exit 0, and nothing left in the repository
# every path with its owner and mode (and a file's size: a directory's may not shrink back)
listing() { (cd "$1" && find . \( -type d -printf '%p %u %m\n' \) -o -printf '%p %s %u %m\n' | sort); g "$1" for-each-ref; }
before=$(listing "$R")
doctor TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K1"
check "healthy setup: exit 0, 0 problems" eval "[ $RC = 0 ] && grep -qx '0 problems' '$T_DIR/doc.out'"
check "... it proved the pool's user writes the repository (each directory, and a probe ref made and deleted)" \
	grep -q "^ok: .*this user ($POOL_USER, uid $(id -u "$POOL_USER")) can write the repository $R: a file made and removed in each of its directories, and a probe ref made and deleted" "$T_DIR/doc.out"
check "... and that a write carries its lock (one ref transaction)" \
	grep -q '^ok: .*a write carries its lock: the state.s branch and its lock branch change in one ref transaction' "$T_DIR/doc.out"
check "... it opened both states with the key (the README is no state)" \
	grep -q '^ok: .*2 states on branch master open with TFGIT_ENCRYPTION_KEYS' "$T_DIR/doc.out"
check "... and left no trace: the repository's files and refs as they were" \
	expect_eq repository "$before" "$(listing "$R")"

# the repository not writable by the pool's user: a problem, and a LOCK is a 500 indeed
chown -R root "$R"
chmod -R u=rwX,go=rX "$R" # readable by all, as a GET needs
doctor TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K1"
check "repository owned by root (0755): exit 1, the pool's user cannot write it, with the fix" \
	eval "[ $RC = 1 ] && has_problem 'this user \($POOL_USER, uid [0-9]+\) cannot write the repository $R: .*Permission denied'"
check "... the fix says whom to give it to" grep -q "fix: let uid $(id -u "$POOL_USER") write it: chown -R $POOL_USER $R" "$T_DIR/doc.out"
check "... the last line counts it" grep -qx '1 problem' "$T_DIR/doc.out"
req LOCK "state=app.tfstate" --data '{"ID":"d-2"}'
check "... and a LOCK through the stack is a 500 indeed" expect_eq code 500 "$CODE"
chown -R "$POOL_USER" "$R"
chown root "$R/objects"
doctor TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K1"
check "only objects/ not writable (refs are): exit 1, naming objects/" \
	eval "[ $RC = 1 ] && has_problem 'cannot write the repository .*no file can be created in $R/objects: '"
req LOCK "state=app.tfstate" --data '{"ID":"d-3"}'
check "... and a LOCK is a 500 there too" expect_eq code 500 "$CODE"
chown -R "$POOL_USER" "$R"
req LOCK "state=app.tfstate" --data '{"ID":"d-4"}'
req UNLOCK "state=app.tfstate" --data '{"ID":"d-4"}'
check "given back to the pool's user, a LOCK and an UNLOCK work again" expect_eq code 200 "$CODE"

# a key that cannot open the branch's states
doctor TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K2"
check "key k2 for states sealed with k1: exit 1, each state named as not opening" \
	eval "[ $RC = 1 ] && has_problem 'state app.tfstate on branch master does not open with TFGIT_ENCRYPTION_KEYS' &&
	      has_problem 'state envs/prod.tfstate on branch master does not open'"
check "... the fix: the key it was sealed with" grep -q 'fix: add the key it was sealed with to TFGIT_ENCRYPTION_KEYS' "$T_DIR/doc.out"
check "... the README is not reported, and the count is 2" \
	eval "! grep -q 'README.md' '$T_DIR/doc.out' && grep -qx '2 problems' '$T_DIR/doc.out'"
check "... no key and no state's content in its output" \
	eval "! grep -qF -e \"\$(cat '$K1')\" -e \"\$(cat '$K2')\" -e '\"lineage\"' '$T_DIR/doc.out' '$T_DIR/doc.err'"
doctor TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K2 $K1"
check "k2 first, k1 kept (a rotation): 0 problems" eval "[ $RC = 0 ] && grep -qx '0 problems' '$T_DIR/doc.out'"
doctor TFGIT_DEFAULT_REPOSITORY="$R"
check "no encryption setting for sealed states: exit 1, saying so" \
	eval "[ $RC = 1 ] && has_problem 'state app.tfstate .* does not open with no encryption: .*TFGIT_ENCRYPTION_KEYS'"

# settings that serve nothing
doctor TFGIT_ENCRYPTION_KEYS="$K1"
check "no default repository and no allowlist: exit 1, nothing can be served, with the fix" \
	eval "[ $RC = 1 ] && has_problem 'neither TFGIT_DEFAULT_REPOSITORY nor TFGIT_ALLOWED_REPOS is set: nothing can be served'"
doctor TFGIT_ENCRYPTION_KEYS="$K1" TFGIT_ALLOWED_REPOS="$T_DIR/remotes/*.git"
check "an allowlist without a default repository: 0 problems" eval "[ $RC = 0 ] && grep -qx '0 problems' '$T_DIR/doc.out'"
doctor TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K1" TFGIT_ALLOWED_REFS=main
check "a default branch TFGIT_ALLOWED_REFS refuses: exit 1, naming it" \
	eval "[ $RC = 1 ] && has_problem 'branch master: this branch is not allowed on this server \(TFGIT_ALLOWED_REFS\)'"

# misspelt names: every one listed, in one problem with its fix, no value shown
doctor TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K1" TFGIT_ALOWED_STATES=v4lue-one tfgit_default_ref=v4lue-two
check "two misspelt names: exit 1, both named in the problem, with the fix" \
	eval "[ $RC = 1 ] && has_problem 'not a tfgit setting: .*TFGIT_ALOWED_STATES \(environment\).*tfgit_default_ref \(environment\)'"
check "... the fix says to correct or remove each" grep -q '^         fix: correct or remove each name listed' "$T_DIR/doc.out"
check "... counted: 1 problem, and no value shown" \
	eval "grep -qx '1 problem' '$T_DIR/doc.out' && ! grep -q v4lue '$T_DIR/doc.out' '$T_DIR/doc.err'"

printf 'TFGIT_DEFAULT_REPOSITORY=%s\nTFGIT_ALOWED_REFS=v4lue-three\n# a comment\nTFGIT_CACHE_MAXX=1\n' "$R" >"$T_DIR/tfgit.conf"
chmod 644 "$T_DIR/tfgit.conf"
doctor TFGIT_CONFIG="$T_DIR/tfgit.conf"
check "two misspelt names in TFGIT_CONFIG: exit 1, both named with their lines, in one problem with its fix" \
	eval "[ $RC = 1 ] && has_problem 'tfgit.conf line 2: TFGIT_ALOWED_REFS is not a tfgit setting; line 4: TFGIT_CACHE_MAXX is not a tfgit setting'"
check "... no value shown" eval "! grep -q v4lue '$T_DIR/doc.out' '$T_DIR/doc.err'"

# smart HTTP: the probe ref is pushed and deleted on the server; a server that refuses pushes
git_http_server dochttp plain
htpasswd_line doc 'doc-Pw-7' >>"$T_DIR/dochttp/htpasswd"
H=$GIT_DIR_ROOT/h.git
bare_repo "$H"
commit_file "$H" master app.tfstate '{"version":4,"serial":3,"lineage":"h"}' >/dev/null
HURL="http://127.0.0.1:$GIT_PORT/h.git"
before=$(g "$H" for-each-ref)
doctor TFGIT_DEFAULT_REPOSITORY="$HURL" GIT_USERNAME=doc GIT_PASSWORD=doc-Pw-7 TFGIT_NETRC=/nonexistent
check "smart HTTP, push allowed: 0 problems, the probe ref made and deleted" \
	eval "[ $RC = 0 ] && grep -q 'can write the repository $HURL: a probe ref made and deleted' '$T_DIR/doc.out'"
check "... a write carries its lock there: the server advertises atomic, the probe went with its branch" \
	grep -q '^ok: .*a write carries its lock: the repository advertises atomic pushes' "$T_DIR/doc.out"
check "... the server received both pushes (receive-pack, 200)" \
	expect_eq pushes 2 "$(grep -c 'POST /h.git/git-receive-pack 200' "$T_DIR/dochttp/access.log")"
check "... and keeps no ref of it (git leaves an empty refs/tfgit-doctor/ at most)" \
	eval "[ \"\$(g '$H' for-each-ref)\" = '$before' ] && [ -z \"\$(find '$H/refs' -path '*tfgit-doctor*' -type f)\" ]"
check "... the clear-text state opens with no encryption" grep -q '^ok: .*1 state on branch master opens with no encryption' "$T_DIR/doc.out"
check "... without showing the password" eval "! grep -q doc-Pw-7 '$T_DIR/doc.out' '$T_DIR/doc.err'"
g "$H" config http.receivepack false
doctor TFGIT_DEFAULT_REPOSITORY="$HURL" GIT_USERNAME=doc GIT_PASSWORD=doc-Pw-7 TFGIT_NETRC=/nonexistent
check "smart HTTP, the server refuses pushes: exit 1, cannot write, fix: push rights" \
	eval "[ $RC = 1 ] && has_problem 'cannot write the repository $HURL' && grep -q 'fix: give the account of the credentials .* push rights' '$T_DIR/doc.out'"
# a cache directory this user cannot make (its parent root's, as /var/cache before systemd made it)
install -d -m 755 "$T_DIR/rootonly"
doctor TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_ENCRYPTION_KEYS="$K1" TFGIT_CACHE_DIR="$T_DIR/rootonly/cache"
check "a cache directory this user cannot make: exit 1, the problem named with install -d as its fix" \
	eval "[ $RC = 1 ] && has_problem 'rootonly/cache does not exist, and this user cannot make it' &&
	      grep -q 'fix: as root: install -d -o ' '$T_DIR/doc.out'"
check "... and the repository is not checked through a cache it cannot have (no second, misleading problem)" \
	eval "grep -q '^not checked: the repository' '$T_DIR/doc.out' && [ \$(grep -c '^problem:' '$T_DIR/doc.out') = 1 ]"
finish
