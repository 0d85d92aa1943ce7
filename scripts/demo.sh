#!/usr/bin/env bash
# gaoler's demo: a real sshd under a real brute-force attack, banned end to end.
#
# Two network namespaces joined by a veth pair: "server" runs Debian's sshd and gaolerd, "attacker"
# fails password logins with sshpass over IPv4 and IPv6. sshd logs to journald, gaolerd reads the
# failures from the journal, and the attacker lands in nftables sets whose elements expire in the
# kernel; its next connection is refused. Everything is torn down at the end, also on Ctrl-C.
# Run as root: sudo make demo (which builds bin/gaolerd and bin/gaoler first).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (sudo make demo)" >&2; exit 1; }
[ -x bin/gaolerd ] && [ -x bin/gaoler ] || { echo "demo: build first (make build)" >&2; exit 1; }

SRV=gaoler-demo-srv ATK=gaoler-demo-atk
SRV4=192.0.2.1 ATK4=192.0.2.2 SRV6=2001:db8::1 ATK6=2001:db8::2
work=$(mktemp -d /tmp/gaoler-demo.XXXXXX)
pids=()

bold() { if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  ip netns del "$SRV" 2>/dev/null
  ip netns del "$ATK" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash scripts/journald.sh

bold "network: namespace $SRV ($SRV4, $SRV6) <-veth-> $ATK ($ATK4, $ATK6)"
ip netns del "$SRV" 2>/dev/null || true
ip netns del "$ATK" 2>/dev/null || true
ip netns add "$SRV"
ip netns add "$ATK"
ip link add gdemo-srv netns "$SRV" type veth peer name gdemo-atk netns "$ATK"
ip -n "$SRV" link set lo up
ip -n "$ATK" link set lo up
ip -n "$SRV" addr add "$SRV4/24" dev gdemo-srv
ip -n "$ATK" addr add "$ATK4/24" dev gdemo-atk
ip -n "$SRV" addr add "$SRV6/64" dev gdemo-srv nodad
ip -n "$ATK" addr add "$ATK6/64" dev gdemo-atk nodad
ip -n "$SRV" link set gdemo-srv up
ip -n "$ATK" link set gdemo-atk up

bold "sshd: Debian's OpenSSH server in $SRV, logging to journald"
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/host_ed25519"
cat > "$work/sshd_config" <<CONF
Port 22
ListenAddress $SRV4
ListenAddress $SRV6
HostKey $work/host_ed25519
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
PidFile $work/sshd.pid
SyslogFacility AUTH
LogLevel INFO
CONF
ip netns exec "$SRV" /usr/sbin/sshd -D -f "$work/sshd_config" &
pids+=($!)

bold "bus: a private system bus with gaoler's policy"
cat > "$work/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$work/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
  <include>$PWD/packaging/dbus/io.github.gaoler.Gaoler1.conf</include>
</busconfig>
CONF
dbus-daemon --config-file="$work/bus.conf" --nofork --nopidfile &
pids+=($!)
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/bus.sock"

bold "gaolerd: the shipped config, with a demo drop-in (maxretry = 3)"
mkdir -p "$work/etc/jail.d" "$work/state"
cp packaging/gaoler.toml "$work/etc/gaoler.toml"
cat > "$work/etc/jail.d/50-demo.toml" <<CONF
[daemon]
state_directory = "$work/state"

[jail.sshd]
maxretry = 3
CONF
cat "$work/etc/jail.d/50-demo.toml"
bin/gaolerd --config "$work/etc/gaoler.toml" --check
for _ in $(seq 1 50); do [ -S "$work/bus.sock" ] && break; sleep 0.1; done
ip netns exec "$SRV" bin/gaolerd --config "$work/etc/gaoler.toml" 2>"$work/gaolerd.log" &
gpid=$!
pids+=($gpid)
for _ in $(seq 1 50); do bin/gaoler status >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 50); do ip netns exec "$SRV" bash -c "</dev/tcp/$SRV4/22" 2>/dev/null && break; sleep 0.1; done

attack() { # attack ADDRESS USER: one failed password login
  ip netns exec "$ATK" timeout 10 sshpass -p "wrong-password" ssh -q -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o PreferredAuthentications=password \
    -o NumberOfPasswordPrompts=1 -o ConnectTimeout=3 "$2@$1" true 2>/dev/null || true
}

bold "attack: $ATK fails 3 password logins over IPv4 and 3 over IPv6"
for i in 1 2 3; do attack "$SRV4" root; echo "  IPv4 attempt $i: ssh root@$SRV4 -> denied"; done
for i in 1 2 3; do attack "$SRV6" root; echo "  IPv6 attempt $i: ssh root@[$SRV6] -> denied"; done

for _ in $(seq 1 50); do
  n=$(ip netns exec "$SRV" nft -j list set inet gaoler sshd_v6 2>/dev/null | grep -c "$ATK6" || true)
  [ "$n" -gt 0 ] && break
  sleep 0.1
done

bold "journal: what sshd wrote (journalctl _COMM=sshd)"
journalctl -q --no-pager _COMM=sshd --since "-2min" | grep -E "Failed|Invalid" | tail -6

bold "gaoler status sshd"
bin/gaoler status sshd

bold "gaoler banned"
bin/gaoler banned

bold "kernel: nft list set inet gaoler sshd_v4 / sshd_v6 (elements with their timeouts)"
ip netns exec "$SRV" nft list set inet gaoler sshd_v4
ip netns exec "$SRV" nft list set inet gaoler sshd_v6

bold "the attacker's next connections to port 22"
for a in "$SRV4" "$SRV6"; do
  if ip netns exec "$ATK" timeout 3 bash -c "</dev/tcp/$a/22" 2>/dev/null; then
    echo "  $a port 22: CONNECTED (not banned?)"; fail=1
  else
    echo "  $a port 22: refused (banned)"
  fi
done

bold "gaoler log (the daemon's events, read from the journal)"
bin/gaoler log -n 6 || true

if [ "${fail:-0}" = 1 ]; then
  echo "demo: the attacker was not banned; gaolerd's log:" >&2
  cat "$work/gaolerd.log" >&2
  exit 1
fi
bold "done: the attacker is banned in the kernel; cleaning up"
