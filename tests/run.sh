#!/usr/bin/env bash
# Runs every test: the cmocka unit tests, then each tests/t-*.sh against real nginx, pool and git.
# Prints TAP lines and ends with "N passed, N failed[, N skipped]"; exits 1 on any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/${BUILD:-build}
log=$(mktemp /tmp/tfgit-results.XXXXXX)
# every test directory of this run lies below one root, so the leftover check below counts
# this run's processes only, not those of another run on the same machine
export TEST_RUN_ROOT
TEST_RUN_ROOT=$(mktemp -d /tmp/tfgit-run.XXXXXX)
chmod 755 "$TEST_RUN_ROOT"
trap 'rm -f "$log"; rmdir "$TEST_RUN_ROOT" 2>/dev/null' EXIT
status=0
for u in "$build"/unit/test_*; do
	[ -x "$u" ] || continue
	echo "# unit: $(basename "$u")"
	CMOCKA_MESSAGE_OUTPUT=TAP "$u" 2>&1 | tee -a "$log" || status=1
done
for r in "$build"/fuzz/replay_*; do
	[ -x "$r" ] || continue
	n=${r##*/replay_}
	if out=$("$r" "$root"/tests/fuzz/corpus/"$n"/* 2>&1); then
		echo "ok - fuzz corpus of $n replays cleanly ($out)" | tee -a "$log"
	else
		echo "not ok - fuzz corpus of $n: $out" | tee -a "$log"
	fi
done
for t in "$root"/tests/t-*.sh; do
	[ -n "${TESTS:-}" ] && [[ " $TESTS " != *" $(basename "$t" .sh) "* ]] && continue
	echo "# $(basename "$t")"
	bash "$t" 2>&1 | tee -a "$log" || status=1
done
# every test stops what it started: nothing may still name a test directory
left=""
for p in /proc/[0-9]*; do
	[ "${p#/proc/}" = "$$" ] && continue
	st=$(awk '{print $3}' "$p/stat" 2>/dev/null) || continue
	[ "$st" = Z ] && continue
	if grep -qsa "$TEST_RUN_ROOT/" "$p/cmdline" "$p/environ"; then
		left="$left ${p#/proc/}:$(tr '\0' ' ' <"$p/cmdline" | cut -c1-60)"
	fi
done
if [ -n "$left" ]; then
	echo "not ok - processes left behind by the tests:$left" | tee -a "$log"
else
	echo "ok - the tests left no process behind" | tee -a "$log"
fi
skipped=$(grep -c '^ok .*# SKIP' "$log")
passed=$(($(grep -c '^ok ' "$log") - skipped))
failed=$(grep -c '^not ok ' "$log")
[ "$failed" -eq 0 ] && [ "$status" -ne 0 ] && failed=1 && echo "not ok - a test program failed without a TAP line"
[ "$passed" -gt 0 ] || { echo "not ok - no test ran"; failed=$((failed + 1)); }
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
