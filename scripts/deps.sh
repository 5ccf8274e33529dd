#!/usr/bin/env bash
# Installs the Debian 12 packages tfgit needs to build, run and test, when any is missing.
set -euo pipefail
pkgs=(gcc make pkg-config libfcgi-dev libgit2-dev libjson-c-dev libssl-dev libssh2-1-dev
      libhttp-parser-dev libpcre2-dev zlib1g-dev libmbedtls-dev libkrb5-dev systemd # make static (.a files; GSSAPI stays dynamic); t-systemd
      apache2 libapache2-mod-fcgid  # Apache 2.4 + mod_fcgid: apache/*.conf, tests/t-apache.sh
      apache2-suexec-pristine       # suexec with mod_userdir, as shared hosts run it: tests/t-suexec.sh
      libcmocka-dev nginx spawn-fcgi git curl ca-certificates openssl
      fcgiwrap openssh-server openssh-client jq
      golang-go age gnupg   # tests/t-encryption.sh: tests/enc/refcrypt.go (reference formats), age and gpg filters
      chromium)             # headless browser tests of the web view, tests/t-ui.sh (tests/tools/browse.c)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "tfgit needs these Debian packages; install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "installing: ${missing[*]}" >&2
# keep the nginx package from starting a system-wide server on port 80
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
trap '[ $made_policy -eq 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
