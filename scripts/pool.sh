#!/usr/bin/env bash
# Starts the tfgit FastCGI pool in the foreground: spawn-fcgi binds the socket and hands it to
# tfgit.fcgi --workers N. Settings come from spawn-fcgi.conf; the environment wins over it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conf=${TFGIT_CONF:-$root/spawn-fcgi.conf}
bin=${TFGIT_BIN:-$root/build/tfgit.fcgi}

while IFS= read -r line || [ -n "$line" ]; do
	line=${line%%#*}
	[[ $line =~ ^[[:space:]]*([A-Z_][A-Z0-9_]*)=(.*[^[:space:]])?[[:space:]]*$ ]] || continue
	key=${BASH_REMATCH[1]}
	[ -n "${!key+x}" ] || export "$key=${BASH_REMATCH[2]:-}"
done <"$conf"

[ -x "$bin" ] || { echo "pool.sh: $bin is not built; run make first" >&2; exit 1; }
# SPAWN_FCGI, else the PATH, else where Debian installs it (sbin is not on a user's PATH)
spawn=${SPAWN_FCGI:-$(PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin command -v spawn-fcgi)} || true
[ -x "$spawn" ] || { echo "pool.sh: spawn-fcgi not found${SPAWN_FCGI:+ (SPAWN_FCGI=$SPAWN_FCGI)}: install it (Debian: sudo apt-get install spawn-fcgi)" >&2; exit 1; }
args=(-n -s "$FCGI_SOCKET" -M "$FCGI_SOCKET_MODE")
# whatever umask we inherit: nobody else may replace the socket or read the cache
# nothing is followed through a symlink another user could have placed
for d in "$(dirname "$FCGI_SOCKET")" ${TFGIT_CACHE_DIR:+"$TFGIT_CACHE_DIR"}; do
	if [ -L "$d" ]; then
		echo "pool.sh: $d is a symlink; give a real directory" >&2
		exit 1
	fi
done
install -d -m 755 "$(dirname "$FCGI_SOCKET")"
# unset, each worker uses /dev/shm/tfgit-<its uid> (or, when another account made that first,
# its ~/.cache/tfgit) and makes it itself
[ -z "${TFGIT_CACHE_DIR:-}" ] || install -d -m 700 "$TFGIT_CACHE_DIR"
rm -f "$FCGI_SOCKET"
if [ "$(id -u)" -eq 0 ]; then
	args+=(-u "$FCGI_USER" -g "$FCGI_GROUP" -U "$FCGI_USER" -G "$FCGI_GROUP")
	[ -z "${TFGIT_CACHE_DIR:-}" ] || chown "$FCGI_USER:$FCGI_GROUP" "$TFGIT_CACHE_DIR"
	if ! runuser -u "$FCGI_USER" -- test -x "$bin"; then
		# e.g. a clone under /root: run a copy from the socket's directory instead
		install -m 755 "$bin" "$(dirname "$FCGI_SOCKET")/tfgit.fcgi"
		bin=$(dirname "$FCGI_SOCKET")/tfgit.fcgi
		echo "pool.sh: $FCGI_USER cannot reach the build; running a copy, $bin" >&2
	fi
fi
# FCGI_WORKERS=0: one responder, no supervisor (as under a web server that manages processes)
workers=()
[ "${FCGI_WORKERS:-0}" -gt 0 ] && workers=(--workers "$FCGI_WORKERS")
# TFGIT_WRAPPER runs the pool under a checker (make valgrind); word splitting is wanted here
# shellcheck disable=SC2086
exec "$spawn" "${args[@]}" -- ${TFGIT_WRAPPER:-} "$bin" "${workers[@]}"
