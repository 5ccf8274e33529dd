#!/usr/bin/env bash
# The cache stays small and whole: what operations write is packed (nothing loose, an empty
# stage), what no ref reaches is pruned, a local remote's cache holds no objects and the remote
# is never touched by maintenance, TFGIT_CACHE_MAX by size still evicts; a large state is held
# once in a worker's memory (POST and GET); a full cache filesystem is 507 with nothing
# half-written, for a cache already warm, and everything works again once there is room.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

D=$T_DIR/daemon
mkdir -p "$D"
DPORT=$(free_port)
git init -q --bare "$D/state.git"
git init -q --bare "$D/other.git"
git daemon --export-all --enable=receive-pack --base-path="$D" --listen=127.0.0.1 \
	--port="$DPORT" --reuseaddr 2>>"$T_DIR/daemon.log" &
STACKS+=("$!")
wait_for 10 "git daemon" git ls-remote "git://127.0.0.1:$DPORT/state.git" || { fail "git daemon starts"; exit 1; }
REPO=git://127.0.0.1:$DPORT/state.git
R=$D/state.git
ALLOW="git://127.0.0.1:*/*.git $T_DIR/remotes/*.git"
# the load generator's own allocations are not what a sanitizer build checks here
LOADGEN="env ASAN_OPTIONS=detect_leaks=0 $BUILD_DIR/tools/loadgen"
st() { printf '{"version":4,"serial":%s,"lineage":"t"}' "$1"; }

# counts in a cache repository: loose objects, staged objects, packs, leftovers of a write
loose() { find "$1/objects" -path '*/objects/??/*' -type f 2>/dev/null | wc -l; }
staged() { find "$1/tfgit-stage" -type f 2>/dev/null | wc -l; }
packs() { find "$1/objects/pack" -name '*.pack' 2>/dev/null | wc -l; }
leftovers() { find "$1" \( -name 'tmp-*' -o -name 'pack_git2_*' -o -name 'tmp_object*' -o -name '*.lock' \) 2>/dev/null | wc -l; }
entry_of() { ls -d "$1"/*.git 2>/dev/null | head -1; }

# 1. a smart remote: N cycles of LOCK, GET, POST, UNLOCK (1 KB states, a new serial each)
stack_up smart TFGIT_ALLOWED_REPOS="$ALLOW" FCGI_WORKERS=1
PORT=${URL#http://127.0.0.1:}
PORT=${PORT%%/*}
BODYF=$T_DIR/body.json
printf '{"version":4,"terraform_version":"1.11.4","lineage":"c","outputs":{},"resources":[%s]}' \
	"$(for i in $(seq 1 8); do printf '%s{"mode":"managed","type":"terraform_data","name":"r%d","instances":[{"attributes":{"id":"%d"}}]}' "$([ "$i" -gt 1 ] && echo ,)" "$i" "$i"; done)" >"$BODYF"
check "set-up: 30 cycles of LOCK, GET, POST, UNLOCK on a git:// remote" \
	$LOADGEN "$PORT" /tfgit "repository=$REPO&ref=master" 1 30 "$BODYF" "$T_DIR/ops" cyc
C=$(entry_of "$T_DIR/stack-smart/cache")
check "the cache holds no loose object after them" expect_eq loose 0 "$(loose "$C")"
check "... fewer than 32 objects staged (they are packed 32 at a time)" eval "[ $(staged "$C") -lt 32 ]"
check "... and it has at most $((16 + 1)) packs" eval "[ $(packs "$C") -le 17 ]"
check "... whose tracking ref is the remote's branch" \
	expect_eq master "$(g "$R" rev-parse master)" "$(git --git-dir="$C" rev-parse refs/remotes/origin/master)"
check "... and that keeps no lock branch the remote no longer has" \
	expect_eq locks "" "$(git --git-dir="$C" for-each-ref refs/remotes/origin/locks)"

# what a worker killed between the two renames of a pack leaves: a pack without its index, an
# index without its pack (libgit2's indexer names the index first); the next request's
# maintenance removes them
halfp=$C/objects/pack/pack-$(printf '%040d' 1)
as_pool cp "$(ls "$C"/objects/pack/pack-*.pack | head -1)" "$halfp.pack"
as_pool cp "$(ls "$C"/objects/pack/pack-*.idx | head -1)" "$C/objects/pack/pack-$(printf '%040d' 2).idx"
req GET "repository=$REPO&state=cyc-c0.tfstate"
check "a pack without its index and an index without its pack are removed by the next request's maintenance" \
	expect_eq "code, halves left" "200 0" "$CODE $(find "$C/objects/pack" -name 'pack-00000000000000000000000000000000000000*' | wc -l)"

# garbage: loose objects no ref reaches (as an earlier version left them) and, from the cycles,
# every lock commit; a cache without the maintenance marker is repacked from its refs once
for i in 1 2 3; do echo "garbage $i" | as_pool git --git-dir="$C" hash-object -w --stdin >/dev/null; done
check "set-up: three unreachable loose objects in the cache" expect_eq loose 3 "$(loose "$C")"
rm -f "$C/tfgit-maintained"
req GET "repository=$REPO&state=cyc-c0.tfstate"
check "the next request (a GET) is 200" expect_eq code 200 "$CODE"
check "... and repacks: one pack, no loose object" expect_eq "packs loose" "1 0" "$(packs "$C") $(loose "$C")"
check "... nothing unreachable is left (lock commits, the loose garbage)" \
	expect_eq unreachable "" "$(git --git-dir="$C" fsck --unreachable --no-reflogs 2>&1 | grep unreachable)"
check "... it holds exactly what the remote's refs reach" expect_eq objects \
	"$(g "$R" rev-list --objects --all | wc -l)" \
	"$(git --git-dir="$C" count-objects -v | awk '/^in-pack/ {print $2}')"
check "... nothing staged, and git itself finds the repository whole" eval \
	"[ $(staged "$C") = 0 ] && git --git-dir='$C' fsck --no-dangling"
check "... it is marked as maintained again" test -e "$C/tfgit-maintained"
check "... and no write left anything behind" expect_eq leftovers 0 "$(leftovers "$C")"
check "20 more cycles still work on the repacked cache" \
	$LOADGEN "$PORT" /tfgit "repository=$REPO&ref=master" 1 20 "$BODYF" "$T_DIR/ops" cyc
check "... still nothing loose, fewer than 32 objects staged" eval "[ $(loose "$C") = 0 ] && [ $(staged "$C") -lt 32 ]"
check "git fsck of the remote is clean" g "$R" fsck --strict

# 2. a local remote: its cache keeps no objects; maintenance never touches the remote
L=$(new_remote local)
LQ="repository=$L&state=l.tfstate"
req LOCK "$LQ" --data '{"ID":"l-1"}'
req POST "$LQ&ID=l-1" --data "$(st 1)"
check "a local remote: LOCK and POST are 200" expect_eq code 200 "$CODE"
LC=$(ls -d "$T_DIR"/stack-smart/cache/*.git | while read -r c; do [ "$c" != "$C" ] && echo "$c"; done)
check "... its cache holds no object: nothing staged, loose or packed" \
	expect_eq "staged loose packs" "0 0 0" "$(staged "$LC") $(loose "$LC") $(packs "$LC")"
before=$(find "$L/objects" -type f | sort | md5sum)
req GET "$LQ"
check "... a GET reads the state through it" expect_eq state "$(st 1)" "$BODY"
check "... and leaves the remote's objects as they were" expect_eq objects "$before" "$(find "$L/objects" -type f | sort | md5sum)"
req UNLOCK "$LQ" --data '{"ID":"l-1"}'
check "... git fsck of the local remote is clean" g "$L" fsck --strict

# 3. a large state: held once in the worker's memory for POST and GET, kept out of packs
MB=40
pretty_state $((MB * 1024 * 1024)) "$T_DIR/big.json" 7
stack_up big TFGIT_ALLOWED_REPOS="$ALLOW" FCGI_WORKERS=1
BQ="repository=git://127.0.0.1:$DPORT/other.git&state=big.tfstate"
req LOCK "$BQ" --data '{"ID":"b-1"}'
req POST "$BQ&ID=b-1" --data-binary "@$T_DIR/big.json" -o /dev/null
check "a ${MB} MiB pretty-printed state: POST is 200" expect_eq code 200 "$CODE"
check "... the remote has it" eval "g '$D/other.git' cat-file blob master:big.tfstate | cmp -s - '$T_DIR/big.json'"
curl -s -o "$T_DIR/big.got" "$URL?$BQ"
check "... GET returns it" cmp -s "$T_DIR/big.got" "$T_DIR/big.json"
worker=$(pgrep -P "$LAST_POOL_PID" | head -1)
hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$worker/status")
if [ -n "${TFGIT_WRAPPER:-}" ] || ldd "$TFGIT_BIN" | grep -q libasan; then
	skip "... the worker's peak memory is at most the state's size + 32 MiB" "a checker (valgrind, ASan) takes memory of its own"
else
	check "... the worker's peak memory (${hwm} MiB) is at most the state's size + 32 MiB" eval "[ $hwm -le $((MB + 32)) ]"
fi
BC=$(entry_of "$T_DIR/stack-big/cache")
check "... the cache keeps it as one loose object (compressed once, never re-packed)" \
	expect_eq loose 1 "$(loose "$BC")"
req UNLOCK "$BQ" --data '{"ID":"b-1"}'

# 4. TFGIT_CACHE_MAX by size: the large state's cache, least recently used, is evicted when
# another repository's cache would take the total over the bound
MC=$T_DIR/maxcache
stack_up maxa TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_CACHE_DIR="$MC"
req GET "$BQ"
check "set-up: a GET of the large state is 200" expect_eq code 200 "$CODE"
big_bytes=$(du -s -B1 "$(entry_of "$MC")" | cut -f1)
stack_up maxb TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_CACHE_DIR="$MC" TFGIT_CACHE_MAX=$(((big_bytes + 16384) / 1024))K
req GET "repository=$REPO&state=cyc-c0.tfstate"
check "... then, with TFGIT_CACHE_MAX just above its cache's size, one of another repository" \
	expect_eq code 200 "$CODE"
check "... the large one, least recently used, was evicted, the other kept" expect_eq entries \
	"1 $(git --git-dir="$C" rev-parse refs/remotes/origin/master)" \
	"$(ls -d "$MC"/*.git | wc -l) $(git --git-dir="$(entry_of "$MC")" rev-parse refs/remotes/origin/master 2>&1)"
check "... and the evicted entry's flock file and group commit queue went with it" expect_eq "flock files, queues" \
	"1 1" "$(find "$MC" -maxdepth 1 -name '*.flock' | wc -l) $(find "$MC" -maxdepth 1 -name '*.q' | wc -l)"

# 4b. a cache on a disk: a staged object whose bytes changed there (a failing disk, a power loss)
# is found when it is read (a GET: the cache is cloned again) and when the stage is packed (the
# cache is thrown away), never served or packed
DC=$T_DIR/diskcache
mkdir -p "$DC"
chown "$POOL_USER" "$DC"
chmod 700 "$DC"
# tamper BODY: changes 4 bytes of BODY's staged blob where it holds "disk-AAAA" (same length)
tamper() {
	local f
	f=$(entry_of "$DC")/tfgit-stage/$(printf '%s' "$1" | git hash-object --stdin)
	[ -f "$f" ] || return 1
	printf 'BBBB' | dd of="$f" bs=1 seek=$(($(grep -abo 'disk-AAAA' "$f" | cut -d: -f1) + 5)) conv=notrunc status=none
}
if [ "$(stat -f -c %T "$DC")" = tmpfs ]; then
	skip "a damaged staged object on a disk-backed cache" "the test directory is on tmpfs"
else
	stack_up disk TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_CACHE_DIR="$DC"
	DQ="repository=$REPO&state=disk.tfstate"
	DBODY='{"version":4,"serial":1,"lineage":"disk-AAAAAAAA"}'
	req LOCK "$DQ" --data '{"ID":"dk"}'
	req POST "$DQ&ID=dk" --data "$DBODY"
	check "set-up: on a disk-backed cache a state's blob is staged, then changed there" tamper "$DBODY"
	log_mark
	req GET "$DQ"
	check "... a GET finds it (it does not match its id) and answers the remote's state" \
		eval "[ '$CODE' = 200 ] && [ '$BODY' = '$DBODY' ] && since_mark | grep -q 'does not match its id'"
	DBODY2='{"version":4,"serial":2,"lineage":"disk-AAAAAAAA"}'
	req POST "$DQ&ID=dk" --data "$DBODY2"
	check "set-up: another version staged, then changed on the disk" tamper "$DBODY2"
	# a state over 1 MiB: the stage is packed at the end of its POST
	big='{"version":4,"serial":1,"lineage":"big","outputs":{"x":{"type":"string","value":"'$(head -c 1100000 /dev/zero | tr '\0' a)'"}}}'
	printf '%s' "$big" >"$T_DIR/big.json"
	req LOCK "repository=$REPO&state=big.tfstate" --data '{"ID":"bg"}'
	DE=$(entry_of "$DC")
	log_mark
	req POST "repository=$REPO&state=big.tfstate&ID=bg" --data-binary @"$T_DIR/big.json"
	check "... a POST that packs the stage is 200 (its push went out first)" expect_eq code 200 "$CODE"
	check "... the damaged staged object is found, and the cache thrown away, not packed" \
		eval "since_mark | grep -q 'does not match its id' && [ ! -e '$DE' ]"
	req GET "$DQ"
	check "... the state read again is the remote's, undamaged" expect_eq state "$DBODY2" "$BODY"
	req UNLOCK "$DQ" --data '{"ID":"dk"}'
fi

# 5. a full cache filesystem, the repository already cached (git:// and local remotes)
MNT=$T_DIR/small
if [ "$(id -u)" -ne 0 ]; then
	why="mounting a small tmpfs needs root"
elif ! mkdir -p "$MNT" || ! mount -t tmpfs -o size=1m,mode=0700 tmpfs "$MNT" 2>"$T_DIR/mount.err"; then
	why="mount -t tmpfs is not permitted here: $(head -c 200 "$T_DIR/mount.err")"
else
	why=
fi
full_checks=("a full cache: POST is 507" "... with a JSON error saying so" "... the remote's branch is unchanged"
	"... nothing half-written in the cache" "... a LOCK is 507 too, and takes no lock"
	"... a GET still reads the cached state" "... a GET that must fetch (another host wrote) is 507"
	"... leaving nothing half-written" "with room again, that GET is 200 with the new state" "with room again, the same POST is 200" "... the remote has it"
	"... and the cache is whole" "a full cache, local remote: POST is 507" "... the remote's branch is unchanged"
	"with room again, it is 200" "git fsck of both remotes is clean")
if [ -n "$why" ]; then
	for t in "${full_checks[@]}"; do skip "$t" "$why"; done
else
	chown "$POOL_USER" "$MNT"
	stack_up full TFGIT_ALLOWED_REPOS="$ALLOW" TFGIT_CACHE_DIR="$MNT/cache"
	FQ="repository=$REPO&state=full.tfstate"
	FL=$(new_remote full-local)
	FLQ="repository=$FL&state=full.tfstate"
	req LOCK "$FQ" --data '{"ID":"f-1"}'
	req POST "$FQ&ID=f-1" --data "$(st 1)"
	req LOCK "$FLQ" --data '{"ID":"f-1"}'
	req POST "$FLQ&ID=f-1" --data "$(st 1)"
	[ "$CODE" = 200 ] || fail "set-up: the caches are warm" "$CODE $BODY"
	FC=$(for c in "$MNT"/cache/*.git; do git --git-dir="$c" rev-parse -q --verify refs/remotes/origin/master >/dev/null 2>&1 && echo "$c"; done | head -1)
	staged_before=$(staged "$FC")
	dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
	tip=$(g "$R" rev-parse master)
	req POST "$FQ&ID=f-1" --data "$(st 2)"
	check "a full cache: POST is 507" expect_eq code 507 "$CODE"
	check "... with a JSON error saying so" eval "jq -e '.error | test(\"full|space\"; \"i\")' <<<'$BODY' >/dev/null"
	check "... the remote's branch is unchanged" expect_eq master "$tip" "$(g "$R" rev-parse master)"
	check "... nothing half-written in the cache" expect_eq "leftovers staged" "0 $staged_before" "$(leftovers "$MNT/cache") $(staged "$FC")"
	req LOCK "repository=$REPO&state=other.tfstate" --data '{"ID":"f-2"}'
	check "... a LOCK is 507 too, and takes no lock" eval "[ '$CODE' = 507 ] && [ -z \"\$(g '$R' for-each-ref refs/heads/locks/other.tfstate)\" ]"
	req GET "$FQ"
	check "... a GET still reads the cached state" expect_eq state "$(st 1)" "$BODY"
	commit_file "$R" master full.tfstate "$(st 5)" >/dev/null
	req GET "$FQ"
	check "... a GET that must fetch (another host wrote) is 507" expect_eq code 507 "$CODE"
	check "... leaving nothing half-written" expect_eq leftovers 0 "$(leftovers "$MNT/cache")"
	rm -f "$MNT/filler"
	req GET "$FQ"
	check "with room again, that GET is 200 with the new state" expect_eq state "$(st 5)" "$BODY"
	req POST "$FQ&ID=f-1" --data "$(st 2)"
	check "with room again, the same POST is 200" expect_eq code 200 "$CODE"
	check "... the remote has it" expect_eq state "$(st 2)" "$(g "$R" show master:full.tfstate)"
	rm -f "$FC/tfgit-maintained" # the next request repacks it, what was staged included
	req GET "$FQ"
	check "... and the cache is whole (repacked, then checked by git)" eval \
		"[ '$CODE' = 200 ] && git --git-dir='$FC' fsck --no-dangling"
	dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
	ltip=$(g "$FL" rev-parse master)
	req POST "$FLQ&ID=f-1" --data "$(st 2)"
	check "a full cache, local remote: POST is 507" expect_eq code 507 "$CODE"
	check "... the remote's branch is unchanged" expect_eq master "$ltip" "$(g "$FL" rev-parse master)"
	rm -f "$MNT/filler"
	req POST "$FLQ&ID=f-1" --data "$(st 2)"
	check "with room again, it is 200" expect_eq code 200 "$CODE"
	check "git fsck of both remotes is clean" eval "g '$R' fsck --strict && g '$FL' fsck --strict"
	# stop what uses the small filesystem before cleanup unmounts it
	for pid in ${STACKS[-1]}; do stop_pid "$pid"; done
	unset 'STACKS[-1]'
	umount "$MNT"
fi
finish
