#!/usr/bin/env bash
# Shared hosting as hosts really run it (issue 20): Apache with Debian's suexec
# (apache2-suexec-pristine) and mod_userdir, its userdir.conf Included as Debian ships it (the
# host adding only ExecCGI), two throwaway accounts under /home, each with its own
# ~/public_html/tfgit (the static binary and the shipped .htaccess, unedited), its own settings
# file ~/.config/tfgit/tfgit.conf and its own bare repository. suexec strips every SetEnv: the
# settings file is what makes it work. Through each account's /~user/ address: Terraform's
# apply, a lock conflict (409 naming the holder; terraform names it), force-unlock; the admin
# command, run as the account, reads the same file. Neither account can read the other's cache
# or settings, nor use the other's repository through its own address; the settings file is
# never served; an unsafe settings file is refused. And what a one-user host (no suexec) does:
# the account's settings file unread, a cache in its home refused (README, Shared hosting).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/servers.sh"
. "$(dirname "$0")/apache.sh"

SUEXEC=/usr/lib/apache2/suexec
if [ "$(id -u)" -ne 0 ]; then
	skip "tfgit under suexec and userdir" "needs root (accounts under /home, Apache started as root)"
	finish
	exit
fi
if ! apache_available || [ ! -f "$APACHE_MODULES/mod_userdir.so" ] || [ ! -u "$(readlink -f $SUEXEC)" ] ||
	[ ! -f /etc/apache2/mods-available/userdir.conf ]; then
	skip "tfgit under suexec and userdir" "apache2-suexec-pristine and mod_userdir are not installed (make deps)"
	finish
	exit
fi
# suexec runs a program only for its compiled-in caller, in the user's ~/public_html
caller=$("$SUEXEC" -V 2>&1 | sed -n 's/.*AP_HTTPD_USER="\(.*\)"/\1/p')
suffix=$("$SUEXEC" -V 2>&1 | sed -n 's/.*AP_USERDIR_SUFFIX="\(.*\)"/\1/p')
if [ "$caller" != "$POOL_USER" ] || [ "$suffix" != public_html ]; then
	skip "tfgit under suexec and userdir" "suexec is built for caller $caller and ~/$suffix, Apache runs as $POOL_USER"
	finish
	exit
fi

BIN=$BUILD_DIR/static/tfgit.fcgi
[ -x "$BIN" ] || BIN=$TFGIT_BIN # make static not run: the dynamic build (the same code)
install -d -m 755 "$T_DIR/cli"
install -m 755 "$BUILD_DIR/tfgit" "$T_DIR/cli/tfgit"
HAVE_TF=0
command -v terraform >/dev/null && HAVE_TF=1
MARK="tfgit t-suexec"
USERS=(tfgit-sxa tfgit-sxb)
SUEXEC_LOG=/var/log/apache2/suexec.log
log_size=$(stat -c %s "$SUEXEC_LOG" 2>/dev/null || echo none)
MADE=()
suexec_cleanup() {
	if [ "$T_FAILED" -gt 0 ] && [ -f "${AD:-}/error.log" ]; then
		echo "# Apache's error log (last 20 lines):"
		tail -n 20 "$AD/error.log" | sed 's/^/#   /'
	fi
	cleanup
	local u uid
	for u in "${MADE[@]}"; do
		uid=$(id -u "$u" 2>/dev/null) && rm -rf "/dev/shm/tfgit-$uid"
		userdel -r "$u" >/dev/null 2>&1
	done
	# suexec's own log (root's): as it was
	if [ "$log_size" = none ]; then rm -f "$SUEXEC_LOG"; else truncate -s "$log_size" "$SUEXEC_LOG" 2>/dev/null; fi
}
trap suexec_cleanup EXIT

# ---- the accounts ---------------------------------------------------------------------------
for u in "${USERS[@]}"; do
	# a leftover of an interrupted run is ours to remove; any other account of that name is not
	if id "$u" >/dev/null 2>&1; then
		if [ "$(getent passwd "$u" | cut -d: -f5)" != "$MARK" ]; then
			skip "tfgit under suexec and userdir" "an account $u exists that this test did not make"
			finish
			exit
		fi
		rm -rf "/dev/shm/tfgit-$(id -u "$u")"
		userdel -r "$u" >/dev/null 2>&1
	fi
	useradd -m -d "/home/$u" -s /usr/sbin/nologin -c "$MARK" "$u" || { fail "useradd $u"; exit 1; }
	MADE+=("$u")
	h=/home/$u
	chmod 711 "$h" # the web server reaches ~/public_html, nobody lists the home
	install -d -o "$u" -g "$u" -m 755 "$h/public_html" "$h/public_html/tfgit"
	install -o "$u" -g "$u" -m 755 "$BIN" "$h/public_html/tfgit/tfgit.fcgi"
	install -o "$u" -g "$u" -m 644 "$ROOT/apache/htaccess" "$h/public_html/tfgit/.htaccess"
	runuser -u "$u" -- git init -q --bare "$h/states.git"
	chmod 700 "$h/states.git"
done
A=${USERS[0]} B=${USERS[1]}
UA=$(id -u "$A") UB=$(id -u "$B")

# settings FILE-CONTENT for USER, as the .htaccess's comments say to make it
settings() {
	local u=$1 d=/home/$1/.config/tfgit
	runuser -u "$u" -- sh -c "umask 077 && mkdir -p '$d' && cat >'$d/tfgit.conf'" <<<"$2"
}

# ---- the host: Apache as root, its children as www-data, suexec for ~user ------------------
AD=$T_DIR/apache
mkdir -p "$AD"
chmod 755 "$AD"
: >"$AD/site.conf"
# shellcheck disable=SC2034 # read by apache_conf
APACHE_SERVER="LoadModule userdir_module $APACHE_MODULES/mod_userdir.so
# Debian's own, as shipped (AllowOverride FileInfo AuthConfig Limit Indexes: no Options)
Include /etc/apache2/mods-available/userdir.conf
# what a host that offers CGI in its users' sites adds
<Directory /home/*/public_html>
    Options +ExecCGI
</Directory>
CustomLog \"$AD/access.log\" common"
if ! apache_start "$AD" "$AD/site.conf" >"$AD/start.out" 2>&1; then
	fail "Apache with mod_userdir and suexec starts" "$(cat "$AD/start.out")"
	exit 1
fi
base() { echo "$APACHE_URL/~$1/tfgit/tfgit.fcgi"; }
# get URL [curl args]: CODE and BODY
get() {
	local out
	out=$(command curl -s --max-time 60 -w '\n%{http_code}' "$@")
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}

# ---- what suexec does to SetEnv: the reported failure ---------------------------------------
sed -i "s|^#SetEnv TFGIT_DEFAULT_REPOSITORY .*|SetEnv TFGIT_DEFAULT_REPOSITORY /home/$A/states.git|" \
	"/home/$A/public_html/tfgit/.htaccess"
get "$(base "$A")?state=probe.tfstate"
check "under suexec a SetEnv TFGIT_* never reaches the program: 400, no repository" \
	answered 400 "repository"
check "... suexec ran it as the account (its log)" \
	grep -q "uid: ($UA/$A) gid: ($(id -g "$A")/.*) cmd: tfgit.fcgi" "$SUEXEC_LOG"
install -o "$A" -g "$A" -m 644 "$ROOT/apache/htaccess" "/home/$A/public_html/tfgit/.htaccess"

# ---- each account: its settings file, Terraform through its own address ---------------------
OTHER_ID=11111111-2222-3333-4444-555555555555
OTHER_LOCK='{"ID":"'$OTHER_ID'","Operation":"OperationTypeApply","Info":"","Who":"other@ci-runner","Version":"1.11.4","Created":"2026-12-05T10:00:00.000000001Z","Path":""}'
# tf DIR ARGS...: terraform in DIR, bounded; the end of its output when it fails
tf() {
	local d=$1
	shift
	(cd "$d" && timeout 180 terraform "$@" -no-color) >"$d/tf.out" 2>&1 || { tail -n 12 "$d/tf.out"; return 1; }
}
for u in "${USERS[@]}"; do
	h=/home/$u
	settings "$u" "# $u's tfgit settings
TFGIT_DEFAULT_REPOSITORY=$h/states.git
TFGIT_REMOTE_TIMEOUT=30"
	check "$u: the .htaccess is the shipped one, unedited" cmp "$ROOT/apache/htaccess" "$h/public_html/tfgit/.htaccess"
	U=$(base "$u")
	S=tf/terraform.tfstate
	get "$U?state=$S"
	check "$u: a GET through /~$u/ with only ~/.config/tfgit/tfgit.conf: no state yet (204)" expect_eq code 204 "$CODE"
	get "$U/health"
	check "... $U/health answers 200 JSON" eval "[ '$CODE' = 200 ] && jq -e . >/dev/null <<<'$BODY'"
	check "... its cache is /dev/shm/tfgit-<its uid>, the account's, 0700" \
		expect_eq cache "directory $u 700" "$(stat -c '%F %U %a' "/dev/shm/tfgit-$(id -u "$u")")"
	if [ $HAVE_TF = 0 ]; then
		skip "$u: terraform apply, lock conflict, force-unlock" "terraform is not on the PATH"
		continue
	fi
	W=$T_DIR/tf-$u
	mkdir -p "$W"
	: >"$W/none.tfrc"
	# the .htaccess's own backend block: POST/DELETE on .../lock, PUT for writes
	cat >"$W/backend.tf" <<TF
terraform {
  backend "http" {
    address        = "$U?type=git&state=$S"
    lock_address   = "$U/lock?type=git&state=$S"
    unlock_address = "$U/lock?type=git&state=$S"
    lock_method    = "POST"
    unlock_method  = "DELETE"
    update_method  = "PUT"
  }
}
TF
	printf 'resource "terraform_data" "x" {\n  input = "%s"\n}\n' "value-of-$u" >"$W/main.tf"
	export TF_DATA_DIR=$W/.terraform TF_CLI_CONFIG_FILE=$W/none.tfrc TF_INPUT=0
	check "$u: terraform init and apply through /~$u/" eval \
		"tf '$W' init -input=false && tf '$W' apply -auto-approve -input=false"
	check "... the state is in $u's repository" eval "g '$h/states.git' show 'master:$S' | grep -q 'value-of-$u'"
	check "... and no lock is left" expect_eq lock none \
		"$(g "$h/states.git" rev-parse -q --verify "refs/heads/locks/$S" || echo none)"
	get "$U/lock?state=$S" -X POST -H 'Content-Type: application/json' --data "$OTHER_LOCK"
	check "$u: another client takes the lock (200)" expect_eq code 200 "$CODE"
	get "$U/lock?state=$S" -X POST -H 'Content-Type: application/json' --data '{"ID":"second"}'
	check "... a second LOCK is 409 with the holder's lock" answered 409 "$OTHER_ID"
	check "... terraform plan is refused, naming the holder" eval \
		"! tf '$W' plan -input=false >/dev/null && grep -q '$OTHER_ID' '$W/tf.out'"
	check "... terraform force-unlock" tf "$W" force-unlock -force "$OTHER_ID"
	check "... the lock is gone" expect_eq lock none \
		"$(g "$h/states.git" rev-parse -q --verify "refs/heads/locks/$S" || echo none)"
	check "... terraform plan works again" tf "$W" plan -input=false
	(cd / && runuser -u "$u" -- env -i PATH=/usr/bin:/bin "$T_DIR/cli/tfgit" states) >"$T_DIR/states.out" 2>&1
	check "$u: the tfgit command as $u reads the same settings file: it lists the state" \
		grep -q "^$S " "$T_DIR/states.out"
	unset TF_DATA_DIR TF_CLI_CONFIG_FILE TF_INPUT
done

# the file comes last: the environment wins over it, and TFGIT_CONFIG replaces it
as_a() { (cd / && runuser -u "$A" -- env -i PATH=/usr/bin:/bin "$@" "$T_DIR/cli/tfgit" states) >"$T_DIR/states.out" 2>&1; }
as_a TFGIT_DEFAULT_REPOSITORY=/nonexistent/other.git
check "the environment wins over ~/.config/tfgit/tfgit.conf (the tfgit command as $A)" \
	grep -q "/nonexistent/other.git" "$T_DIR/states.out"
install -o "$A" -m 600 /dev/null "$T_DIR/other.conf"
echo "TFGIT_DEFAULT_REF=other" >"$T_DIR/other.conf"
as_a TFGIT_CONFIG="$T_DIR/other.conf"
check "... and TFGIT_CONFIG, when given, is read instead of it (no repository then)" \
	grep -q "give --repository, or set TFGIT_DEFAULT_REPOSITORY" "$T_DIR/states.out"

# ---- the accounts apart ---------------------------------------------------------------------
before=$(g "/home/$B/states.git" for-each-ref)
get "$(base "$A")?repository=/home/$B/states.git&state=stolen.tfstate" -X PUT \
	-H 'Content-Type: application/json' --data '{"version":4,"serial":9,"lineage":"x"}'
check "$A's address naming $B's repository: refused by $A's allowlist (403)" answered 403 "not allowed"
settings "$A" "TFGIT_DEFAULT_REPOSITORY=/home/$A/states.git
TFGIT_ALLOWED_REPOS=/home/$B/states.git
TFGIT_REQUIRE_LOCK=0"
get "$(base "$A")?repository=/home/$B/states.git&state=stolen.tfstate" -X PUT \
	-H 'Content-Type: application/json' --data '{"version":4,"serial":9,"lineage":"x"}'
check "... even allowed by $A's own settings, $A's program cannot write it (it runs as $A): 502, not found" \
	answered 502 "/home/$B/states.git was not found"
get "$(base "$A")?repository=/home/$B/states.git&state=$S"
check "... nor read it: 502, not found" answered 502 "/home/$B/states.git was not found"
check "... $B's repository is unchanged" expect_eq refs "$before" "$(g "/home/$B/states.git" for-each-ref)"
settings "$A" "TFGIT_DEFAULT_REPOSITORY=/home/$A/states.git"
for pair in "$A $B" "$B $A" "$POOL_USER $A"; do
	set -- $pair
	other=$(id -u "$2")
	check "$1 cannot read $2's settings file" eval "! runuser -u $1 -- cat /home/$2/.config/tfgit/tfgit.conf >/dev/null 2>&1"
	check "$1 cannot list or enter $2's cache" eval \
		"! runuser -u $1 -- ls /dev/shm/tfgit-$other >/dev/null 2>&1 && ! runuser -u $1 -- test -x /dev/shm/tfgit-$other"
done
check "no file of either cache is open to others" \
	expect_eq open "" "$(find "/dev/shm/tfgit-$UA" "/dev/shm/tfgit-$UB" -perm /077 -not -type l)"

# ---- a one-user host (no suexec: every account's CGI as the web server's user), as README says --
cgi "$POOL_USER" "" REQUEST_METHOD=GET QUERY_STRING="state=$S"
check "one-user host: the program as $POOL_USER does not read $A's ~/.config/tfgit/tfgit.conf (400)" \
	answered 400 "repository"
runuser -u "$A" -- mkdir -m 700 "/home/$A/tfgit-cache"
cgi "$POOL_USER" "" REQUEST_METHOD=GET QUERY_STRING="state=$S" TFGIT_DEFAULT_REPOSITORY="/home/$A/states.git" \
	TFGIT_CACHE_DIR="/home/$A/tfgit-cache"
check "... and refuses a cache in $A's home: it is $A's, not $POOL_USER's (500)" \
	answered 500 "belongs to uid $UA, not to this process's user (uid $(id -u "$POOL_USER"))"

# ---- the settings never served; an unsafe file refused ----------------------------------------
UB_BASE=$APACHE_URL/~$B/tfgit
install -o "$B" -g "$B" -m 644 /dev/null "/home/$B/public_html/tfgit/tfgit.conf"
echo "GIT_PASSWORD=bait" >"/home/$B/public_html/tfgit/tfgit.conf"
for p in tfgit.conf .htaccess ""; do
	get "$UB_BASE/$p"
	check "GET /~$B/tfgit/${p:-(the directory)}: 403 (the shipped .htaccess)" expect_eq code 403 "$CODE"
done
check "... the bait is in no answer" eval "! grep -q bait <<<'$BODY'"
rm -f "/home/$B/public_html/tfgit/tfgit.conf"
conf=/home/$B/.config/tfgit/tfgit.conf
chmod 620 "$conf"
log_mark_apache=$(stat -c %s "$AD/error.log")
get "$(base "$B")?state=$S"
check "$B's settings file writable by its group: 500" expect_eq code 500 "$CODE"
check "... the error log says why" eval \
	"tail -c +$((log_mark_apache + 1)) '$AD/error.log' | grep -q 'settings file $conf must be a file .* writable by no one else'"
chmod 600 "$conf"
mv "$conf" "$conf.real"
runuser -u "$B" -- ln -s "$conf.real" "$conf"
get "$(base "$B")?state=$S"
check "$B's settings file a symlink: 500 (not followed)" expect_eq code 500 "$CODE"
rm -f "$conf"
mv "$conf.real" "$conf"
runuser -u "$B" -- sh -c "echo TFGIT_ALOWED_STATES=x >>'$conf'"
get "$(base "$B")?state=$S"
check "$B's settings file with a misspelt name: 500" expect_eq code 500 "$CODE"
runuser -u "$B" -- sed -i '/TFGIT_ALOWED_STATES/d' "$conf"
get "$(base "$B")?state=$S"
check "... corrected: 200 again" expect_eq code 200 "$CODE"
finish
