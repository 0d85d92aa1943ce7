#!/usr/bin/env bash
# Installs what building, testing, `make deb` and the demo need on Debian 12, as root, with
# --no-install-recommends (so nothing a fresh minbase root lacks is taken for granted). Quick when all
# is there. Afterwards the package's build dependencies are checked with dpkg-checkbuilddeps against
# packaging/debian/control (Build-Depends, and build-essential, which dpkg-buildpackage requires
# implicitly): a package this list misses fails here, at once, not in the deb tests.
# --minimal installs only what `make demo` needs.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(build-essential gcc libc6-dev pkg-config libsystemd-dev ca-certificates systemd systemd-journal-remote
      systemd-container debootstrap nftables iproute2 openssh-server openssh-client sshpass dbus dbus-daemon
      procps util-linux psmisc dpkg-dev debhelper fakeroot lintian man-db
      python3-aiosmtpd)  # actions: a real SMTP server on loopback for the mail tests
minimal=no
[ "${1:-}" = "--minimal" ] && minimal=yes
[ "$minimal" = yes ] && pkgs=(gcc libc6-dev pkg-config libsystemd-dev ca-certificates systemd
      nftables iproute2 openssh-server openssh-client sshpass dbus dbus-daemon procps)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages ${missing[*]}; run as root (sudo) to install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # sshd must not start on its own (there is no init here, and it would take port 22 of the host).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$minimal" = no ] && ! out=$(dpkg-checkbuilddeps packaging/debian/control 2>&1); then
  echo "deps: $out" >&2
  echo "deps: scripts/deps.sh installs too little for packaging/debian/control: add the packages above to its list" >&2
  exit 1
fi
command -v go >/dev/null || { echo "deps: Go is not on PATH (expected /usr/local/go/bin)" >&2; exit 1; }
go mod download
