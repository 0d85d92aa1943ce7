#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12, as root. Quick when all is there.
set -euo pipefail
pkgs=(gcc libc6-dev pkg-config libsystemd-dev ca-certificates systemd systemd-journal-remote systemd-container debootstrap
      nftables iproute2 openssh-server openssh-client sshpass dbus dbus-daemon procps util-linux
      psmisc dpkg-dev debhelper fakeroot lintian)
[ "${1:-}" = "--minimal" ] && pkgs=(gcc libc6-dev pkg-config libsystemd-dev ca-certificates systemd
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
command -v go >/dev/null || { echo "deps: Go is not on PATH (expected /usr/local/go/bin)" >&2; exit 1; }
go mod download
