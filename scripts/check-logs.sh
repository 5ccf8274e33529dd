#!/usr/bin/env bash
# Fails when a sanitizer or valgrind left a report in the directory given (make sanitize/valgrind).
dir=$1
bad=$(grep -lE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error|Invalid (read|write)|uninitialised|definitely lost: [1-9]|are definitely lost|Conditional jump|Invalid free' "$dir"/* 2>/dev/null)
if [ -n "$bad" ]; then
	echo "checker reports:"
	for f in $bad; do echo "== $f"; head -n 40 "$f"; done
	exit 1
fi
echo "no checker reports in $dir ($(ls "$dir" | wc -l) logs)"
