#!/usr/bin/env bash
# rivals-deps.sh installs what `make bench` compares gaoler with, from Debian, when missing: fail2ban
# (with python3-systemd, its journal backend) and sshguard. Root only; `make test` does not need them.
#
# Their postinst scripts would start both daemons through invoke-rc.d on this machine, where fail2ban
# would touch the host's firewall: they are installed with a /usr/sbin/policy-rc.d that refuses every
# start (exit 101), the previous policy-rc.d is put back afterwards, and the script fails if either
# daemon runs once it is done. The benchmark starts them itself, only inside network namespaces of its
# own (cmd/gaolerd/rivals_bench_test.go).
set -euo pipefail
pkgs=(fail2ban python3-systemd sshguard)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
running() { pgrep -x fail2ban-server >/dev/null || pgrep -x sshguard >/dev/null || pgrep -f '^/usr/bin/python3 /usr/bin/fail2ban-server' >/dev/null; }
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "rivals-deps: missing ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	before=no
	running && before=yes
	policy=/usr/sbin/policy-rc.d
	saved=""
	if [ -e "$policy" ] || [ -L "$policy" ]; then
		saved=$(mktemp /usr/sbin/.policy-rc.d.gaoler.XXXXXX)
		cp -a "$policy" "$saved"
	fi
	restore() {
		if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
	}
	trap restore EXIT
	printf '#!/bin/sh\n# gaoler bench: never start a service while installing\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	echo "rivals-deps: installing ${missing[*]} (services kept stopped by policy-rc.d)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	restore
	trap - EXIT
	if [ "$before" = no ] && running; then
		echo "rivals-deps: fail2ban or sshguard runs after the install; they must only run inside the bench's namespaces" >&2
		exit 1
	fi
fi
for c in fail2ban-server fail2ban-client sshguard; do
	command -v "$c" >/dev/null || { echo "rivals-deps: $c missing after the install" >&2; exit 1; }
done
