#!/usr/bin/env bash
# The default cache, /dev/shm/tfgit-<uid>, made first by another account (issue 18): whatever
# is there (that account's directory, open or closed, a symlink, a file) is left untouched and
# the account is served from its own cache on its disk, <home>/.cache/tfgit, made 0700 whatever
# the umask; tfgit doctor names both. A TFGIT_CACHE_DIR given stays refused; no usable fallback
# fails closed, saying what to do.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/servers.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "another account's /dev/shm/tfgit-<uid> does not stop the account" "needs root to make the accounts"
	finish
	exit
fi
V=tfgit-shm-victim S=tfgit-shm-squatter
HOME_V=$T_DIR/home-victim
MADE_USERS=()
for u in $V $S; do
	id "$u" >/dev/null 2>&1 || { useradd --system --no-create-home --shell /usr/sbin/nologin "$u" && MADE_USERS+=("$u"); }
done
usermod -d "$HOME_V" $V
install -d -o $V -m 700 "$HOME_V"
UV=$(id -u $V) US=$(id -u $S)
SHM=/dev/shm/tfgit-$UV
FALLBACK=$HOME_V/.cache/tfgit
shm_cleanup() {
	cleanup
	rm -rf "$SHM"
	local u
	for u in "${MADE_USERS[@]}"; do userdel "$u" 2>/dev/null; done
}
trap shm_cleanup EXIT
R=$(new_remote shm)
chown -R $V "$R"

# as_victim BODY VAR=value...: one CGI request as the victim under umask 000, the default cache
as_victim() {
	local body=$1 um
	shift
	um=$(umask)
	umask 000
	cgi $V "$body" TFGIT_DEFAULT_REPOSITORY="$R" "$@"
	umask "$um"
}
# what the squatter's entry is: type, owner, mode, time, and what a directory holds
squat_seen() { stat -c '%F %U %a %Y' "$SHM"; [ ! -d "$SHM" ] || [ -L "$SHM" ] || ls -lA "$SHM"; }

serial=0
for kind in closed open symlink file ours-open; do
	rm -rf "$SHM" "$T_DIR/bait"
	case $kind in
	closed) install -d -o $S -m 700 "$SHM" ;;
	open) install -d -o $S -m 777 "$SHM" && runuser -u $S -- touch "$SHM/planted" ;;
	symlink) install -d -o $S -m 777 "$T_DIR/bait" && ln -s "$T_DIR/bait" "$SHM" && chown -h $S "$SHM" ;;
	file) runuser -u $S -- touch "$SHM" ;;
	ours-open) install -d -o $V -m 777 "$SHM" ;; # the account's own, but open to every user
	esac
	before=$(squat_seen)
	serial=$((serial + 1))
	st="{\"version\":4,\"serial\":$serial,\"lineage\":\"shm\"}"
	lockq="state=v.tfstate"
	as_victim "{\"ID\":\"shm-$serial\"}" REQUEST_METHOD=LOCK QUERY_STRING="$lockq"
	codes=$CODE
	as_victim "$st" REQUEST_METHOD=POST QUERY_STRING="$lockq&ID=shm-$serial" CONTENT_LENGTH=${#st}
	codes="$codes $CODE"
	as_victim "" REQUEST_METHOD=GET QUERY_STRING="$lockq"
	codes="$codes $CODE"
	got=$BODY
	as_victim "{\"ID\":\"shm-$serial\"}" REQUEST_METHOD=UNLOCK QUERY_STRING="$lockq"
	codes="$codes $CODE"
	check "/dev/shm/tfgit-<uid> made first ($kind): LOCK, POST, GET, UNLOCK all 200" \
		expect_eq codes "200 200 200 200" "$codes"
	check "... the GET answers what the POST wrote" expect_eq body "$st" "$got"
	check "... and the state is on the remote" expect_eq state "$st" "$(g "$R" show master:v.tfstate)"
	check "... what was at $SHM is untouched (not removed, not chmodded, nothing added)" \
		expect_eq squat "$before" "$(squat_seen)"
	check "... nothing of the account went into it (or where it points)" \
		expect_eq files "" "$(find -L "$SHM" -mindepth 1 -user $V 2>/dev/null; find "$T_DIR/bait" -mindepth 1 2>/dev/null)"
	check "... the cache is $FALLBACK, 0700, the account's (umask 000)" \
		expect_eq fallback "directory $V 700" "$(stat -c '%F %U %a' "$FALLBACK")"
	check "... holding the remote's cache" eval "ls -d '$FALLBACK'/*.git >/dev/null"
	check "... and the log (stderr: the web server's error log) says which and why" \
		grep -q "the cache is $FALLBACK (on disk: .*) instead of $SHM: $SHM " "$T_DIR/cgi.err"
done
check "the fallback's files are the account's alone (nothing readable by others)" \
	expect_eq others "" "$(find "$FALLBACK" -perm /077 -not -type l)"
check "... on a disk, where every object read is checked against its id" \
	eval "[ \"\$(stat -f -c %T '$FALLBACK')\" != tmpfs ]"

# tfgit doctor as the account names the problem and the cache in use, and is not a failure
rm -rf "$SHM"
install -d -o $S -m 700 "$SHM"
doctor_v() {
	(cd / && setpriv --reuid=$V --regid="$(id -g $V)" --clear-groups -- env -i PATH=/usr/bin:/bin \
		TFGIT_DEFAULT_REPOSITORY="$R" "$@" "$TFGIT_CLI_BIN" doctor) >"$T_DIR/doctor.out" 2>&1
}
doctor_v
check "tfgit doctor with a squatted /dev/shm/tfgit-<uid>: exit 0" expect_eq status 0 "$?"
check "... a warning naming it, its owner and the cache in use" \
	grep -q "^warning: .*$SHM belongs to uid $US, not to this user (uid $UV); the cache in use is $FALLBACK" "$T_DIR/doctor.out"
check "... and how to fix it" grep -q "fix: .*ask root to remove $SHM" "$T_DIR/doctor.out"
check "... counted as a warning, not a problem" grep -qx '0 problems, 1 warning' "$T_DIR/doctor.out"

# no fallback either (the home open to every user): fail closed, saying what to do
chmod 777 "$HOME_V"
as_victim "" REQUEST_METHOD=GET QUERY_STRING="state=v.tfstate"
check "no usable fallback (the home writable by others): 500" expect_eq code 500 "$CODE"
check "... the log names both and says to set TFGIT_CACHE_DIR" \
	grep -q "no usable cache directory: $SHM belongs to uid $US.*, and $HOME_V is not a directory of this user (or root) writable by it alone; set TFGIT_CACHE_DIR" "$T_DIR/cgi.err"
doctor_v
check "... tfgit doctor: exit 1, naming it" \
	eval "[ $? = 1 ] && grep -q 'problem: the settings: no usable cache directory' '$T_DIR/doctor.out'"
chmod 700 "$HOME_V"

# TFGIT_CACHE_DIR given: the operator's choice is refused, never replaced
as_victim "" REQUEST_METHOD=GET QUERY_STRING="state=v.tfstate" TFGIT_CACHE_DIR="$SHM"
check "TFGIT_CACHE_DIR=$SHM given, another's: 500 naming it" \
	answered 500 "$SHM belongs to uid $US, not to this process's user (uid $UV)"
check "... and the fallback is not used" eval "! grep -q 'the cache is' '$T_DIR/cgi.err'"

# a pool as the account, its cache left to the default: served, and the fallback logged once a
# process, not once a request
stack_up shm FCGI_USER=$V FCGI_GROUP="$(id -gn $V)" FCGI_WORKERS=1 TFGIT_CACHE_DIR= \
	TFGIT_DEFAULT_REPOSITORY="$R" TFGIT_REQUIRE_LOCK=0
codes=""
st='{"version":4,"serial":99,"lineage":"shm"}'
for i in 1 2 3; do
	req POST "state=p.tfstate" --data "$st"
	codes="$codes $CODE"
done
req GET "state=p.tfstate"
check "a pool as the account, default cache squatted: POSTs and GET 200" \
	eval "[ '$CODE' = 200 ] && [ '$BODY' = '$st' ] && [ '$codes' = ' 200 200 200' ]"
check "... the fallback logged, at most once by each process" \
	eval "grep -q 'the cache is $FALLBACK' '$T_DIR/pool.log' && [ -z \"\$(grep -o 'tfgit\[[0-9]*\]: the cache is' '$T_DIR/pool.log' | sort | uniq -d)\" ]"
check "... the squatter's directory still untouched" expect_eq squat "directory $S 700" "$(stat -c '%F %U %a' "$SHM")"
finish
