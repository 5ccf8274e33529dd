#!/usr/bin/env bash
# SSH remotes against a real OpenSSH sshd on loopback: key file and ssh-agent authentication,
# host keys checked against known_hosts (strict, accept-new, off, a changed key refused),
# ssh:// and scp-like URLs, a Terraform apply, and a server that never answers; a worker's
# session kept between operations (a channel per command), reconnected when the server closed
# it, its host key checked again at each use, and TFGIT_KEEP_CONNECTIONS=0 connecting anew.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"

SSH_LOGLEVEL=VERBOSE ssh_server
R=$(ssh_repo state)
REPO="ssh://$SSH_USER@127.0.0.1:$SSH_PORT$R"
ALLOW="ssh://$SSH_USER@127.0.0.1:*$SSH_DIR/repos/*.git $SSH_USER@127.0.0.1:$SSH_DIR/repos/*.git"
PW=$T_DIR/pool-writable
mkdir -p "$PW"
[ "$(id -u)" -eq 0 ] && chown "$POOL_USER" "$PW"
KH=$T_DIR/known_hosts
echo "[127.0.0.1]:$SSH_PORT $HOST_PUB" >"$KH"
chmod 644 "$KH"
LOCK='{"ID":"ssh-1","Who":"ci@runner"}'
cycle() { # cycle REPOSITORY STATE
	local q="repository=$1&state=$2"
	req LOCK "$q" --data "$LOCK"; [ "$CODE" = 200 ] || { echo "LOCK $CODE $BODY"; return 1; }
	req POST "$q&ID=ssh-1" --data '{"version":4,"serial":1,"lineage":"t"}'; [ "$CODE" = 200 ] || { echo "POST $CODE $BODY"; return 1; }
	req GET "$q"; [ "$BODY" = '{"version":4,"serial":1,"lineage":"t"}' ] || { echo "GET $CODE $BODY"; return 1; }
	req UNLOCK "$q" --data "$LOCK"; [ "$CODE" = 200 ] || { echo "UNLOCK $CODE $BODY"; return 1; }
}

stack_up key TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$KH"
check "ssh:// with a key file (SSH_PRIVATE_KEY): LOCK, POST, GET, UNLOCK" cycle "$REPO" a.tfstate
check "... the state is on the SSH server's repository" expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$(g "$R" show master:a.tfstate)"
check "... and the lock branch is gone there" expect_eq locks "" "$(g "$R" for-each-ref refs/heads/locks)"

if [ "$(id -u)" -eq 0 ] && ! (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null; then
	# scp-like URLs have no port: a second sshd on 127.0.0.1:22
	sed "s/^ListenAddress .*/ListenAddress 127.0.0.1:22/; s|^PidFile .*|PidFile $SSH_DIR/sshd22.pid|" \
		"$SSH_DIR/sshd_config" >"$SSH_DIR/sshd22_config"
	/usr/sbin/sshd -D -e -f "$SSH_DIR/sshd22_config" >>"$SSH_DIR/sshd.log" 2>&1 &
	STACKS+=("$!")
	wait_for 10 "sshd on 22" eval "(exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null"
	echo "127.0.0.1 $HOST_PUB" >>"$KH"
	check "scp-like user@host:path with a key file" cycle "$SSH_USER@127.0.0.1:$R" scp.tfstate
else
	skip "scp-like user@host:path with a key file" "port 22 on 127.0.0.1 is taken or not root"
fi

agent_pid=$(as_pool ssh-agent -s -a "$PW/agent.sock" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
STACKS+=("$agent_pid")
wait_for 10 "ssh-agent" test -S "$PW/agent.sock"
SSH_AUTH_SOCK=$PW/agent.sock as_pool ssh-add -q "$CLIENT_KEY" 2>/dev/null
stack_up agent TFGIT_ALLOWED_REPOS="$ALLOW" SSH_AUTH_SOCK="$PW/agent.sock" \
	SSH_PRIVATE_KEY=/nonexistent TFGIT_SSH_KNOWN_HOSTS="$KH"
check "ssh:// through ssh-agent (SSH_AUTH_SOCK)" cycle "$REPO" b.tfstate

stack_up wrongkey TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$SSH_DIR/other_key" TFGIT_SSH_KNOWN_HOSTS="$KH"
req GET "repository=$REPO&state=a.tfstate"
check "a key the server does not know is 502" expect_eq code 502 "$CODE"
check "... saying authentication failed" grep -q 'authentication to 127.0.0.1 failed' <<<"$BODY"

ssh-keygen -q -t ed25519 -N '' -f "$T_DIR/impostor" -C impostor
echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$T_DIR/impostor.pub")" >"$T_DIR/kh-changed"
chmod 644 "$T_DIR/kh-changed"
stack_up changed TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$T_DIR/kh-changed"
req GET "repository=$REPO&state=a.tfstate"
check "a host key that differs from known_hosts is 502" expect_eq code 502 "$CODE"
check "... saying it does not match" grep -q 'does not match known_hosts' <<<"$BODY"

: >"$T_DIR/kh-empty"
chmod 644 "$T_DIR/kh-empty"
stack_up unknown TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$T_DIR/kh-empty"
req GET "repository=$REPO&state=a.tfstate"
check "a host not in known_hosts is 502" expect_eq code 502 "$CODE"
check "... saying so" grep -q 'is not in known_hosts' <<<"$BODY"

as_pool touch "$PW/kh-new"
stack_up acceptnew TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" \
	TFGIT_SSH_KNOWN_HOSTS="$PW/kh-new" StrictHostKeyChecking=accept-new
req GET "repository=$REPO&state=a.tfstate"
check "StrictHostKeyChecking=accept-new accepts a first key" expect_eq code 200 "$CODE"
check "... and records it in known_hosts" grep -q "$(cut -d' ' -f2 <<<"$HOST_PUB")" "$PW/kh-new"
cp "$T_DIR/kh-changed" "$PW/kh-new"
req GET "repository=$REPO&state=a.tfstate"
check "... but refuses a changed key" expect_eq code 502 "$CODE"

stack_up nocheck TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" \
	TFGIT_SSH_KNOWN_HOSTS="$T_DIR/kh-changed" StrictHostKeyChecking=no
req GET "repository=$REPO&state=a.tfstate"
check "StrictHostKeyChecking=no connects whatever the key" expect_eq code 200 "$CODE"
check "... and warns at start" grep -q 'WARNING: StrictHostKeyChecking=no' "$T_DIR/pool.log"

# --- a session kept per worker: one connection, a channel per git command ------------------------
logged() { grep -c "$1" "$SSH_DIR/sshd.log"; } # logged PATTERN: how many lines of sshd's log say it
cp "$KH" "$PW/kh-keep"
stack_up keep TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$PW/kh-keep" \
	FCGI_WORKERS=1
conns=$(logged 'Accepted publickey') cmds=$(logged 'Starting session: command')
check "kept session: three LOCK, POST, GET, UNLOCK cycles" eval 'cycle "$REPO" k1.tfstate && cycle "$REPO" k2.tfstate && cycle "$REPO" k1.tfstate'
check "... are one SSH connection" expect_eq connections 1 "$(($(logged 'Accepted publickey') - conns))"
check "... carrying a command per git exchange (at least 12)" \
	eval "[ $(($(logged 'Starting session: command') - cmds)) -ge 12 ]"
check "... the state is there" expect_eq state '{"version":4,"serial":1,"lineage":"t"}' "$(g "$R" show master:k2.tfstate)"
conns=$(logged 'Accepted publickey')
req GET "repository=ssh://$SSH_USER@127.0.0.1:$SSH_PORT$SSH_DIR/repos/missing.git&state=a.tfstate"
check "a repository the SSH server does not have is 502" expect_eq code 502 "$CODE"
check "... with the server's words" grep -q 'does not appear to be a git repository' <<<"$BODY"
req GET "repository=$REPO&state=k1.tfstate"
check "... and the session stays: the next GET is 200" expect_eq code 200 "$CODE"
check "... on the same connection" expect_eq connections 0 "$(($(logged 'Accepted publickey') - conns))"
# the server ends the connection (its per-connection processes go): the next request connects anew
sshd_pid=$(cat "$SSH_DIR/sshd.pid")
kids=$(pgrep -P "$sshd_pid" | tr '\n' ' ')
check "... the server's side of the kept connection is found" test -n "$kids"
kill $kids
wait_for 10 "the kept connection's sshd to end" eval "! kill -0 ${kids%% *} 2>/dev/null"
conns=$(logged 'Accepted publickey')
check "a kept session the server closed: the next cycle works" cycle "$REPO" k3.tfstate
check "... on one new connection" expect_eq connections 1 "$(($(logged 'Accepted publickey') - conns))"
check "... and the worker says nothing failed" eval '! grep -q "k3.tfstate.* -> 5" "$T_DIR/pool.log"'
# known_hosts is read at each use of a kept session, as when every operation connected anew
cp "$T_DIR/kh-changed" "$PW/kh-keep"
req GET "repository=$REPO&state=k1.tfstate"
check "a kept session whose host key no longer matches known_hosts is 502" expect_eq code 502 "$CODE"
check "... saying it does not match" grep -q 'does not match known_hosts' <<<"$BODY"
cp "$KH" "$PW/kh-keep"
conns=$(logged 'Accepted publickey')
req GET "repository=$REPO&state=k1.tfstate"
check "... and known_hosts put back, a GET works" expect_eq code 200 "$CODE"
check "... on a new connection (the refused session was closed)" expect_eq connections 1 "$(($(logged 'Accepted publickey') - conns))"

stack_up nokeep TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$KH" \
	FCGI_WORKERS=1 TFGIT_KEEP_CONNECTIONS=0
conns=$(logged 'Accepted publickey')
check "TFGIT_KEEP_CONNECTIONS=0: a cycle over SSH" cycle "$REPO" k4.tfstate
check "... connects for each operation (at least 4 connections)" \
	eval "[ $(($(logged 'Accepted publickey') - conns)) -ge 4 ]"

# two host key rules in one worker: each location's requests get a session opened under its own
# known_hosts (a new session asks for the key type its known_hosts holds; a server with two)
ssh-keygen -q -t ecdsa -N '' -f "$SSH_DIR/host_ecdsa" -C host
SSH_PORT2=$(free_port)
sed "s/^ListenAddress .*/ListenAddress 127.0.0.1:$SSH_PORT2/; s|^PidFile .*|PidFile $SSH_DIR/sshd2.pid|" \
	"$SSH_DIR/sshd_config" >"$SSH_DIR/sshd2_config"
echo "HostKey $SSH_DIR/host_ecdsa" >>"$SSH_DIR/sshd2_config"
/usr/sbin/sshd -D -e -f "$SSH_DIR/sshd2_config" >>"$SSH_DIR/sshd.log" 2>&1 &
STACKS+=("$!")
wait_for 10 "the second sshd" eval "(exec 3<>/dev/tcp/127.0.0.1/$SSH_PORT2) 2>/dev/null"
echo "[127.0.0.1]:$SSH_PORT2 $(cut -d' ' -f1,2 "$SSH_DIR/host_ecdsa.pub")" >"$T_DIR/kh-ecdsa"
echo "[127.0.0.1]:$SSH_PORT2 $HOST_PUB" >"$T_DIR/kh-ed25519"
chmod 644 "$T_DIR/kh-ecdsa" "$T_DIR/kh-ed25519"
cat >"$T_DIR/other.conf" <<NGINX
location = /other {
    fastcgi_pass tfgit_pool;
    include /etc/nginx/fastcgi_params;
    fastcgi_param TFGIT_SSH_KNOWN_HOSTS $T_DIR/kh-ed25519;
}
NGINX
STACK_NGINX_INCLUDE=$T_DIR/other.conf FCGI_WORKERS=1 stack_up rules TFGIT_ALLOWED_REPOS="$ALLOW" \
	SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$T_DIR/kh-ecdsa"
BASE_K=${URL%/tfgit}
REPO2="ssh://$SSH_USER@127.0.0.1:$SSH_PORT2$R"
conns=$(logged 'Accepted publickey') codes=
for loc in tfgit other other tfgit other tfgit; do
	URL=$BASE_K/$loc
	req GET "repository=$REPO2&state=k1.tfstate"
	codes="$codes$CODE "
done
URL=$BASE_K/tfgit
check "two locations with their own known_hosts (ecdsa, ed25519) in one worker: every GET is 200" \
	expect_eq codes "200 200 200 200 200 200 " "$codes"
check "... on two kept sessions, one per known_hosts" expect_eq connections 2 "$(($(logged 'Accepted publickey') - conns))"

# a kept session whose server stops answering (a peer gone without a word: NAT, failover): the
# command goes to a new session after 2 s; a whole server that stops is still bounded by
# TFGIT_REMOTE_TIMEOUT
tree() { local p; for p in $(pgrep -P "$1"); do echo "$p"; tree "$p"; done; } # tree PID: its descendants
stack_up stall TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$KH" \
	FCGI_WORKERS=1 TFGIT_REMOTE_TIMEOUT=20
req GET "repository=$REPO&state=k1.tfstate"
check "stall: a GET opens the worker's session" expect_eq code 200 "$CODE"
frozen=$(tree "$sshd_pid" | tr '\n' ' ')
kill -STOP $frozen
conns=$(logged 'Accepted publickey') start=$SECONDS
req GET "repository=$REPO&state=k1.tfstate" --max-time 60
elapsed=$((SECONDS - start))
kill -CONT $frozen
check "a kept session whose server stopped answering: the GET is 200" expect_eq code 200 "$CODE"
check "... on a new session" expect_eq connections 1 "$(($(logged 'Accepted publickey') - conns))"
check "... well within TFGIT_REMOTE_TIMEOUT=20 (2 s and a margin)" eval "[ $elapsed -le 8 ]"
stack_up stall2 TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" TFGIT_SSH_KNOWN_HOSTS="$KH" \
	FCGI_WORKERS=1 TFGIT_REMOTE_TIMEOUT=3
req GET "repository=$REPO&state=k1.tfstate"
frozen="$sshd_pid $(tree "$sshd_pid" | tr '\n' ' ')"
kill -STOP $frozen
start=$SECONDS
req GET "repository=$REPO&state=k1.tfstate" --max-time 30
elapsed=$((SECONDS - start))
kill -CONT $frozen
check "an SSH server that stopped answering altogether is 504" expect_eq code 504 "$CODE"
check "... within TFGIT_REMOTE_TIMEOUT=3 (and a margin)" eval "[ $elapsed -le 7 ]"
req GET "repository=$REPO&state=k1.tfstate" --max-time 30
check "... and the next request works (on a new session)" expect_eq code 200 "$CODE"

blackhole
stack_up hang TFGIT_ALLOWED_REPOS="$ALLOW" SSH_PRIVATE_KEY="$CLIENT_KEY" \
	TFGIT_SSH_KNOWN_HOSTS="$KH" TFGIT_REMOTE_TIMEOUT=2 FCGI_WORKERS=1
start=$SECONDS
req GET "repository=ssh://$SSH_USER@127.0.0.1:$HOLE_PORT$R&state=a.tfstate" --max-time 30
check "an SSH server that never answers is 504" expect_eq code 504 "$CODE"
check "... within TFGIT_REMOTE_TIMEOUT=2 (and a margin)" eval "[ $((SECONDS - start)) -le 6 ]"
req GET "repository=$REPO&state=a.tfstate" --max-time 30
check "the only worker serves the next request" expect_eq code 200 "$CODE"

tf_over SSH "$URL?repository=$REPO" over-ssh "$R" master
check "git fsck of the SSH server's repository is clean" g "$R" fsck --strict
finish
