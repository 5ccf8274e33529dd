#!/usr/bin/env bash
# make run: serves tfgit on 127.0.0.1:$PORT in the foreground until Ctrl-C or SIGTERM, with all
# runtime files under $STATE_DIR and a default bare repository there.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
PORT=${PORT:-8080}
STATE_DIR=${STATE_DIR:-/var/tmp/tfgit}
mkdir -p "$STATE_DIR"
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

trap 'stack_stop; exit 0' INT TERM
stack_start "$STATE_DIR" "$PORT"
addr="$STACK_URL?type=git&ref=${TFGIT_DEFAULT_REF:-master}&state=default.tfstate"
cat <<BLOCK

tfgit is serving $TFGIT_DEFAULT_REPOSITORY at $STACK_URL (Ctrl-C stops it).
Paste this into your Terraform configuration:

terraform {
  backend "http" {
    address        = "$addr"
    lock_address   = "$addr"
    unlock_address = "$addr"
  }
}

BLOCK
# wait until either process ends (or a signal arrives), then stop both
wait -n "$STACK_POOL_PID" "$STACK_NGINX_PID" || true
stack_stop
