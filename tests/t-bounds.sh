#!/usr/bin/env bash
# Issue 8, bounds on what a request can make tfgit hold: lock bodies (64 KiB), state blobs
# over TFGIT_MAX_BODY already in the repository, cache entries (none for a remote that fails,
# TFGIT_CACHE_MAX evicting the least recently used), and workers waiting on a hanging remote
# (TFGIT_QUEUE_TIMEOUT).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

st() { printf '{"version":4,"serial":%s,"lineage":"%s","outputs":{},"resources":[]}' "$1" "${2:-b-1}"; }
tip() { g "$1" rev-parse -q --verify "refs/heads/$2" 2>/dev/null || echo none; }
is_json_error() { grep -q '"error" *:' <<<"$BODY"; }
pad() { head -c "$1" /dev/zero | tr '\0' a; }

# 10. lock bodies over 64 KiB; a stored state larger than TFGIT_MAX_BODY
R10=$(new_remote bounds)
stack_up bounds TFGIT_DEFAULT_REPOSITORY="$R10" TFGIT_MAX_BODY=200000
req LOCK "state=l.tfstate" --data "{\"ID\":\"big-1\",\"Info\":\"$(pad 65536)\"}"
check "10. LOCK with a body over 64 KiB (and under TFGIT_MAX_BODY) is 413" expect_eq code 413 "$CODE"
check "... a JSON error" is_json_error
check "... and takes no lock" expect_eq lock none "$(tip "$R10" locks/l.tfstate)"
req LOCK "state=l2.tfstate" --data "{\"ID\":\"small-1\",\"Info\":\"$(pad 60000)\"}"
check "10. LOCK with a body of 60 000 bytes is 200" expect_eq code 200 "$CODE"
req UNLOCK "state=l2.tfstate" --data "{\"ID\":\"small-1\",\"Info\":\"$(pad 65536)\"}"
check "10. UNLOCK with a body over 64 KiB is 413" expect_eq code 413 "$CODE"
check "... and the lock stays" eval "[ '$(tip "$R10" locks/l2.tfstate)' != none ]"
req UNLOCK "state=l2.tfstate" --data '{"ID":"small-1"}'
check "10. UNLOCK with a small body is 200" expect_eq code 200 "$CODE"

huge="{\"version\":4,\"serial\":1,\"lineage\":\"b-1\",\"pad\":\"$(pad 300000)\"}"
commit_file "$R10" master huge.tfstate "$huge" >/dev/null
size=${#huge}
req GET "state=huge.tfstate"
check "10. GET of a stored state of $size bytes over TFGIT_MAX_BODY=200000 is 500" expect_eq code 500 "$CODE"
check "... a JSON error naming TFGIT_MAX_BODY and the size" \
	eval "is_json_error && grep -q TFGIT_MAX_BODY <<<\"\$BODY\" && grep -q $size <<<\"\$BODY\""
check "... without the state in it" expect_eq bytes small "$([ ${#BODY} -lt 10000 ] && echo small || echo ${#BODY})"
commit_file "$R10" master ok.tfstate "$(st 1)" >/dev/null
req GET "state=ok.tfstate"
check "10. GET of a small state beside it is 200" expect_eq state "$(st 1)" "$BODY"

# 11. cache entries: none for a remote that does not exist or cannot be reached; at most
# TFGIT_CACHE_MAX=2 repositories, the least recently used evicted
CLOSED=$(free_port)
stack_up cachemax TFGIT_CACHE_MAX=2 TFGIT_ALLOWED_REPOS="$T_DIR/remotes/*.git http://127.0.0.1:*/*.git"
C11=$T_DIR/stack-cachemax/cache
req GET "repository=$T_DIR/remotes/missing.git&state=x.tfstate"
check "11. set-up: a repository that does not exist is 502" expect_eq code 502 "$CODE"
check "11. ... and leaves no cache entry" expect_eq entries "" "$(cache_entries "$C11")"
req GET "repository=http://127.0.0.1:$CLOSED/x.git&state=x.tfstate"
check "11. set-up: a remote that refuses connections is 503" expect_eq code 503 "$CODE"
check "11. ... and leaves no cache entry" expect_eq entries "" "$(cache_entries "$C11")"
declare -A TIP
for n in c1 c2 c3; do
	r=$(new_remote "$n")
	TIP[$n]=$(commit_file "$r" master s.tfstate "$(st 1 "$n")")
done
for n in c1 c2 c1 c3; do
	req GET "repository=$T_DIR/remotes/$n.git&state=s.tfstate"
	[ "$CODE" = 200 ] || break
done
check "11. set-up: GETs on c1, c2, c1, c3 are 200" expect_eq code 200 "$CODE"
check "11. TFGIT_CACHE_MAX=2: two cache repositories after three remotes" \
	expect_eq repositories 2 "$(cache_entries "$C11" | grep -c '\.git$')"
# an entry is named by the first 16 bytes of the SHA-256 of its (resolved) URL
entry() { [ -d "$C11/$(printf %s "$(realpath -m "$T_DIR/remotes/$1.git")" | sha256sum | cut -c1-32).git" ] && echo 1 || echo 0; }
check "11. ... c2, the least recently used, was evicted" expect_eq c2 0 "$(entry c2)"
check "11. ... c1 and c3 are kept" expect_eq "c1 c3" "1 1" "$(entry c1) $(entry c3)"

# 11. a hanging remote holds one worker; the requests queued behind it give up after
# TFGIT_QUEUE_TIMEOUT with 503 + Retry-After, and another repository is served meanwhile
blackhole
HOLE_PID=${STACKS[-1]}
R11=$(new_remote served)
stack_up queue FCGI_WORKERS=4 TFGIT_QUEUE_TIMEOUT=2 TFGIT_REMOTE_TIMEOUT=20 TFGIT_DEFAULT_REPOSITORY="$R11" \
	TFGIT_ALLOWED_REPOS="http://127.0.0.1:$HOLE_PORT/*.git"
HANG="repository=http://127.0.0.1:$HOLE_PORT/hang.git&state=x.tfstate"
pids=()
start=$SECONDS
for i in 1 2 3 4; do
	curl -s -D "$T_DIR/q.hdr.$i" -o "$T_DIR/q.body.$i" -w '%{http_code}\n' --max-time 60 "$URL?$HANG" >"$T_DIR/q.code.$i" &
	pids+=($!)
done
answered() { cat "$T_DIR"/q.code.* | grep -c '[0-9]'; }
wait_for 10 "the first connection to the blackhole" eval '[ "$(hole_accepted)" -ge 1 ]'
wait_for 8 "three of four answers" eval '[ "$(answered)" -ge 3 ]'
elapsed=$((SECONDS - start))
check "11. three of four requests on the hanging repository are answered within 8 s" \
	expect_eq answered 3 "$(answered)"
check "... with 503" expect_eq codes "503 503 503" "$(cat "$T_DIR"/q.code.* | grep . | sort | tr '\n' ' ' | sed 's/ $//')"
check "... and Retry-After" expect_eq retry-after 3 "$(grep -li '^Retry-After: ' "$T_DIR"/q.hdr.* | wc -l)"
check "... saying TFGIT_QUEUE_TIMEOUT" expect_eq bodies 3 "$(grep -l TFGIT_QUEUE_TIMEOUT "$T_DIR"/q.body.* 2>/dev/null | wc -l)"
check "... not before TFGIT_QUEUE_TIMEOUT=2" eval "[ $elapsed -ge 2 ]"
req GET "state=x.tfstate" --max-time 5
check "11. meanwhile a request to another repository is served" expect_eq code 204 "$CODE"
check "... while the first still hangs" expect_eq hanging 3 "$(answered)"
stop_pid "$HOLE_PID" # the hanging connection ends: its worker answers
wait "${pids[@]}"
check "11. the hanging request is answered once the remote goes away" expect_eq answered 4 "$(answered)"
finish
