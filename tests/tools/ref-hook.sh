#!/usr/bin/env bash
# A server-side reference-transaction hook (githooks(5), git 2.28 and later) for tests/stress.sh:
# it checks that no state write lands without its lock. Installed in a bare repository as
#     hooks/reference-transaction:  exec bash tests/tools/ref-hook.sh LOGDIR "$@"
# (install_ref_hook in stress.sh), it is run by receive-pack (git://, smart HTTP) for every
# transaction, with the state (prepared, committed, aborted) as its argument and one
# "<old> <new> <ref>" line per update on stdin.
#
# prepared: git holds the locks of every ref of the transaction. For each commit an update of
#   refs/heads/master brings (old..new; for a creation, what no ref reaches yet), tfgit's own
#   writes ("Update <state>", "Delete <state>", the state being the file the commit changed)
#   are checked: the commit's Lock-ID trailer must be the ID in <state>.lock on the CURRENT
#   refs/heads/locks/<state>. A lock branch that is absent, or holds another ID, or a tfgit
#   write without Lock-ID, is a suspect, kept in LOGDIR/pending.<receive-pack's pid> with the
#   count of writes checked. Commits that are not tfgit's writes (a test's seed commit) are not
#   counted. With tfgit's atomic push the lock ref is in the same transaction (locked,
#   unchanged), so it cannot move between this read and the commit; without it, it can.
# committed: the transaction's writes landed: the count is added to LOGDIR/checked (one number
#   a line) and every suspect becomes a line of LOGDIR/violations.
# aborted: nothing landed; the pending file is dropped.
# Only transactions that update refs/heads/master are looked at (lock branches alone, and the
# nested packed-refs transactions of a deletion, are passed over at once, with no git process).
# The hook never refuses anything (always exits 0): it observes.
export LC_ALL=C # read -N counts bytes
logdir=$1 event=$2
pending=$logdir/pending.$PPID
master=() updates=""
while read -r old new ref; do
	updates="$updates ${ref#refs/heads/} ${old:0:7}..${new:0:7}"
	[ "$ref" = refs/heads/master ] && master+=("$old $new")
done
[ ${#master[@]} -gt 0 ] || exit 0

case $event in
committed)
	[ -f "$pending" ] || exit 0
	{
		read -r n
		echo "$n" >>"$logdir/checked"
		while read -r v; do echo "$v" >>"$logdir/violations"; done
	} <"$pending"
	rm -f "$pending"
	exit 0
	;;
aborted)
	rm -f "$pending"
	exit 0
	;;
prepared) ;;
*) exit 0 ;;
esac

checked=0 suspects=()
for m in "${master[@]}"; do
	old=${m% *} new=${m#* }
	[ "${new//0/}" = "" ] && continue # master deleted: no write
	if [ "${old//0/}" = "" ]; then
		range=("$new" --not --all) # a creation: the commits no ref reaches yet
	else
		range=("$new" --not "$old")
	fi
	# one record a commit: \1 id \2 subject \2 Lock-ID, then the paths it changed
	commits=() subjects=() ids=() paths=()
	while IFS= read -r l; do
		if [[ $l == $'\1'* ]]; then
			l=${l#$'\1'}
			commits+=("${l%%$'\2'*}")
			l=${l#*$'\2'}
			subjects+=("${l%%$'\2'*}")
			ids+=("${l#*$'\2'}")
			paths+=("")
		elif [ -n "$l" ] && [ ${#commits[@]} -gt 0 ]; then
			paths[-1]=${paths[-1]:+${paths[-1]}$'\n'}$l
		fi
	done < <(git -c core.quotePath=false log --no-renames --no-merges --format='%x01%H%x02%s%x02%(trailers:key=Lock-ID,valueonly,separator=%x2C)' \
		--root --name-only "${range[@]}" 2>/dev/null)
	# the lock of every state these commits wrote, read at once
	states=()
	for k in "${!commits[@]}"; do
		case ${subjects[k]} in "Update "* | "Delete "*) ;; *) continue ;; esac
		while IFS= read -r p; do [ -n "$p" ] && states+=("$p"); done <<<"${paths[k]}"
	done
	declare -A holder=() seen=()
	uniq=()
	for s in "${states[@]}"; do [ -n "${seen[$s]:-}" ] || { seen[$s]=1; uniq+=("$s"); }; done
	if [ ${#uniq[@]} -gt 0 ]; then
		{
			for s in "${uniq[@]}"; do
				read -r oid type size || break
				if [ "$type" = blob ]; then
					read -r -N "$((size + 1))" body
					id="(a lock without ID)"
					[[ $body =~ \"ID\"[[:space:]]*:[[:space:]]*\"([^\"]*)\" ]] && id=${BASH_REMATCH[1]}
					holder[$s]=$id
				fi
			done
		} < <(for s in "${uniq[@]}"; do printf 'refs/heads/locks/%s:%s.lock\n' "$s" "$s"; done | git cat-file --batch 2>/dev/null)
	fi
	for k in "${!commits[@]}"; do
		case ${subjects[k]} in "Update "* | "Delete "*) ;; *) continue ;; esac
		while IFS= read -r s; do
			[ -n "$s" ] || continue
			checked=$((checked + 1))
			h=${holder[$s]:-}
			if [ -z "${ids[k]}" ]; then
				suspects+=("${commits[k]} $s: written without a Lock-ID (lock: ${h:-none})")
			elif [ -z "$h" ]; then
				suspects+=("${commits[k]} $s: Lock-ID ${ids[k]} landed while $s was not locked")
			elif [ "$h" != "${ids[k]}" ]; then
				suspects+=("${commits[k]} $s: Lock-ID ${ids[k]} landed while $h held the lock")
			fi
		done <<<"${paths[k]}"
	done
	unset holder seen
done
{
	echo "$checked"
	for v in "${suspects[@]}"; do t=$EPOCHREALTIME; printf '%(%T)T.%.6s receive-pack %s: %s (the transaction:%s)\n' "${t%.*}" "${t#*.}" "$PPID" "$v" "$updates"; done
} >"$pending"
exit 0
