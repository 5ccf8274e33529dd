#!/usr/bin/env bash
# make run: serves tfgit on 127.0.0.1:$PORT in the foreground until Ctrl-C or SIGTERM, with all
# runtime files under $STATE_DIR and a default bare repository there. NGINX_INCLUDE: a file
# included in nginx's server { } (auth_basic, say).
set -euo pipefail
. "$(dirname "$0")/stack.sh"
PORT=${PORT:-8080}
STATE_DIR=${STATE_DIR:-/var/tmp/tfgit}
umask 022
# nginx's configuration, the socket and the cache go here: another user's directory (one made
# in /var/tmp before us, say) or a symlink could hand them to that user
if [ -L "$STATE_DIR" ]; then
	echo "make run: STATE_DIR=$STATE_DIR is a symlink; give a real directory" >&2
	exit 1
fi
mkdir -p "$STATE_DIR"
if [ ! -O "$STATE_DIR" ] || [ $(( 8#$(stat -c %a "$STATE_DIR") & 8#022 )) -ne 0 ]; then
	echo "make run: STATE_DIR=$STATE_DIR must belong to you ($(id -un)) and be writable by no one" \
		"else (it is $(stat -c '%U %a' "$STATE_DIR")); remove it or choose another" >&2
	exit 1
fi
STATE_DIR=$(cd "$STATE_DIR" && pwd)
export TFGIT_BIN=${TFGIT_BIN:-$STACK_ROOT/${BUILD:-build}/tfgit.fcgi}
repo=$STATE_DIR/repo.git
if [ -z "${TFGIT_DEFAULT_REPOSITORY:-}" ]; then
	export TFGIT_DEFAULT_REPOSITORY=$repo
	if [ ! -d "$repo" ]; then
		git init -q --bare "$repo"
		echo "created the default repository $repo"
	fi
	[ "$(id -u)" -ne 0 ] || chown -R "$(stack_pool_user)" "$repo"
fi
export TFGIT_CACHE_DIR=${TFGIT_CACHE_DIR:-$STATE_DIR/cache}
if [ -n "${NGINX_INCLUDE:-}" ]; then
	if [ ! -f "$NGINX_INCLUDE" ]; then
		echo "make run: NGINX_INCLUDE=$NGINX_INCLUDE is not a file" >&2
		exit 1
	fi
	STACK_NGINX_INCLUDE=$(realpath "$NGINX_INCLUDE") # nginx reads it from its own directory
	export STACK_NGINX_INCLUDE
fi

# Started as root, the pool and nginx's workers run as another user: it must reach the socket
# under STATE_DIR and a local default repository, or every request would be a 502.
user=$(stack_pool_user)
if [ "$(id -u)" -eq 0 ]; then
	if ! runuser -u "$user" -- test -x "$STATE_DIR"; then
		echo "make run: $user (the user of the pool and of nginx's workers) cannot reach" \
			"STATE_DIR=$STATE_DIR: a directory on the way is closed to other users" \
			"(/root is 0700). Choose one it can reach: make run STATE_DIR=/var/tmp/tfgit" >&2
		exit 1
	fi
	repo_dir=${TFGIT_DEFAULT_REPOSITORY#file://}
	if [[ $repo_dir == /* ]] && ! runuser -u "$user" -- test -w "$repo_dir/refs"; then
		echo "make run: $user cannot write the default repository $repo_dir; give it to that" \
			"user (chown -R $user $repo_dir) or choose another TFGIT_DEFAULT_REPOSITORY" >&2
		exit 1
	fi
fi

# what failed while it served: the requests the pool kept (tfgit failures, from the cache
# directory), printed when make run stops, with their ids (the log lines above carry them)
started=$(date +%s.%N)
# the tfgit command as the pool's user (whose cache it is) can run it: the build's, or a copy in
# STATE_DIR when that user cannot reach the build (a clone under a 0700 directory, /root)
CLI=$STACK_ROOT/${BUILD:-build}/tfgit
if [ "$(id -u)" -eq 0 ] && [ -x "$CLI" ] && ! runuser -u "$user" -- test -x "$CLI"; then
	install -m 755 "$CLI" "$STATE_DIR/tfgit"
	CLI=$STATE_DIR/tfgit
fi
failures() {
	local out
	[ -x "$CLI" ] || return 0
	if [ "$(id -u)" -eq 0 ]; then
		out=$(runuser -u "$user" -- "$CLI" failures --since "$started" 2>&1) || return 0
	else
		out=$("$CLI" failures --since "$started" 2>&1) || return 0
	fi
	if [[ $out == *"no failed request kept"* ]]; then
		echo "make run: no request failed while it served."
	else
		printf '\nmake run: requests that failed while it served, newest first (find the log line of\n'
		printf 'each above by its id; the web view %s/ui/ shows them too):\n%s\n' "$STACK_URL" "$out"
	fi
}
trap 'stack_stop; failures; exit 0' INT TERM
stack_start "$STATE_DIR" "$PORT"
addr="$STACK_URL?type=git&ref=${TFGIT_DEFAULT_REF:-master}&state=default.tfstate"
# get URL: the status of a GET of URL without credentials; its body in $STATE_DIR/probe.out
get() { curl -s -o "$STATE_DIR/probe.out" -w '%{http_code}' "$1" || echo 000; }
# what proves nginx reaches the pool and the pool the default repository, whatever guards the
# state's address (auth_basic, TFGIT_ACL_FILE): the pool's health address with deep=1, asked
# through nginx's /.tfgit-ready/health (this host only, no credentials)
probe=$(get "${STACK_URL%/tfgit}/.tfgit-ready/health?deep=1")
if [ "$probe" != 200 ]; then
	echo "make run: the pool's health check (/tfgit/health?deep=1) answers $probe: $(head -c 600 "$STATE_DIR/probe.out" 2>/dev/null)" >&2
	[ "$probe" != 502 ] || echo "make run: nginx cannot reach the pool's socket $FCGI_SOCKET" >&2
	echo "make run: the pool's own lines, if any, are above; stopping" >&2
	stack_stop
	exit 1
fi
# what a client without credentials meets at the state's address: the operator must know
notice=""
probe=$(get "$addr")
case $probe in
200 | 204) ;;
401)
	notice="Requests need credentials: nginx answers 401 without them (auth_basic${STACK_NGINX_INCLUDE:+ in $STACK_NGINX_INCLUDE}).
Add username and password to the block (or set TF_HTTP_USERNAME and TF_HTTP_PASSWORD)." ;;
403)
	notice="A request without credentials is refused (403): $(sed -n 's/.*"error": *"\(.*\)".*/\1/p' "$STATE_DIR/probe.out" | head -c 300)."
	if [ -z "${STACK_NGINX_INCLUDE:-}" ]; then
		notice="$notice
Nothing authenticates in front (NGINX_INCLUDE with auth_basic): every request is anonymous,
so the ACL${TFGIT_ACL_FILE:+ ($TFGIT_ACL_FILE)} must grant anonymous what Terraform needs (read, write, lock)."
	else
		notice="$notice
Requests need the credentials of a user the ACL${TFGIT_ACL_FILE:+ ($TFGIT_ACL_FILE)} grants."
	fi ;;
*)
	echo "make run: a GET of $STACK_URL answers $probe: $(head -c 600 "$STATE_DIR/probe.out" 2>/dev/null)" >&2
	echo "make run: the pool's own lines, if any, are above; stopping" >&2
	stack_stop
	exit 1 ;;
esac
rm -f "$STATE_DIR/probe.out"
started=$(date +%s.%N) # from here: the start-up probes above are not the clients' failures
cat <<BLOCK

tfgit is serving $TFGIT_DEFAULT_REPOSITORY at $STACK_URL (Ctrl-C stops it).
Its states and the last failed requests: $STACK_URL/ui/ (failures are listed here too when it stops).
Paste this into your Terraform configuration:

terraform {
  backend "http" {
    address        = "$addr"
    lock_address   = "$addr"
    unlock_address = "$addr"
  }
}

BLOCK
[ -z "$notice" ] || printf '%s\n\n' "$notice"
# the admin command on this very stack: its settings, its cache, as its pool's user
admin="env$(env | grep -E '^TFGIT_[A-Z_]+=' | grep -vE '^TFGIT_(BIN|CONF|WRAPPER|ALLOW_ROOT)=' | sort |
	while IFS= read -r kv; do printf ' %q' "$kv"; done) $(printf %q "$CLI") states"
if [ "$(id -u)" -eq 0 ]; then
	if command -v sudo >/dev/null; then admin="sudo -u $user $admin"; else admin="runuser -u $user -- $admin"; fi
fi
printf 'The tfgit command (README: Operating it) for this stack:\n  %s\n\n' "$admin"
# wait until either process ends (or a signal arrives), then stop both
wait -n "$STACK_POOL_PID" "$STACK_NGINX_PID" || true
stack_stop
failures
