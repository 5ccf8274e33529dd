#!/usr/bin/env bash
# Issue 19, the core's layers: every file of core/ includes only headers of its own layer or of
# those below it (format/ < net/ < store/ < crypt/ < the operations in core/), the shared
# tfgit.h and internal.h whose code (log.c, errors.c) includes nothing else of the core, and
# nothing of the fronts (fcgi/, cli/). Reads the sources; starts nothing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
n=0
failed=0
# report FOUND OK_TEXT NOT_OK_TEXT: the next TAP line; not ok (with FOUND) when FOUND is not empty
report() {
	n=$((n + 1))
	if [ -z "$1" ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $3:$1"
		failed=1
	fi
}
rank() { # rank FILE: format 1, net 2, store 3, crypt 4, operations 5; the shared files 0
	case $1 in
	core/tfgit.h | core/internal.h | core/log.c | core/errors.c) echo 0 ;;
	core/format/*) echo 1 ;;
	core/net/*) echo 2 ;;
	core/store/*) echo 3 ;;
	core/crypt/*) echo 4 ;;
	core/*) echo 5 ;;
	*) echo 9 ;;
	esac
}
bad=""
files=$(find core -name '*.[ch]' | sort)
for f in $files; do
	mine=$(rank "$f")
	while IFS= read -r inc; do
		target=$(realpath -m --relative-to=. "$(dirname "$f")/$inc")
		theirs=$(rank "$target")
		if [ "$theirs" -gt "$mine" ] || { [ "$mine" = 0 ] && [ "$theirs" != 0 ]; }; then
			bad="$bad $f->$target"
		fi
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
report "$bad" "no file of core/ includes a header of a layer above its own ($(wc -w <<<"$files") files)" \
	"core/ files include headers of a layer above theirs"
# the same for calls, from the objects make built: no symbol a file uses is defined in a layer
# above its own (a declaration in a shared header cannot hide one)
build=$root/${BUILD:-build}
if ! [ -f "$build/core/op.o" ]; then
	n=$((n + 1))
	echo "ok $n - calls between layers # SKIP $build/core/op.o is not built (make all)"
else
	defs=$(mktemp)
	for f in $(find core -name '*.c'); do
		nm --defined-only "$build/${f%.c}.o" 2>/dev/null | awk -v r="$(rank "$f")" -v f="$f" '$2 ~ /^[TDBR]$/ {print $3, r, f}'
	done >"$defs"
	up=""
	for f in $(find core -name '*.c' | sort); do
		mine=$(rank "$f")
		up="$up$(nm -u "$build/${f%.c}.o" 2>/dev/null | awk -v mine="$mine" -v f="$f" 'NR == FNR {r[$1] = $2; w[$1] = $3; next}
			($2 in r) && (r[$2] > mine || (mine == 0 && r[$2] != 0)) {printf " %s->%s(%s)", f, $2, w[$2]}' "$defs" -)"
	done
	rm -f "$defs"
	report "$up" "no file of core/ calls a function of a layer above its own (the objects' symbols)" \
		"core/ files call functions of a layer above theirs"
fi
report "$(grep -ln '#include "[^"]*\(fcgi\|cli\)/' $files | tr '\n' ' ')" \
	"no file of core/ includes a header of the fronts (fcgi/, cli/): the core knows no HTTP" \
	"core/ files include the fronts' headers"
# each layer's folder says in its main header what it owns and what it may call
missing=""
for h in core/tfgit.h core/net/remote.h core/store/cache.h core/format/lockinfo.h core/crypt/crypt.h; do
	grep -q 'Layer:' "$h" || missing="$missing $h"
done
report "$missing" "each layer's main header opens with what the layer owns and may call" "no 'Layer:' paragraph in"
[ "$failed" -eq 0 ]
