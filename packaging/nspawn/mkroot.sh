#!/bin/sh
# mkroot.sh builds the Debian 12 (bookworm) root that packaging/nspawn's boot test boots with
# systemd-nspawn: systemd as PID 1, the system bus, sshd, sshpass, nftables and iproute2, plus what
# gaoler's .deb depends on, so that the package installs offline inside the container.
#
# The root is cached in ROOT (default /var/tmp/gaoler-nspawn-root) and rebuilt only when it is missing
# or when the package list (or this script's recipe version) changes: ROOT/.gaoler-stamp holds a hash
# of both. The build goes to a temporary directory next to ROOT and is renamed into place, so a
# half-built root is never used, and the root it replaces is set aside for an hour, so a container
# booted on it goes on working; concurrent runs serialise on a lock file.
#
# Usage: packaging/nspawn/mkroot.sh [ROOT]
# Environment: MIRROR (default: the first deb.debian.org-style URI of /etc/apt/sources.list*, else
# http://deb.debian.org/debian).
set -eu

root=${1:-${GAOLER_NSPAWN_ROOT:-/var/tmp/gaoler-nspawn-root}}
suite=bookworm
recipe=3

# The test needs: systemd (PID 1, journald, systemctl, busctl, systemd-analyze), dbus (the real system
# bus), sshd and its client with sshpass (failed logins), nftables (nft list set), iproute2 (addresses
# on lo), exim4-daemon-light (Debian's default MTA, which the mail action hands its mail to on
# 127.0.0.1:25). gaoler's Depends (packaging/debian/control): systemd, libc6 and libsystemd0
# (shlibs); Recommends: dbus, nftables. passwd (useradd, chpasswd) is in every minbase root.
packages="systemd systemd-sysv dbus openssh-server openssh-client sshpass nftables iproute2 libsystemd0 libc6 passwd exim4-daemon-light"

if [ -z "${MIRROR:-}" ]; then
	MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -Eo 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
	MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

stamp=$(printf '%s\n' "$suite" "$recipe" "$packages" | sha256sum | cut -d' ' -f1)
if [ -f "$root/.gaoler-stamp" ] && [ "$(cat "$root/.gaoler-stamp")" = "$stamp" ]; then
	echo "mkroot.sh: $root is up to date"
	exit 0
fi

mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock -w 900 9
# Another run may have built it while this one waited for the lock.
if [ -f "$root/.gaoler-stamp" ] && [ "$(cat "$root/.gaoler-stamp")" = "$stamp" ]; then
	echo "mkroot.sh: $root is up to date"
	exit 0
fi

start=$(date +%s)
tmp="$root.new"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT INT TERM
include=$(echo "$packages" | tr ' ' ',')
echo "mkroot.sh: debootstrap $suite from $MIRROR into $tmp"
debootstrap --variant=minbase --include="$include" "$suite" "$tmp" "$MIRROR" >"$tmp.log" 2>&1 || {
	tail -n 40 "$tmp.log" >&2
	echo "mkroot.sh: debootstrap failed (log: $tmp.log)" >&2
	exit 1
}
rm -f "$tmp.log"

# Each boot gets a fresh machine ID from systemd-nspawn (an empty file, not a missing one, so that
# systemd does not run first-boot setup).
: >"$tmp/etc/machine-id"
echo gaoler-test >"$tmp/etc/hostname"
# exim4-config took its mail name and local host names from the name of the host debootstrap ran on;
# a Debian host's are its own, as the container's are here. Otherwise exim4 stays as Debian leaves it:
# local delivery only, listening on 127.0.0.1 and ::1 port 25.
echo gaoler-test >"$tmp/etc/mailname"
sed -i "s/^dc_other_hostnames=.*/dc_other_hostnames='gaoler-test'/" "$tmp/etc/exim4/update-exim4.conf.conf"
chroot "$tmp" update-exim4.conf

# Password logins for the test user; nothing else differs from Debian's defaults.
mkdir -p "$tmp/etc/ssh/sshd_config.d"
cat >"$tmp/etc/ssh/sshd_config.d/gaoler-test.conf" <<'EOF'
# gaoler's boot test: password logins from addresses on lo.
PasswordAuthentication yes
KbdInteractiveAuthentication no
UseDNS no
EOF

# Nothing in the container needs the network or periodic jobs; keep the boot short and quiet.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
	systemd-networkd-wait-online.service getty@tty1.service console-getty.service; do
	chroot "$tmp" systemctl mask "$unit" >/dev/null 2>&1 || true
done
# sshd is started by the test once the addresses are in place.
chroot "$tmp" systemctl disable ssh.service >/dev/null 2>&1 || true

apt_clean() { rm -rf "$tmp"/var/cache/apt/archives/*.deb; }
apt_clean

echo "$stamp" >"$tmp/.gaoler-stamp"
# A concurrent run may have a container booted on the old root (the lower directory of its overlay),
# which deleting it would wreck: the old root is moved aside instead, and the roots set aside by
# earlier rebuilds are deleted an hour later, when no boot test can still be using them.
now=$(date +%s)
if [ -e "$root" ]; then
	mv "$root" "$root.old.$now"
fi
mv "$tmp" "$root"
trap - EXIT INT TERM
for old in "$root".old.*; do
	set_aside=${old##*.old.}
	case $set_aside in
	'' | *[!0-9]*) continue ;;
	esac
	if [ "$set_aside" -lt $((now - 3600)) ]; then
		rm -rf "$old"
	fi
done
echo "mkroot.sh: built $root in $(($(date +%s) - start))s"
