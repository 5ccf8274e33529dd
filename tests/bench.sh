#!/usr/bin/env bash
# make bench: tfgit against a real smart-HTTP git remote on loopback (nginx + git http-backend,
# basic auth), driven by tests/tools/loadgen. Prints one table: per operation the round trips to
# the remote (ref advertisements, and all HTTP requests, from the remote's access log), ops/s,
# p50/p99 latency, tfgit's own time (latency minus the remote's request time), peak RSS per
# worker; then the git CLI doing the same round trips, and a Terraform apply of 100 resources
# through tfgit next to the local backend; then one request per operation (kept connections and
# direct pushes on and off, over HTTP and HTTPS 40 ms away: requests and new connections per
# operation, p50 against one round trip + the server's time + 10 ms, a stale view, terraform
# apply of 20 resources); then group commit: 1 to 16 clients on one repository
# and on a repository each, at 0 and 40 ms round trip (tests/tools/delayproxy in front of the
# git server), with advertisements and pushes per operation, and N concurrent terraform apply
# runs on one repository. Reports only: it never fails the test suite.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"
LOADGEN=$BUILD_DIR/tools/loadgen
QUICK=${BENCH_QUICK:-}

FCGIWRAP_CHILDREN=16 git_http_server remote plain
PORT_R=$GIT_PORT ROOT_R=$GIT_DIR_ROOT
ACCESS=$T_DIR/remote/access.log
htpasswd_line bench benchpw >"$T_DIR/remote/htpasswd"

# repositories: empty, 10,000 commits of history, 1,000 state files
bare_repo "$ROOT_R/plain.git"
bare_repo "$ROOT_R/history.git"
bare_repo "$ROOT_R/states.git"
commits=10000 files=1000
[ -n "$QUICK" ] && commits=200 files=50
awk -v n=$commits 'BEGIN { for (i = 1; i <= n; i++) {
	printf "commit refs/heads/master\nmark :%d\ncommitter b <b@x> %d +0000\ndata 4\nfill\n", i, 1700000000 + i
	if (i > 1) printf "from :%d\n", i - 1
	printf "M 644 inline filler.txt\ndata %d\n%d\n\n", length(i "") + 1, i } }' |
	git --git-dir="$ROOT_R/history.git" fast-import --quiet
awk -v n=$files 'BEGIN { printf "commit refs/heads/master\ncommitter b <b@x> 1700000000 +0000\ndata 5\nmany\n"
	for (i = 1; i <= n; i++) printf "M 644 inline envs/e%d.tfstate\ndata 13\n{\"serial\":%d}\n", i, i % 10; print "" }' |
	git --git-dir="$ROOT_R/states.git" fast-import --quiet

BASE=http://127.0.0.1:$PORT_R
SHM=$(mktemp -d /dev/shm/tfgit-bench.XXXXXX)
chmod 755 "$SHM"
trap 'cleanup; rm -rf "$SHM"' EXIT
body_file() { # body_file BYTES: a state of about BYTES, shaped like Terraform's (many small objects)
	local f=$T_DIR/body.$1
	[ -f "$f" ] || awk -v size="$1" 'BEGIN {
		head = "{\"version\":4,\"terraform_version\":\"1.11.4\",\"lineage\":\"bench\",\"outputs\":{},\"resources\":["
		printf "%s", head; n = length(head)
		for (i = 0; n < size - 2; i++) {
			r = sprintf("%s{\"mode\":\"managed\",\"type\":\"terraform_data\",\"name\":\"r%d\",\"provider\":\"provider[\\\"terraform.io/builtin/terraform\\\"]\",\"instances\":[{\"schema_version\":0,\"attributes\":{\"id\":\"%08d-aaaa-bbbb-cccc-dddddddddddd\",\"input\":{\"value\":\"v%d\",\"type\":\"string\"},\"output\":{\"value\":\"v%d\",\"type\":\"string\"},\"triggers_replace\":null},\"sensitive_attributes\":[]}]}", i ? "," : "", i, i, i, i)
			printf "%s", r; n += length(r)
		}
		printf "]}" }' >"$f"
	echo "$f"
}

# the remote's requests during each operation of an oplog: per method, requests, ref
# advertisements (info/refs) and the remote's own time, attributed by time (one client only)
attribute() {
	awk -v ops="$1" '
	BEGIN { while ((getline l < ops) > 0) { split(l, f, " "); n++; m[n] = f[1]; s[n] = f[2]; e[n] = f[3] } }
	{ end = $1 * 1000; start = end - $2 * 1000
	  for (i = 1; i <= n; i++) if (start >= s[i] - 2 && end <= e[i] + 2) {
		req[m[i]]++; rt[m[i]] += $2 * 1000; if ($4 ~ /info\/refs/) adv[m[i]]++; break } }
	END { for (k in req) printf "%s %d %d %.3f\n", k, req[k], adv[k], rt[k] }' "$ACCESS"
}

# only LABEL: whether the section LABEL runs (BENCH_ONLY=text runs only the sections whose label
# holds the text, e.g. BENCH_ONLY="cache size")
only() { [ -z "${BENCH_ONLY:-}" ] || [[ $1 == *$BENCH_ONLY* ]]; }
ms() { date +%s%N; }

printf '\n%-34s %-6s %5s %5s %8s %8s %8s %8s %9s\n' "row" "op" "RT/op" "req/op" "ops/s" "p50 ms" "p99 ms" "own ms" "RSS MB"
row() { # row LABEL REPO BYTES CLIENTS CYCLES
	local label=$1 repo=$2 bytes=$3 clients=$4 cycles=$5 body out m
	only "$label" || return 0
	body=$(body_file "$bytes")
	[ -d "$ROOT_R/$repo" ] || bare_repo "$ROOT_R/$repo"
	# the cache on tmpfs, as by default (TFGIT_CACHE_DIR=/dev/shm/tfgit)
	stack_up "row$ROWS" TFGIT_ALLOWED_REPOS="$BASE/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw \
		TFGIT_CACHE_DIR="$SHM/row$ROWS" \
		FCGI_WORKERS=$((clients > 2 ? clients : 2)) TFGIT_MAX_BODY=$((64 * 1024 * 1024))
	local port=${URL#http://127.0.0.1:}
	port=${port%%/*}
	local q="type=git&repository=$BASE/$repo&ref=master"
	# warm: the cache's first clone, each client's first lock
	local prefix=row$ROWS
	ROWS=$((ROWS + 1))
	"$LOADGEN" "$port" /tfgit "$q" "$clients" 1 "$body" "$T_DIR/warm.ops" "$prefix" >/dev/null ||
		echo "# $label: warm-up failed"
	: >"$ACCESS"
	out=$("$LOADGEN" "$port" /tfgit "$q" "$clients" "$cycles" "$body" "$T_DIR/ops" "$prefix") ||
		echo "# $label: some operations failed"
	local wall total rss=0
	read -r _ wall total < <(grep '^wall' <<<"$out")
	for w in $(pgrep -P "$LAST_POOL_PID"); do
		m=$(awk '/VmHWM/ {print $2}' "/proc/$w/status" 2>/dev/null)
		[ "${m:-0}" -gt "$rss" ] && rss=$m
	done
	local att
	att=$(attribute "$T_DIR/ops")
	for m in LOCK GET POST UNLOCK; do
		read -r _ cnt p50 p99 < <(grep "^$m " <<<"$out")
		read -r _ req adv rtime < <(grep "^$m " <<<"$att" || echo "$m 0 0 0")
		local lsum own rt reqs
		lsum=$(awk -v m="$m" '$1 == m { s += $3 - $2 } END { printf "%.3f", s }' "$T_DIR/ops")
		if [ "$clients" -eq 1 ]; then
			rt=$(awk -v a="$adv" -v c="$cnt" 'BEGIN { printf "%.2f", a / c }')
			reqs=$(awk -v a="$req" -v c="$cnt" 'BEGIN { printf "%.2f", a / c }')
			own=$(awk -v l="$lsum" -v r="$rtime" -v c="$cnt" 'BEGIN { printf "%.2f", (l - r) / c }')
		else
			rt=- reqs=- own=-
		fi
		[ "$label" = "1 client (1 KB)" ] && eval "P50_$m=$p50"
		printf '%-34s %-6s %5s %5s %8.1f %8s %8s %8s %9.1f\n' "$label" "$m" "$rt" "$reqs" \
			"$(awk -v c="$cnt" -v w="$wall" 'BEGIN { print c / w }')" "$p50" "$p99" "$own" \
			"$(awk -v r="$rss" 'BEGIN { print r / 1024 }')"
	done
	stop_pid "$STACK_NGINX_PID"
	stop_pid "$STACK_POOL_PID"
}

ROWS=0
cyc=20
[ -n "$QUICK" ] && cyc=5
# each row on a repository of its own, so one row's history does not weigh on the next
row "state 1 KB" s1k.git 1024 1 $cyc
row "state 1 MB" s1m.git $((1024 * 1024)) 1 $((cyc / 2))
row "state 32 MB" s32m.git $((32 * 1024 * 1024)) 1 3
row "history 1 commit (1 KB)" h1.git 1024 1 $cyc
row "history $commits commits (1 KB)" history.git 1024 1 $cyc
row "1 state in the repo (1 KB)" f1.git 1024 1 $cyc
row "$files states in the repo (1 KB)" states.git 1024 1 $cyc
row "1 client (1 KB)" c1.git 1024 1 $cyc
row "2 clients, own states (1 KB)" c2.git 1024 2 $cyc
row "8 clients, own states (1 KB)" c8.git 1024 8 $cyc

# the git CLI doing the same round trips: push of one small change, fetch of it
if only "git CLI"; then
CL=$T_DIR/cli
git clone -q "http://bench:benchpw@127.0.0.1:$PORT_R/plain.git" "$CL/a" 2>/dev/null
git clone -q "http://bench:benchpw@127.0.0.1:$PORT_R/plain.git" "$CL/b" 2>/dev/null
push_total=0 fetch_total=0 n=10
for i in $(seq 1 $n); do
	(cd "$CL/a" && echo "$i" >cli.txt && git add cli.txt && git commit -qm "cli $i")
	t0=$(ms); (cd "$CL/a" && git push -q origin HEAD:master 2>/dev/null); t1=$(ms)
	(cd "$CL/b" && git fetch -q origin 2>/dev/null); t2=$(ms)
	push_total=$((push_total + t1 - t0)) fetch_total=$((fetch_total + t2 - t1))
done
push_ms=$(awk -v t=$push_total -v n=$n 'BEGIN { print t / n / 1e6 }')
fetch_ms=$(awk -v t=$fetch_total -v n=$n 'BEGIN { print t / n / 1e6 }')
printf '\ngit CLI on the same remote: push of one commit %.1f ms, fetch of it %.1f ms (mean of %d)\n' \
	"$push_ms" "$fetch_ms" $n
if [ -n "${P50_POST:-}" ]; then
	printf 'tfgit / git CLI: POST p50 %.2fx of git push, GET p50 %.2fx of git fetch (1 client, 1 KB)\n' \
		"$(awk -v a="$P50_POST" -v b="$push_ms" 'BEGIN { print a / b }')" \
		"$(awk -v a="$P50_GET" -v b="$fetch_ms" 'BEGIN { print a / b }')"
fi
fi

if command -v terraform >/dev/null && only "terraform apply of 100"; then
	stack_up tf TFGIT_ALLOWED_REPOS="$BASE/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw
	res=100
	[ -n "$QUICK" ] && res=10
	tf_project "$T_DIR/tf" "$URL?repository=$BASE/plain.git&state=tf/terraform.tfstate"
	printf 'resource "terraform_data" "r" {\n  count = %d\n  input = count.index\n}\n' $res >"$T_DIR/tf/main.tf"
	mkdir -p "$T_DIR/tflocal"
	cp "$T_DIR/tf/main.tf" "$T_DIR/tflocal/"
	(cd "$T_DIR/tf" && terraform init -no-color -input=false >/dev/null)
	t0=$(ms); (cd "$T_DIR/tf" && terraform apply -no-color -auto-approve -input=false >/dev/null); t1=$(ms)
	(cd "$T_DIR/tflocal" && TF_DATA_DIR=$T_DIR/tflocal/.terraform terraform init -no-color -input=false >/dev/null)
	t2=$(ms); (cd "$T_DIR/tflocal" && TF_DATA_DIR=$T_DIR/tflocal/.terraform terraform apply -no-color -auto-approve -input=false >/dev/null); t3=$(ms)
	printf 'terraform apply of %d terraform_data: through tfgit %.2f s, local backend %.2f s\n' $res \
		"$(awk -v t=$((t1 - t0)) 'BEGIN { print t / 1e9 }')" "$(awk -v t=$((t3 - t2)) 'BEGIN { print t / 1e9 }')"
fi

# the web view on a big repository: 1,000 states (5 resources each) with 3 versions each (3,000
# commits), the page of every state from a warm cache, and one state's page (20 versions with
# their changes); through the smart-HTTP remote, as the rows above
ui_states=1000
[ -n "$QUICK" ] && ui_states=100
if only "web view"; then
bare_repo "$ROOT_R/ui.git"
awk -v n=$ui_states 'BEGIN { m = 0
	for (v = 1; v <= 3; v++) for (i = 1; i <= n; i++) {
		body = sprintf("{\"version\":4,\"terraform_version\":\"1.11.4\",\"serial\":%d,\"lineage\":\"l-%d\",\"outputs\":{},\"resources\":[", v, i)
		for (r = 0; r < 5; r++) body = body sprintf("%s{\"mode\":\"managed\",\"type\":\"terraform_data\",\"name\":\"r%d\",\"provider\":\"provider[\\\"terraform.io/builtin/terraform\\\"]\",\"instances\":[{\"attributes\":{\"id\":\"%d-%d\",\"input\":\"v%d\"}}]}", r ? "," : "", r, i, r, v)
		body = body "]}"
		m++
		printf "commit refs/heads/master\nmark :%d\ncommitter tfgit <tfgit@localhost> %d +0000\n", m, 1700000000 + m
		msg = sprintf("Update envs/s%d.tfstate\n\nLock-ID: id-%d-%d\nWho: ci@runner-%d\nOperation: OperationTypeApply\n", i, i, v, i % 7)
		printf "data %d\n%s", length(msg), msg
		if (m > 1) printf "from :%d\n", m - 1
		printf "M 644 inline envs/s%d.tfstate\ndata %d\n%s\n", i, length(body), body } }' |
	git --git-dir="$ROOT_R/ui.git" fast-import --quiet
stack_up ui TFGIT_ALLOWED_REPOS="$BASE/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw TFGIT_CACHE_DIR="$SHM/ui"
uiq="repository=$BASE/ui.git&ref=master"
ui_time() { # ui_time PAGE RUNS: the first (cold) time, then p50 and max of RUNS warm ones, in ms
	local first times
	first=$(curl -s -o "$T_DIR/ui.html" -w '%{time_total}' "$URL/ui/$1")
	times=$(for _ in $(seq 1 "$2"); do curl -s -o /dev/null -w '%{time_total}\n' "$URL/ui/$1"; done | sort -n)
	awk -v f="$first" -v n="$2" '{ t[NR] = $1 } END { printf "cold %.0f ms, warm p50 %.0f ms, max %.0f ms (%d runs)", f * 1000, t[int((n + 1) / 2)] * 1000, t[n] * 1000, n }' <<<"$times"
}
echo
printf 'web view, repository page of %d states (3,000 commits): %s, %d rows\n' $ui_states "$(ui_time "?$uiq" 10)" \
	"$(grep -c '<tr><td class="mono"><a href="state' "$T_DIR/ui.html")"
printf 'web view, state page (3 versions with their changes): %s\n' "$(ui_time "state?$uiq&state=envs/s1.tfstate" 10)"
stop_pid "$STACK_NGINX_PID"
stop_pid "$STACK_POOL_PID"
fi

# --- one request per operation: direct pushes on kept connections (TFGIT_KEEP_CONNECTIONS) --------
# One client cycles LOCK, GET, POST, UNLOCK on its 1 KB state through a 40 ms round trip
# (delayproxy) with direct pushes on, then off (as before), in the same run: per operation the
# git server's requests and new connections (its access log names each request's connection;
# the proxy opens one upstream connection per client connection) and p50; then a stale view
# (another host writes before each POST), and terraform apply of 20 resources.
if only "one request per operation"; then
DPROXY=$(free_port)
"$BUILD_DIR/tools/delayproxy" "$DPROXY" "$PORT_R" 40 >"$T_DIR/dproxy.out" 2>&1 &
STACKS+=("$!")
wait_for 10 "the delaying proxy" grep -q ready "$T_DIR/dproxy.out"
DBASE=http://127.0.0.1:$DPROXY
# the same behind TLS: a git server of its own (a CA made here), 40 ms away too
FCGIWRAP_CHILDREN=4 git_http_server tlsremote tls
ROOT_T=$GIT_DIR_ROOT
htpasswd_line bench benchpw >"$T_DIR/tlsremote/htpasswd"
TPROXY=$(free_port)
"$BUILD_DIR/tools/delayproxy" "$TPROXY" "$GIT_PORT" 40 >"$T_DIR/tproxy.out" 2>&1 &
STACKS+=("$!")
wait_for 10 "the delaying proxy" grep -q ready "$T_DIR/tproxy.out"
TBASE=https://localhost:$TPROXY
dcyc=20
[ -n "$QUICK" ] && dcyc=8
# per method of an oplog (one client): requests, new connections, the remote's time
conn_attribute() {
	awk -v ops="$1" '
	BEGIN { while ((getline l < ops) > 0) { split(l, f, " "); n++; m[n] = f[1]; s[n] = f[2]; e[n] = f[3] } }
	{ end = $1 * 1000; start = end - $2 * 1000; c = $NF; fresh = !(c in seen); seen[c] = 1
	  for (i = 1; i <= n; i++) if (start >= s[i] - 2 && end <= e[i] + 2) { req[m[i]]++; nc[m[i]] += fresh; rt[m[i]] += $2 * 1000; break } }
	END { for (k in req) printf "%s %d %d %.3f\n", k, req[k], nc[k], rt[k] }' "$ACCESS"
}
# warm_stack NAME QUERY SETTINGS...: a stack (its port in STACK_PORT) whose every worker has met
# the repository (and keeps its connection): one client's warm-up cycles
warm_stack() {
	local name=$1 q=$2
	shift 2
	stack_up "$name" "$@"
	STACK_PORT=${URL#http://127.0.0.1:}
	STACK_PORT=${STACK_PORT%%/*}
	"$LOADGEN" "$STACK_PORT" /tfgit "$q" 1 6 "$(body_file 1024)" "$T_DIR/warm.ops" "$name" >/dev/null ||
		echo "# $name: warm-up failed"
}
direct_row() { # direct_row on|off [https]: over the HTTPS server when https
	local mode=$1 name=d$ROWS out att m base=$DBASE root=$ROOT_R label="http, kept on"
	local ACCESS=$ACCESS
	[ "$mode" = off ] && label="http, as before"
	if [ "${2:-}" = https ]; then
		base=$TBASE root=$ROOT_T ACCESS=$T_DIR/tlsremote/access.log label=${label/http/https}
	fi
	ROWS=$((ROWS + 1))
	bare_repo "$root/$name.git"
	local q="repository=$base/$name.git" port
	warm_stack "$name" "$q" TFGIT_ALLOWED_REPOS="http://127.0.0.1:*/*.git https://localhost:*/*.git" \
		GIT_USERNAME=bench GIT_PASSWORD=benchpw TFGIT_CACHE_DIR="$SHM/$name" \
		TFGIT_SSL_CA_FILE="$T_DIR/tls/ca.crt" TFGIT_KEEP_CONNECTIONS=$([ "$mode" = on ] && echo 1 || echo 0)
	port=$STACK_PORT
	: >"$ACCESS"
	out=$("$LOADGEN" "$port" /tfgit "$q" 1 "$dcyc" "$(body_file 1024)" "$T_DIR/ops" "$name") ||
		echo "# direct $mode: some operations failed"
	att=$(conn_attribute "$T_DIR/ops")
	local treq=0 tnc=0 tcnt=0
	for m in LOCK GET POST UNLOCK; do
		read -r _ cnt p50 _ < <(grep "^$m " <<<"$out")
		read -r _ req nc srv < <(grep "^$m " <<<"$att" || echo "$m 0 0 0")
		treq=$((treq + req)) tnc=$((tnc + nc)) tcnt=$((tcnt + cnt))
		# the target: p50 <= one round trip + the server's own time + 10 ms
		printf '%-22s %-6s %8s %9s %8s %10s %8s\n' "$label" "$m" "$(awk -v a="$req" -v c="$cnt" 'BEGIN { printf "%.2f", a / c }')" \
			"$(awk -v a="$nc" -v c="$cnt" 'BEGIN { printf "%.2f", a / c }')" "$p50" \
			"$(awk -v a="$srv" -v c="$cnt" 'BEGIN { printf "%.1f", a / c }')" \
			"$(awk -v p="$p50" -v a="$srv" -v c="$cnt" 'BEGIN { printf "%.1f", 40 + a / c + 10 }')"
	done
	printf '%-22s %-6s %8s %9s\n' "$label" "all" "$(awk -v a="$treq" -v c="$tcnt" 'BEGIN { printf "%.2f", a / c }')" \
		"$(awk -v a="$tnc" -v c="$tcnt" 'BEGIN { printf "%.2f", a / c }')"
	stop_pid "$STACK_NGINX_PID"
	stop_pid "$STACK_POOL_PID"
}
printf '\none request per operation: 1 client, 1 KB state, 40 ms round trip to the git server (%d cycles)\n' "$dcyc"
printf '%-22s %-6s %8s %9s %8s %10s %8s\n' "row" "op" "req/op" "newconn/op" "p50 ms" "server ms" "target"
direct_row on
direct_row off
direct_row on https
direct_row off https
# SSH (OpenSSH sshd 40 ms away): per operation the git commands the server ran and the SSH
# connections it accepted (its log names both); kept sessions on, then off (libgit2's transport)
SSH_LOGLEVEL=VERBOSE ssh_server
SPROXY=$(free_port)
"$BUILD_DIR/tools/delayproxy" "$SPROXY" "$SSH_PORT" 40 >"$T_DIR/sproxy.out" 2>&1 &
STACKS+=("$!")
wait_for 10 "the delaying proxy" grep -q ready "$T_DIR/sproxy.out"
echo "[127.0.0.1]:$SPROXY $HOST_PUB" >"$T_DIR/ssh_known_hosts"
chmod 644 "$T_DIR/ssh_known_hosts"
ssh_row() { # ssh_row on|off
	local mode=$1 name=s$ROWS out m r c0 k0 label="ssh, kept on"
	[ "$mode" = off ] && label="ssh, as before"
	ROWS=$((ROWS + 1))
	r=$(ssh_repo "$name")
	local q="repository=ssh://$SSH_USER@127.0.0.1:$SPROXY$r" port
	warm_stack "$name" "$q" TFGIT_ALLOWED_REPOS="ssh://$SSH_USER@127.0.0.1:*$SSH_DIR/repos/*.git" \
		SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$T_DIR/ssh_known_hosts" TFGIT_CACHE_DIR="$SHM/$name" \
		TFGIT_KEEP_CONNECTIONS=$([ "$mode" = on ] && echo 1 || echo 0)
	port=$STACK_PORT
	c0=$(grep -c 'Starting session: command' "$SSH_DIR/sshd.log") k0=$(grep -c 'Accepted publickey' "$SSH_DIR/sshd.log")
	out=$("$LOADGEN" "$port" /tfgit "$q" 1 "$dcyc" "$(body_file 1024)" "$T_DIR/ops" "$name") ||
		echo "# ssh $mode: some operations failed"
	for m in LOCK GET POST UNLOCK; do
		read -r _ cnt p50 _ < <(grep "^$m " <<<"$out")
		printf '%-22s %-6s %8s %9s %8s\n' "$label" "$m" "-" "-" "$p50"
	done
	printf '%-22s %-6s %8s %9s   (git commands and SSH connections per operation)\n' "$label" "all" \
		"$(awk -v a="$(($(grep -c 'Starting session: command' "$SSH_DIR/sshd.log") - c0))" -v c=$((4 * dcyc)) 'BEGIN { printf "%.2f", a / c }')" \
		"$(awk -v a="$(($(grep -c 'Accepted publickey' "$SSH_DIR/sshd.log") - k0))" -v c=$((4 * dcyc)) 'BEGIN { printf "%.2f", a / c }')"
	stop_pid "$STACK_NGINX_PID"
	stop_pid "$STACK_POOL_PID"
}
ssh_row on
ssh_row off
# a stale view: host B writes the state (under A's lock) before each of A's POSTs
name=stale$ROWS
ROWS=$((ROWS + 1))
bare_repo "$ROOT_R/$name.git"
stack_up "${name}a" TFGIT_ALLOWED_REPOS="http://127.0.0.1:*/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw TFGIT_CACHE_DIR="$SHM/${name}a"
SA=$URL SA_NGINX=$STACK_NGINX_PID SA_POOL=$STACK_POOL_PID
stack_up "${name}b" TFGIT_ALLOWED_REPOS="http://127.0.0.1:*/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw TFGIT_CACHE_DIR="$SHM/${name}b"
SB=$URL
sq="repository=$DBASE/$name.git&state=s.tfstate"
curl -s -o /dev/null -X LOCK --data '{"ID":"st"}' "$SA?$sq"
for i in 1 2 3 4 5 6; do curl -s -o /dev/null -X POST --data "{\"version\":4,\"serial\":$i,\"lineage\":\"x\"}" "$SA?$sq&ID=st"; done
fb0=$(curl -s "$SA/metrics" | awk '$1 == "tfgit_direct_push_fallbacks_total" {print $2 + 0}')
times=() reqs=0 bad=0 n=$((dcyc / 2))
for i in $(seq 1 $n); do
	curl -s -o /dev/null -X POST --data "{\"version\":4,\"serial\":$((1000 + 2 * i)),\"lineage\":\"x\"}" "$SB?$sq&ID=st"
	before=$(wc -l <"$ACCESS")
	t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST --data "{\"version\":4,\"serial\":$((1001 + 2 * i)),\"lineage\":\"x\"}" "$SA?$sq&ID=st")
	[ "${t% *}" = 200 ] || bad=$((bad + 1))
	times+=("$(awk -v t="${t#* }" 'BEGIN { printf "%.1f", t * 1000 }')")
	reqs=$((reqs + $(wc -l <"$ACCESS") - before))
done
fb1=$(curl -s "$SA/metrics" | awk '$1 == "tfgit_direct_push_fallbacks_total" {print $2 + 0}')
last=$(git --git-dir="$ROOT_R/$name.git" show master:s.tfstate | sed 's/.*"serial":\([0-9]*\).*/\1/')
printf '%-22s %-6s %8s %9s %8s   (%d fallbacks, %d not 200, last serial %s: %s)\n' "stale view" "POST" \
	"$(awk -v a="$reqs" -v c="$n" 'BEGIN { printf "%.2f", a / c }')" "-" \
	"$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" \
	$((fb1 - fb0)) "$bad" "$last" "$([ "$last" = $((1001 + 2 * n)) ] && echo "A's last write, none lost" || echo "NOT A's LAST WRITE")"
stop_pid "$STACK_NGINX_PID"; stop_pid "$STACK_POOL_PID"; stop_pid "$SA_NGINX"; stop_pid "$SA_POOL"

# terraform apply of 20 resources through the 40 ms link: direct pushes on, off, local backend
if command -v terraform >/dev/null; then
	tf20() { # tf20 on|off|local: seconds for apply (after init and a first apply)
		local mode=$1 name d
		name=tf20$mode$ROWS
		ROWS=$((ROWS + 1))
		d=$T_DIR/$name
		if [ "$mode" = local ]; then
			mkdir -p "$d"
			export TF_DATA_DIR=$d/.terraform TF_CLI_CONFIG_FILE=$d/none.tfrc TF_INPUT=0
			: >"$d/none.tfrc"
		else
			bare_repo "$ROOT_R/$name.git"
			stack_up "$name" TFGIT_ALLOWED_REPOS="http://127.0.0.1:*/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw \
				TFGIT_CACHE_DIR="$SHM/$name" TFGIT_KEEP_CONNECTIONS=$([ "$mode" = on ] && echo 1 || echo 0)
			tf_project "$d" "$URL?repository=$DBASE/$name.git&state=tf.tfstate"
		fi
		printf 'resource "terraform_data" "r" {\n  count = 20\n  input = "%s-${count.index}"\n}\n' "v1" >"$d/main.tf"
		(cd "$d" && terraform init -no-color -input=false >/dev/null && terraform apply -no-color -auto-approve -input=false >/dev/null)
		printf 'resource "terraform_data" "r" {\n  count = 20\n  input = "%s-${count.index}"\n}\n' "v2" >"$d/main.tf"
		local t0 t1
		t0=$(ms)
		(cd "$d" && terraform apply -no-color -auto-approve -input=false >/dev/null) || echo "# terraform apply ($mode) failed"
		t1=$(ms)
		awk -v t=$((t1 - t0)) 'BEGIN { printf "%.2f", t / 1e9 }'
		if [ "$mode" != local ]; then
			stop_pid "$STACK_NGINX_PID"
			stop_pid "$STACK_POOL_PID"
		fi
	}
	printf 'terraform apply changing 20 terraform_data, 40 ms round trip: direct pushes %s s, without (as before) %s s, local backend %s s\n' \
		"$(tf20 on)" "$(tf20 off)" "$(tf20 local)"
fi
fi

# --- group commit: many clients on one repository, against a repository each ----------------
# A round trip of RTT ms between tfgit and the git server (delayproxy: RTT/2 each way, and one
# RTT for each new connection's handshake). Each row: its own stack with the default pool
# (spawn-fcgi.conf's FCGI_WORKERS), its own repositories, a warm-up cycle per client, then
# loadgen; adv/op and push/op count the git server's ref advertisements (info/refs) and pushes
# (git-receive-pack) per operation (LOCK, GET, POST and UNLOCK each count one).
WORKERS=$(sed -n 's/^FCGI_WORKERS=\([0-9]*\).*/\1/p' "$ROOT/spawn-fcgi.conf")
RTTS="0 40" SCALE="1 2 4 8 16" SEP="1 2 4 8 16" OFF="1 8 16" OPS=24
[ -n "$QUICK" ] && RTTS="40" SCALE="1 8 16" SEP="8" OFF="1 8" OPS=8
if only "group commit"; then
PROXY_PORT=$(free_port)
"$BUILD_DIR/tools/delayproxy" "$PROXY_PORT" "$PORT_R" 40 >"$T_DIR/delayproxy.out" 2>&1 &
STACKS+=("$!")
wait_for 10 "the delaying proxy" grep -q ready "$T_DIR/delayproxy.out"
# scale_row RTT one|sep CLIENTS on|off: one row of the table; sets SCALE_OPS (ops/s)
scale_row() {
	local rtt=$1 layout=$2 clients=$3 gc=$4 base=$BASE q body out cycles c
	[ "$rtt" = 0 ] || base=http://127.0.0.1:$PROXY_PORT
	body=$(body_file 1024)
	cycles=$(((OPS + clients - 1) / clients))
	[ "$cycles" -ge 2 ] || cycles=2
	local name=g$ROWS
	ROWS=$((ROWS + 1))
	if [ "$layout" = one ]; then
		bare_repo "$ROOT_R/$name.git"
		q="repository=$base/$name.git"
	else
		for c in $(seq 0 $((clients - 1))); do bare_repo "$ROOT_R/$name-$c.git"; done
		q="repository=$base/$name-@C@.git"
	fi
	stack_up "$name" TFGIT_ALLOWED_REPOS="http://127.0.0.1:*/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw \
		TFGIT_CACHE_DIR="$SHM/$name" FCGI_WORKERS="$WORKERS" TFGIT_GROUP_COMMIT=$([ "$gc" = on ] && echo 1 || echo 0)
	local port=${URL#http://127.0.0.1:}
	port=${port%%/*}
	"$LOADGEN" "$port" /tfgit "$q" "$clients" 1 "$body" "$T_DIR/warm.ops" "$name" >/dev/null ||
		echo "# $rtt ms, $clients clients ($layout): warm-up failed"
	: >"$ACCESS"
	out=$("$LOADGEN" "$port" /tfgit "$q" "$clients" "$cycles" "$body" "$T_DIR/ops" "$name") ||
		echo "# $rtt ms, $clients clients ($layout, group commit $gc): some operations failed"
	local wall total adv push p50 p99
	read -r _ wall total < <(grep '^wall' <<<"$out")
	adv=$(grep -c 'info/refs' "$ACCESS")
	push=$(grep -c 'POST [^ ]*git-receive-pack' "$ACCESS")
	read -r p50 p99 < <(awk '{ print $3 - $2 }' "$T_DIR/ops" | sort -n |
		awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.1f %.1f\n", v[int((NR + 1) / 2)], v[i] }')
	SCALE_OPS=$(awk -v t="$total" -v w="$wall" 'BEGIN { printf "%.1f", t / w }')
	SCALE_P50=$p50
	local x=-
	[ -n "${SCALE_ONE:-}" ] && x=$(awk -v a="$SCALE_OPS" -v b="$SCALE_ONE" 'BEGIN { printf "%.1fx", a / b }')
	printf '%-4s %-13s %7s %-6s %7s %6s %8s %8s %7s %7s\n' "$rtt" "$layout" "$clients" "$gc" "$SCALE_OPS" "$x" \
		"$p50" "$p99" "$(awk -v a="$adv" -v t="$total" 'BEGIN { printf "%.2f", a / t }')" \
		"$(awk -v a="$push" -v t="$total" 'BEGIN { printf "%.2f", a / t }')"
	stop_pid "$STACK_NGINX_PID"
	stop_pid "$STACK_POOL_PID"
}
printf '\ngroup commit (%d workers; loadgen: each client cycles LOCK, GET, POST, UNLOCK on its own 1 KB state)\n' "$WORKERS"
printf '%-4s %-13s %7s %-6s %7s %6s %8s %8s %7s %7s\n' "RTT" "repositories" "clients" "group" "ops/s" "x 1" \
	"p50 ms" "p99 ms" "adv/op" "push/op"
for rtt in $RTTS; do
	for layout in one sep; do
		SCALE_ONE=
		clients_of=$SCALE
		[ "$layout" = sep ] && clients_of=$SEP
		for clients in $clients_of; do
			scale_row "$rtt" "$layout" "$clients" on
			[ "$clients" = 1 ] && SCALE_ONE=$SCALE_OPS
			eval "OPS_${rtt}_${layout}_$clients=$SCALE_OPS P50_${rtt}_${layout}_$clients=$SCALE_P50"
		done
	done
	SCALE_ONE=
	for clients in $OFF; do # as before group commit
		scale_row "$rtt" one "$clients" off
		[ "$clients" = 1 ] && SCALE_ONE=$SCALE_OPS
		eval "OFF_${rtt}_$clients=$SCALE_OPS OFFP50_${rtt}_$clients=$SCALE_P50"
	done
done
# one client's latency with and without group commit, alternating (the rows above are one short
# run each): p50 of each run, then the median of the runs' p50s
if [[ " $RTTS " == *" 40 "* ]]; then
	runs=3
	[ -n "$QUICK" ] && runs=1
	printf 'one client at 40 ms, %d runs each, alternating (rows as above):\n' $runs
	ON_P50S= OFF_P50S=
	for k in $(seq 1 $runs); do
		SCALE_ONE=
		scale_row 40 one 1 on
		ON_P50S="$ON_P50S $SCALE_P50"
		scale_row 40 one 1 off
		OFF_P50S="$OFF_P50S $SCALE_P50"
	done
	median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
	P50_40_one_1=$(median "$ON_P50S") OFFP50_40_1=$(median "$OFF_P50S")
	printf '  p50 with group commit:%s ms (median %s), without:%s ms (median %s)\n' "$ON_P50S" "$P50_40_one_1" \
		"$OFF_P50S" "$OFFP50_40_1"
fi
if [ -n "${OPS_40_one_1:-}" ]; then
	printf 'targets at 40 ms: 8 clients on one repository %sx one client (>= 4x) and %s ops/s against %s on a repository each (>=);\n' \
		"$(awk -v a="$OPS_40_one_8" -v b="$OPS_40_one_1" 'BEGIN { printf "%.1f", a / b }')" "$OPS_40_one_8" "${OPS_40_sep_8:-?}"
	printf '  16 clients %sx (>= 6x); one client p50 %s ms with group commit, %s ms without (medians of the alternating runs)\n' \
		"$(awk -v a="$OPS_40_one_16" -v b="$OPS_40_one_1" 'BEGIN { printf "%.1f", a / b }')" "$P50_40_one_1" "${OFFP50_40_1:-?}"
fi

# N concurrent terraform apply runs, each its own state, on one repository through the 40 ms link
if command -v terraform >/dev/null; then
	N=8
	[ -n "$QUICK" ] && N=4
	tf_wall() { # tf_wall LABEL one|sep on|off: init each project, then time their applies at once
		local label=$1 layout=$2 gc=$3 i t0 t1 name=tf$ROWS pids=()
		ROWS=$((ROWS + 1))
		stack_up "$name" TFGIT_ALLOWED_REPOS="http://127.0.0.1:*/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw \
			TFGIT_CACHE_DIR="$SHM/$name" FCGI_WORKERS="$WORKERS" TFGIT_GROUP_COMMIT=$([ "$gc" = on ] && echo 1 || echo 0)
		for i in $(seq 1 $N); do
			local repo=$name.git
			[ "$layout" = sep ] && repo=$name-$i.git
			[ -d "$ROOT_R/$repo" ] || bare_repo "$ROOT_R/$repo"
			tf_project "$T_DIR/$name/p$i" "$URL?repository=http://127.0.0.1:$PROXY_PORT/$repo&state=p$i.tfstate"
			printf 'resource "terraform_data" "r" {\n  count = 3\n  input = "p%d-${count.index}"\n}\n' "$i" >"$T_DIR/$name/p$i/main.tf"
			(cd "$T_DIR/$name/p$i" && TF_DATA_DIR=$T_DIR/$name/p$i/.terraform terraform init -no-color -input=false >/dev/null)
		done
		t0=$(ms)
		for i in $(seq 1 $N); do
			(cd "$T_DIR/$name/p$i" && TF_DATA_DIR=$T_DIR/$name/p$i/.terraform \
				terraform apply -no-color -auto-approve -input=false >"$T_DIR/$name/p$i.out" 2>&1) &
			pids+=($!)
		done
		local failed=0
		for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
		t1=$(ms)
		printf '  %-44s %6.2f s%s\n' "$label" "$(awk -v t=$((t1 - t0)) 'BEGIN { print t / 1e9 }')" \
			"$([ $failed = 0 ] || echo " ($failed failed)")"
		stop_pid "$STACK_NGINX_PID"
		stop_pid "$STACK_POOL_PID"
	}
	printf '\n%d concurrent terraform apply runs (3 terraform_data each, own state), 40 ms round trip, wall time:\n' $N
	tf_wall "one repository, group commit" one on
	tf_wall "one repository, group commit off (as before)" one off
	[ -n "$QUICK" ] || tf_wall "a repository each" sep on
fi
fi

# --- the cache and large states -----------------------------------------------------------------
hwm_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }
# the largest peak (VmHWM) among the pool's workers, in MB
pool_hwm() {
	local w m best=0
	for w in $(pgrep -P "$LAST_POOL_PID"); do
		m=$(hwm_mb "$w")
		best=$(awk -v a="$best" -v b="${m:-0}" 'BEGIN { print (b > a ? b : a) }')
	done
	echo "$best"
}
echo

# cache size after N cycles of LOCK, GET, POST, UNLOCK on one state (1 KB, a new serial each),
# on tmpfs as by default; the remote is a git daemon (faster than git http-backend for 1,000
# cycles; the cache holds the same either way)
D=$T_DIR/daemon
mkdir -p "$D"
git init -q --bare "$D/cycles.git"
DPORT=$(free_port)
git daemon --export-all --enable=receive-pack --base-path="$D" --listen=127.0.0.1 --port="$DPORT" \
	--reuseaddr 2>>"$T_DIR/daemon.log" &
STACKS+=("$!")
wait_for 10 "git daemon" git ls-remote "git://127.0.0.1:$DPORT/cycles.git"
many=1000
[ -n "$QUICK" ] && many=100
if only "cache size"; then
	stack_up cachesize TFGIT_ALLOWED_REPOS="git://127.0.0.1:*/*.git" TFGIT_CACHE_DIR="$SHM/cachesize"
	cport=${URL#http://127.0.0.1:}
	cport=${cport%%/*}
	body=$(body_file 1024)
	done_cycles=0
	declare -A CSIZE
	for n in 10 $many; do
		t0=$(ms)
		while [ "$done_cycles" -lt "$n" ]; do
			# nginx closes a keep-alive connection after 1,000 requests: 200 cycles per run
			c=$((n - done_cycles > 200 ? 200 : n - done_cycles))
			"$LOADGEN" "$cport" /tfgit "type=git&repository=git://127.0.0.1:$DPORT/cycles.git&ref=master" 1 "$c" \
				"$body" "$T_DIR/cycles.ops" cyc >/dev/null || echo "# cache size: some operations failed"
			done_cycles=$((done_cycles + c))
		done
		t1=$(ms)
		entry=$(ls -d "$SHM"/cachesize/*.git | head -1)
		CSIZE[$n]=$(du -sk "$SHM/cachesize" | cut -f1)
		[ -z "${BENCH_CACHE_FILES:-}" ] || (cd "$SHM/cachesize" && find . -printf '%k KB %s %p\n' | sort -k3 -n | tail -40 >&2)
		printf 'cache size after %5d cycles on one state: %5d KB (%d KB the repository: %d packs, %d loose objects, %d staged; %s KB apparent), %.1f ms per cycle\n' \
			"$n" "${CSIZE[$n]}" "$(du -sk "$entry" | cut -f1)" "$(find "$entry/objects/pack" -name '*.pack' | wc -l)" \
			"$(find "$entry/objects" -path '*/objects/??/*' -type f | wc -l)" "$(find "$entry/tfgit-stage" -type f 2>/dev/null | wc -l)" \
			"$(du -sk --apparent-size "$SHM/cachesize" | cut -f1)" \
			"$(awk -v t=$((t1 - t0)) -v c=$((n - ${prev:-0})) 'BEGIN { print t / c / 1e6 }')"
		prev=$n
	done
	git clone -q --mirror "$D/cycles.git" "$T_DIR/cycles-gc.git" && git -C "$T_DIR/cycles-gc.git" repack -adq
	printf 'cache size after %d cycles / after 10: %.2fx (target 2x); the history itself, %d versions, packed by git repack -ad: %d KB; the git server'"'"'s own repository: %d KB\n' \
		"$many" "$(awk -v a="${CSIZE[$many]}" -v b="${CSIZE[10]}" 'BEGIN { print a / b }')" "$many" \
		"$(du -sk "$T_DIR/cycles-gc.git/objects/pack" | cut -f1)" "$(du -sk "$D/cycles.git" | cut -f1)"
	stop_pid "$STACK_NGINX_PID"
	stop_pid "$STACK_POOL_PID"
fi

# a large state, pretty-printed as Terraform sends it: POST and GET through nginx and one worker,
# the worker's peak memory (VmHWM, reset between the two) against the target: the state's size +
# 32 MB
big=100
[ -n "$QUICK" ] && big=10
if only "$big MB state"; then
	bare_repo "$ROOT_R/big.git"
	pretty_state $((big * 1024 * 1024)) "$T_DIR/big.json" 1
	stack_up bigstate TFGIT_ALLOWED_REPOS="$BASE/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw \
		TFGIT_CACHE_DIR="$SHM/bigstate" FCGI_WORKERS=1 TFGIT_REMOTE_TIMEOUT=300
	q="repository=$BASE/big.git&state=big.tfstate"
	worker=$(pgrep -P "$LAST_POOL_PID" | head -1)
	curl -s -o /dev/null -X LOCK --data '{"ID":"big-1"}' "$URL?$q"
	echo 5 >"/proc/$worker/clear_refs" 2>/dev/null # the peak so far forgotten
	post=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --data-binary @"$T_DIR/big.json" "$URL?$q&ID=big-1")
	post_hwm=$(hwm_mb "$worker")
	echo 5 >"/proc/$worker/clear_refs" 2>/dev/null
	get=$(curl -s -o "$T_DIR/big.got" -w '%{http_code} %{time_total}' "$URL?$q")
	get_hwm=$(hwm_mb "$worker")
	cmp -s "$T_DIR/big.got" "$T_DIR/big.json" || get="$get (differs!)"
	size=$(awk -v b="$(stat -c %s "$T_DIR/big.json")" 'BEGIN { printf "%.1f", b / 1048576 }')
	printf '%s MB state (%s MiB pretty-printed): POST %s s, worker peak %s MB; GET %s s, worker peak %s MB (target %.1f MB: size + 32)\n' \
		"$big" "$size" "${post#* }" "$post_hwm" "${get#* }" "$get_hwm" "$(awk -v s="$size" 'BEGIN { print s + 32 }')"
	[ "${post%% *}" = 200 ] && [ "${get%% *}" = 200 ] || echo "# $big MB state: POST ${post%% *}, GET ${get%% *}"
	stop_pid "$STACK_NGINX_PID"
	stop_pid "$STACK_POOL_PID"
fi

# a Terraform round trip of a 100 MB state, with the built-in terraform_data only: 5,000 strings
# of 10,000 characters (its input and its output: 100 MB), applied, then read back by terraform
# state pull; full runs only (terraform's own apply of it takes a while)
if command -v terraform >/dev/null && [ -z "$QUICK" ] && only "terraform 100 MB"; then
	bare_repo "$ROOT_R/tfbig.git"
	stack_up tfbig TFGIT_ALLOWED_REPOS="$BASE/*.git" GIT_USERNAME=bench GIT_PASSWORD=benchpw \
		TFGIT_CACHE_DIR="$SHM/tfbig" TFGIT_REMOTE_TIMEOUT=300
	tf_project "$T_DIR/tfbig" "$URL?repository=$BASE/tfbig.git&state=big.tfstate"
	cat >"$T_DIR/tfbig/main.tf" <<'TF'
resource "terraform_data" "big" {
  input = tolist(flatten([for a in range(5) : [for b in range(1000) : format("%010000d", a * 1000 + b)]]))
}
TF
	(cd "$T_DIR/tfbig" && terraform init -no-color -input=false >/dev/null)
	t0=$(ms)
	(cd "$T_DIR/tfbig" && terraform apply -no-color -auto-approve -input=false >/dev/null) || echo "# terraform apply failed"
	t1=$(ms)
	(cd "$T_DIR/tfbig" && terraform state pull >"$T_DIR/tfbig.pulled") || echo "# terraform state pull failed"
	t2=$(ms)
	stored=$(git --git-dir="$ROOT_R/tfbig.git" cat-file -s master:big.tfstate 2>/dev/null || echo 0)
	same=$(cmp -s <(git --git-dir="$ROOT_R/tfbig.git" cat-file blob master:big.tfstate) <(head -c "$stored" "$T_DIR/tfbig.pulled") && echo "the same" || echo "NOT the same")
	sec() { awk -v t="$1" 'BEGIN { printf "%.1f", t / 1e9 }'; }
	tf_ms() { awk -v m="$1" '$0 ~ m " state=big" { for (i = 1; i <= NF; i++) if ($i == "in") print $(i + 1) }' "$T_DIR/pool.log" | tail -1; }
	printf 'terraform round trip of a %.1f MiB state (terraform_data): apply %s s (tfgit POST %s ms), state pull %s s (tfgit GET %s ms), %s as stored; worker peak %s MB (target %.1f MB)\n' \
		"$(awk -v b="$stored" 'BEGIN { print b / 1048576 }')" "$(sec $((t1 - t0)))" "$(tf_ms POST)" "$(sec $((t2 - t1)))" \
		"$(tf_ms GET)" "$same" "$(pool_hwm)" "$(awk -v b="$stored" 'BEGIN { print b / 1048576 + 32 }')"
	stop_pid "$STACK_NGINX_PID"
	stop_pid "$STACK_POOL_PID"
fi

# what encryption at rest costs per MB (tests/tools/cryptbench: AES-256-GCM through libcrypto)
echo
if only "encryption"; then "$BUILD_DIR/tools/cryptbench"; fi
