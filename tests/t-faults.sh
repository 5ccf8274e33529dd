#!/usr/bin/env bash
# Faults: a worker killed in the middle of a push, damaged caches (truncated packs, missing
# objects, the directory gone), the remote down and back, the cache filesystem full.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

# a git daemon whose pre-receive hook can hold a push until told to go on
D=$T_DIR/daemon
mkdir -p "$D"
git init -q --bare "$D/state.git"
cat >"$D/state.git/hooks/pre-receive" <<HOOK
#!/bin/sh
cat >/dev/null
[ -e "$D/deny" ] && { echo "policy: no writes today" >&2; exit 1; }
[ -e "$D/hold" ] || exit 0
touch "$D/in-hook"
i=0
while [ ! -e "$D/release" ] && [ \$i -lt 200 ]; do sleep 0.1; i=\$((i + 1)); done
exit 0
HOOK
chmod +x "$D/state.git/hooks/pre-receive"
DPORT=$(free_port)
start_daemon() {
	git daemon --export-all --enable=receive-pack --base-path="$D" --listen=127.0.0.1 \
		--port="$DPORT" --reuseaddr 2>>"$T_DIR/daemon.log" &
	DAEMON_PID=$!
	STACKS+=("$DAEMON_PID")
	wait_for 10 "git daemon" git ls-remote "git://127.0.0.1:$DPORT/state.git"
}
start_daemon
REPO=git://127.0.0.1:$DPORT/state.git
R=$D/state.git
stack_up faults TFGIT_ALLOWED_REPOS="git://127.0.0.1:*/*.git $T_DIR/remotes/*.git" FCGI_WORKERS=1 \
	TFGIT_REMOTE_TIMEOUT=20
SUP=$LAST_POOL_PID
CACHE=$T_DIR/stack-faults/cache
Q="repository=$REPO&state=f.tfstate"
req LOCK "$Q" --data '{"ID":"f-1"}'
req POST "$Q&ID=f-1" --data '{"version":4,"serial":1,"lineage":"t"}'
check "set-up: a first state on the daemon" expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$(g "$R" show master:f.tfstate)"

# 1. SIGKILL in the middle of a push (held in the server's pre-receive hook)
touch "$D/hold"
curl -s -o /dev/null -w '%{http_code}' -X POST --data '{"version":4,"serial":2,"lineage":"t"}' "$URL?$Q&ID=f-1" >"$T_DIR/killed.code" &
POST_CURL=$!
wait_for 10 "the push to reach the hook" test -e "$D/in-hook"
worker=$(pgrep -P "$SUP")
kill -KILL "$worker"
wait "$POST_CURL"
check "the request whose worker was killed mid-push fails" eval "[ \$(cat '$T_DIR/killed.code') != 200 ]"
touch "$D/release"
rm -f "$D/hold"
wait_for 5 "a new worker" eval "[ -n \"\$(pgrep -P $SUP)\" ]"
req POST "$Q&ID=f-1" --data '{"version":4,"serial":3,"lineage":"t"}' --max-time 30
check "the next request, on the same repository, succeeds (the dead worker's flock is gone)" expect_eq code 200 "$CODE"
req GET "$Q"
check "... and reads what it wrote" expect_eq state '{"version":4,"serial":3,"lineage":"t"}' "$BODY"

# a server that refuses by policy (a hook) is 502, not retried as a lost race
touch "$D/deny"
before=$(g "$R" rev-parse master)
req POST "$Q&ID=f-1" --data '{"version":4,"serial":33,"lineage":"t"}' --max-time 30
check "a push refused by the server's hook is 502" expect_eq code 502 "$CODE"
check "... saying the repository refused it" grep -q 'refused the push' <<<"$BODY"
check "... tried once, not as a lost race" eval "! grep -q 'POST.*-> 502.*(retried)' '$T_DIR/pool.log'"
check "... and nothing changed" expect_eq master "$before" "$(g "$R" rev-parse master)"
rm -f "$D/deny"

# 2. damaged caches are rebuilt from the remote without failing the request
packs() { find "$CACHE" -name '*.pack' | head -5; }
URL_A=$URL
stack_up other TFGIT_ALLOWED_REPOS="git://127.0.0.1:*/*.git"
URL_B=$URL
URL=$URL_B; req POST "$Q&ID=f-1" --data '{"version":4,"serial":4,"lineage":"t"}'
URL=$URL_A
req GET "$Q"   # fetches serial 4 into cache A as a pack
check "set-up: cache A holds packs" test -n "$(packs)"
for p in $(packs); do truncate -s $(($(stat -c %s "$p") / 2)) "$p"; done
req GET "$Q"
check "a truncated pack in the cache: GET still 200" expect_eq code 200 "$CODE"
check "... with the right state" expect_eq state '{"version":4,"serial":4,"lineage":"t"}' "$BODY"
check "... and the rebuild is logged" grep -q 'rebuilding it from the remote' "$T_DIR/pool.log"

find "$CACHE" -path '*/objects/??/*' -type f -delete
find "$CACHE" -name '*.idx' -delete
req POST "$Q&ID=f-1" --data '{"version":4,"serial":5,"lineage":"t"}'
check "missing objects in the cache: POST still 200" expect_eq code 200 "$CODE"
check "... and the remote has it" expect_eq state '{"version":4,"serial":5,"lineage":"t"}' "$(g "$R" show master:f.tfstate)"

rm -rf "$CACHE"/*.git
req GET "$Q"
check "the cache directory removed: GET still 200" expect_eq state '{"version":4,"serial":5,"lineage":"t"}' "$BODY"

L=$(new_remote local)
LQ="repository=$L&state=l.tfstate"
req LOCK "$LQ" --data '{"ID":"l-1"}'
req POST "$LQ&ID=l-1" --data '{"version":4,"serial":1,"lineage":"t"}'
blob=$(g "$L" rev-parse master:l.tfstate)
find "$CACHE" -path "*/objects/${blob:0:2}/${blob:2}" -delete
req GET "$LQ"
check "a local remote's cache missing the state blob: GET still 200" expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$BODY"

# 3. the remote down, then back
stop_pid "$DAEMON_PID"
req LOCK "repository=$REPO&state=down.tfstate" --data '{"ID":"d-1"}'
check "the remote down: LOCK is 503" expect_eq code 503 "$CODE"
start_daemon
check "... nothing was half-written" expect_eq locks "" "$(g "$R" for-each-ref refs/heads/locks/down.tfstate)"
req LOCK "repository=$REPO&state=down.tfstate" --data '{"ID":"d-1"}'
check "the remote back: LOCK is 200" expect_eq code 200 "$CODE"

# 4. the cache filesystem full
if [ "$(id -u)" -eq 0 ] && mkdir -p "$T_DIR/small" && mount -t tmpfs -o size=512k tmpfs "$T_DIR/small" 2>/dev/null; then
	chown "$POOL_USER" "$T_DIR/small"
	stack_up full TFGIT_ALLOWED_REPOS="git://127.0.0.1:*/*.git" TFGIT_CACHE_DIR="$T_DIR/small/cache"
	req GET "$Q"
	check "set-up: a cache on a 512 KiB filesystem" expect_eq code 200 "$CODE"
	dd if=/dev/zero of="$T_DIR/small/filler" bs=4k 2>/dev/null
	before=$(g "$R" rev-parse master)
	{ printf '{"version":4,"serial":9,"lineage":"t","pad":"'; head -c 300000 /dev/urandom | base64 -w0; printf '"}'; } >"$T_DIR/big.json"
	req POST "$Q&ID=f-1" --data-binary "@$T_DIR/big.json"
	check "a full cache filesystem: POST is 507" expect_eq code 507 "$CODE"
	check "... saying so" grep -qi 'no space' <<<"$BODY"
	check "... and the remote is untouched" expect_eq master "$before" "$(g "$R" rev-parse master)"
	rm -f "$T_DIR/small/filler"
	req POST "$Q&ID=f-1" --data '{"version":4,"serial":9,"lineage":"t","pad":"x"}'
	check "with room again, POST is 200" expect_eq code 200 "$CODE"
	# stop everything that may use the small filesystem before unmounting it
	for s in "${STACKS[@]}"; do for pid in $s; do stop_pid "$pid"; done; done
	STACKS=()
	umount "$T_DIR/small"
else
	for t in "a full cache filesystem: POST is 507" "... saying so" "... and the remote is untouched" \
		"with room again, POST is 200"; do
		skip "$t" "mounting a small tmpfs needs root"
	done
fi
check "git fsck of the remote is clean" g "$R" fsck --strict
finish
