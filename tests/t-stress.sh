#!/usr/bin/env bash
# A short stress run in make test, on a local, a git:// and a smart-HTTP remote (make stress: long),
# with group commit on and four workers a host, so that requests also meet in batches, and two
# force-unlockers taking locks away from their holders. On git:// and HTTP the remote's
# reference-transaction hook checks that no write lands without its lock (stress.sh).
export STRESS_WORKERS=${STRESS_WORKERS:-4}
bash "$(dirname "$0")/stress.sh" -k 4 -m 3 -r 6 -f 2 -t 60 -x local &&
	bash "$(dirname "$0")/stress.sh" -k 4 -m 3 -r 6 -f 2 -t 60 -x git &&
	bash "$(dirname "$0")/stress.sh" -k 4 -m 3 -r 6 -f 2 -t 60 -x http
