#!/usr/bin/env bash
# Makes sure a journald is running, as on a systemd host; starts one by hand where there is no
# systemd as PID 1 (containers, CI). It gets RateLimitBurst=0 so tests that write many entries are not
# rate-limited, and /dev/log is linked to it so syslog writers such as sshd reach it.
set -euo pipefail
sock=/run/systemd/journal/socket
if [ -S "$sock" ] && pgrep -x systemd-journal >/dev/null; then
  exit 0
fi
mkdir -p /etc/systemd/journald.conf.d /run/systemd/journal /var/log/journal
printf '[Journal]\nRateLimitBurst=0\nRateLimitIntervalSec=0\nStorage=persistent\n' \
  > /etc/systemd/journald.conf.d/90-gaoler-tests.conf
rm -f "$sock" /run/systemd/journal/stdout /run/systemd/journal/dev-log
setsid /lib/systemd/systemd-journald </dev/null >/dev/null 2>&1 &
for _ in $(seq 1 100); do
  [ -S "$sock" ] && break
  sleep 0.05
done
[ -S "$sock" ] || { echo "journald did not start" >&2; exit 1; }
ln -sf /run/systemd/journal/dev-log /dev/log
echo "journald: started (pid $(pgrep -x systemd-journal | head -1))"
