#!/usr/bin/env bash
# gaoler's fleet demo: a ban on one host protects every host.
#
# Three hosts, h1 h2 h3, are network namespaces joined by a bridge (192.0.2.11-13). Each runs a node
# of one three-node NATS JetStream cluster (bin/natsnode: nats-server started in-process) and its own
# gaolerd with a [fleet] table, each on a private system bus. A ban on h1 reaches h2's and h3's kernel
# sets; h2 ignores 198.51.100.66 and refuses h1's ban of it; an unban on h1 is lifted everywhere.
# Everything is torn down at the end, also on Ctrl-C. Run as root: sudo make demo-fleet.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo-fleet: run as root (sudo make demo-fleet)" >&2; exit 1; }
for b in gaolerd gaoler natsnode; do
  [ -x "bin/$b" ] || { echo "demo-fleet: build first (make demo-fleet builds bin/$b)" >&2; exit 1; }
done

BR=gaoler-fleet-br
work=$(mktemp -d /tmp/gaoler-demo-fleet.XXXXXX)
pids=()
X=203.0.113.$(( RANDOM % 200 + 20 )) IGN=198.51.100.66

bold() { if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for h in h1 h2 h3; do ip netns del "gaoler-fleet-$h" 2>/dev/null; done
  ip netns del "$BR" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash scripts/journald.sh
on() { local h=$1; shift; DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/$h/bus.sock" "$@"; }
inns() { local h=$1; shift; ip netns exec "gaoler-fleet-$h" "$@"; }

bold "network: h1, h2, h3 on a bridge (192.0.2.11-13)"
ip netns del "$BR" 2>/dev/null || true
ip netns add "$BR"
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 up
for i in 1 2 3; do
  ns=gaoler-fleet-h$i
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  ip -n "$BR" link add "ph$i" type veth peer name veth0 netns "$ns"
  ip -n "$BR" link set "ph$i" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "192.0.2.1$i/24" dev veth0
  ip -n "$ns" link set veth0 up
done

bold "cluster: one JetStream node on each host, routes between all three"
routes=nats-route://192.0.2.11:6222,nats-route://192.0.2.12:6222,nats-route://192.0.2.13:6222
for i in 1 2 3; do
  mkdir -p "$work/h$i/nats"
  inns "h$i" bin/natsnode -name "n$i" -host "192.0.2.1$i" -routes "$routes" -store "$work/h$i/nats" \
    >"$work/h$i/nats.log" 2>&1 &
  pids+=($!)
done

bold "gaolerd on each host, with a [fleet] table (h2 also ignores $IGN)"
for i in 1 2 3; do
  h=h$i d=$work/h$i
  mkdir -p "$d/state"
  sed -e "s|@SOCKET@|$d/bus.sock|" -e "s|@POLICY@|$PWD/packaging/dbus/io.github.gaoler.Gaoler1.conf|" \
    -e "s|@EXTRA@||" scripts/private-system-bus.conf > "$d/bus.conf"
  dbus-daemon --config-file="$d/bus.conf" --nofork --nopidfile --syslog-only &
  pids+=($!)
  ignore='"127.0.0.0/8", "::1"'
  [ "$h" = h2 ] && ignore="$ignore, \"$IGN\""
  servers=""
  for k in 0 1 2; do servers="$servers\"nats://192.0.2.1$(( (i - 1 + k) % 3 + 1 )):4222\", "; done
  cat > "$d/gaoler.toml" <<CONF
[daemon]
state_directory = "$d/state"

[defaults]
bantime = "1h"
ignoreip = [$ignore]

[jail.sshd]
enabled = true
journal_match = ["_UID=0", "GAOLER_DEMO=fleet-only"]   # the demo bans by hand; the journal bans nobody

[fleet]
servers = [${servers%, }]
host = "$h"
max_bantime = "1d"
CONF
done
echo "h2's config:"
sed 's/^/  /' "$work/h2/gaoler.toml"
for i in 1 2 3; do
  for _ in $(seq 1 50); do [ -S "$work/h$i/bus.sock" ] && break; sleep 0.1; done
  on "h$i" ip netns exec "gaoler-fleet-h$i" bin/gaolerd --config "$work/h$i/gaoler.toml" 2>"$work/h$i/gaolerd.log" &
  pids+=($!)
done
bold "waiting for the cluster to elect its leaders and each host to watch its two peers"
for i in 1 2 3; do
  for _ in $(seq 1 600); do
    [ "$(on "h$i" bin/gaoler status --json 2>/dev/null | grep -c '"watching": true')" = 2 ] && break
    sleep 0.1
  done
  echo "  h$i: $(on "h$i" bin/gaoler status 2>/dev/null | grep -E 'Fleet:|Peers:' | tr -s '\t ' ' ' | paste -sd ';')"
done

bold "h1: gaoler ban sshd $X --for 1h"
start=$(date +%s%N)
on h1 bin/gaoler ban sshd "$X" --for 1h
for h in h2 h3; do
  for _ in $(seq 1 500); do inns "$h" nft list set inet gaoler sshd_v4 2>/dev/null | grep -q "$X" && break; sleep 0.01; done
done
echo "  in h2's and h3's kernel sets about $(( ($(date +%s%N) - start) / 1000000 )) ms later (this loop polls nft every 10 ms)"

for h in h2 h3; do
  bold "$h: nft list set inet gaoler sshd_v4"
  inns "$h" nft list set inet gaoler sshd_v4
done

bold "h2: gaoler why $X (the origin is the peer h1)"
on h2 bin/gaoler why "$X" || true

bold "h1: gaoler ban sshd $IGN, an address h2 ignores"
on h1 bin/gaoler ban sshd "$IGN" --for 1h
sleep 1
for h in h2 h3; do
  if inns "$h" nft list set inet gaoler sshd_v4 | grep -q "$IGN"; then echo "  $h bans $IGN"; else echo "  $h does not ban $IGN"; fi
done

bold "h2: gaoler status (the fleet: peers, bans applied, refusals, outbox)"
on h2 bin/gaoler status

bold "h1: gaoler unban sshd $X"
on h1 bin/gaoler unban sshd "$X"
sleep 1
for h in h2 h3; do
  if inns "$h" nft list set inet gaoler sshd_v4 | grep -q "$X"; then echo "  $h still bans $X"; fail=1; else echo "  $h: $X lifted"; fi
done

bold "the fleet's journal entries of the three gaolerds (journalctl -x explains each)"
journalctl -q --no-pager -o cat --since "-2min" SYSLOG_IDENTIFIER=gaolerd | grep -E "^Fleet: " | tail -8 || true

if [ "${fail:-0}" = 1 ]; then
  for i in 1 2 3; do echo "demo-fleet: h$i's gaolerd log:" >&2; cat "$work/h$i/gaolerd.log" >&2; done
  exit 1
fi
bold "done: cleaning up"
