#!/usr/bin/env bash
# Makes sure a journald is running, as on a systemd host; starts one by hand where there is no
# systemd as PID 1 (containers, CI). It gets RateLimitBurst=0 so tests that write many entries are not
# rate-limited, and /dev/log is linked to it so syslog writers such as sshd reach it.
set -euo pipefail
sock=/run/systemd/journal/socket
# A journald is there when its stream socket takes a connection: a socket file alone may be left from
# one that is gone, and pgrep would also see a journald outside this chroot or namespace.
if [ -S "$sock" ] && systemd-cat -t gaoler-journald-probe true 2>/dev/null; then
  exit 0
fi
mkdir -p /etc/systemd/journald.conf.d /run/systemd/journal /var/log/journal
printf '[Journal]\nRateLimitBurst=0\nRateLimitIntervalSec=0\nStorage=persistent\n' \
  > /etc/systemd/journald.conf.d/90-gaoler-tests.conf
rm -f "$sock" /run/systemd/journal/stdout /run/systemd/journal/dev-log
log=$(mktemp)
setsid /lib/systemd/systemd-journald </dev/null >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  [ -S "$sock" ] && systemd-cat -t gaoler-journald-probe true 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
if ! systemd-cat -t gaoler-journald-probe true 2>/dev/null; then
  echo "journald did not start:" >&2
  cat "$log" >&2
  exit 1
fi
rm -f "$log"
ln -sf /run/systemd/journal/dev-log /dev/log
echo "journald: started (pid $pid)"
