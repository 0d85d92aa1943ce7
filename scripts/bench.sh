#!/bin/bash
# bench.sh runs gaoler's benchmarks, each next to its reference measured in the same run, and gaoler
# side by side with fail2ban and sshguard (BenchmarkRivals, installed by scripts/rivals-deps.sh when
# missing, never started outside the benchmark's namespaces), keeps their output in bench/bench.txt,
# and turns it into bench/report.md (printed too) and the chart bench/report.png (scripts/benchreport).
# Root only: the daemon's benchmarks need namespaces, nftables and journald.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p bench
if [ "$(id -u)" = 0 ]; then
	bash scripts/journald.sh
	bash scripts/rivals-deps.sh
fi
{
	$GO test -run '^$' -bench . -benchmem ./jails/
	GAOLER_INTEGRATION=1 $GO test -run '^$' -bench . -benchtime 3x -timeout 30m ./journal/ ./firewall/
	GAOLER_INTEGRATION=1 $GO test -run '^$' -bench . -benchtime 1x -timeout 90m ./cmd/gaolerd/
	$GO test -run '^$' -bench . -benchtime 1x ./fleet/
} 2>&1 | tee bench/bench.txt
echo
$GO run ./scripts/benchreport -o bench/report.md -png bench/report.png bench/bench.txt
echo
echo "bench/report.md, bench/report.png, bench/bench.txt written"
