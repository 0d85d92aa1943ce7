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
# The attacker gets fresh addresses each run: gaolerd's first start reads back findtime (10m) of the
# journal, and an earlier run's failures would otherwise ban it before it attacks.
n=$(( RANDOM % 200 + 20 ))
SRV4=192.0.2.1 ATK4=192.0.2.$n NB4=192.0.2.$((n + 1)) SRV6=2001:db8::1 ATK6=2001:db8::$(printf %x $RANDOM):$n
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
ip -n "$ATK" addr add "$NB4/24" dev gdemo-atk
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
sed -e "s|@SOCKET@|$work/bus.sock|" -e "s|@POLICY@|$PWD/packaging/dbus/io.github.gaoler.Gaoler1.conf|" \
  -e "s|@EXTRA@||" scripts/private-system-bus.conf > "$work/bus.conf"
dbus-daemon --config-file="$work/bus.conf" --nofork --nopidfile --syslog-only &
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

attack() { # attack ADDRESS USER FROM: one failed password login
  ip netns exec "$ATK" timeout 10 sshpass -p "wrong-password" ssh -q -b "$3" -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o PreferredAuthentications=password \
    -o NumberOfPasswordPrompts=1 -o ConnectTimeout=3 "$2@$1" true 2>/dev/null || true
}

bold "attack: $ATK fails 3 password logins over IPv4 and 3 over IPv6"
for i in 1 2 3; do attack "$SRV4" root "$ATK4"; echo "  IPv4 attempt $i: ssh root@$SRV4 from $ATK4 -> denied"; done
for i in 1 2 3; do attack "$SRV6" root "$ATK6"; echo "  IPv6 attempt $i: ssh root@[$SRV6] from $ATK6 -> denied"; done

for _ in $(seq 1 50); do
  n=$(ip netns exec "$SRV" nft -j list set inet gaoler sshd_v6 2>/dev/null | grep -c "$ATK6" || true)
  [ "$n" -gt 0 ] && break
  sleep 0.1
done

bold "journal: what sshd wrote (journalctl _COMM=sshd)"
journalctl -q --no-pager _COMM=sshd --since "-2min" | grep -E "from ($ATK4|$ATK6) " | tail -8

bold "a neighbour ($NB4, same namespace, no failures) still reaches sshd"
out=$(ip netns exec "$ATK" timeout 5 ssh -b "$NB4" -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=3 \
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "root@$SRV4" true 2>&1 || true)
echo "  $out"

others=$(bin/gaoler banned --json 2>/dev/null | grep -c '"address"' || true)
if [ "${others:-0}" -gt 2 ]; then
  echo
  echo "(More than the attacker's two addresses are banned below: gaolerd's first start read back the"
  echo " last findtime, 10 minutes, of this host's journal, which holds other sshd failures, e.g. the"
  echo " test suite's. On a fresh machine only the attacker is listed.)"
fi

bold "gaoler status sshd"
bin/gaoler status sshd

bold "gaoler banned"
bin/gaoler banned

bold "kernel: nft list set inet gaoler sshd_v4 / sshd_v6 (elements with their timeouts)"
ip netns exec "$SRV" nft list set inet gaoler sshd_v4
ip netns exec "$SRV" nft list set inet gaoler sshd_v6

bold "the attacker's next connections to port 22"
for pair in "$ATK4 $SRV4" "$ATK6 $SRV6"; do
  set -- $pair
  out=$(ip netns exec "$ATK" timeout 5 ssh -b "$1" -o BatchMode=yes -o ConnectTimeout=3 \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "root@$2" true 2>&1 || true)
  case "$out" in
    *"Connection refused"*) echo "  from $1 to $2 port 22: Connection refused (banned)" ;;
    *) echo "  from $1 to $2 port 22: $out (NOT refused)"; fail=1 ;;
  esac
done

bold "gaoler log (the daemon's events, read from the journal)"
bin/gaoler log -n 6 || true

if [ "${fail:-0}" = 1 ]; then
  echo "demo: the attacker was not banned; gaolerd's log:" >&2
  cat "$work/gaolerd.log" >&2
  exit 1
fi
bold "done: the attacker is banned in the kernel; cleaning up"
