package main

import (
	"strings"
	"testing"
)

const rivalsOutput = `BenchmarkRivals/gaoler-2   1  28655052344 ns/op  529.3 burst-bans/s  0.9087 idle-cpu-%  1.564 paced-p50-ms  43.43 paced-p99-ms  79.68 rss-MiB  6.680 rss-anon-MiB  1.870 sparse-cpu-%
BenchmarkRivals/fail2ban-2 1  44971149409 ns/op  32.52 burst-bans/s  0.1316 idle-cpu-%  907.7 paced-p50-ms  1216 paced-p99-ms  63.39 rss-MiB  29.84 rss-anon-MiB  0.1446 sparse-cpu-%
BenchmarkRivals/bare-2     1  28307688202 ns/op  3814 burst-bans/s  4.941 idle-cpu-%  1.505 paced-p50-ms  4.501 paced-p99-ms  22.06 rss-MiB  3.090 rss-anon-MiB  4.410 sparse-cpu-%
BenchmarkRivalsCatchUp/sshguard-2  1  60512839831 ns/op  225.8 entries/cpu-s  9.932 read-%
`

func TestRivalTable(t *testing.T) {
	r := results{}
	if err := parse(strings.NewReader(rivalsOutput), r); err != nil {
		t.Fatal(err)
	}
	rows := rivalTable(r)
	if len(rows) != len(rivalFigures) {
		t.Fatalf("%d rows, want %d (every figure measured by someone)", len(rows), len(rivalFigures))
	}
	var b strings.Builder
	rivalsMarkdown(&b, rows)
	md := b.String()
	for _, want := range []string{
		"| figure | gaoler | fail2ban | sshguard | bare loop |",
		// The best of the three tools is bold; the bare loop (3814) is not a contender; sshguard's
		// missing figures are empty cells.
		"| burst: 100 attackers at once (bans/s) | **529.3** | 32.5 |  | 3814 |",
		"| ban latency p99, paced attackers (ms) | **43.4** | 1216 |  | 4.5 |",
		"| CPU, idle (% of a core) | 0.909 | **0.132** |  | 4.94 |",
		"| catch-up, sshd entries per CPU-second (entries/CPU-s) |  |  | **225.8** (stopped, 9.93% read) |  |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	img := rivalsChart(rows)
	if img.Bounds().Dy() < 50+len(rows)*60 {
		t.Errorf("chart is %v for %d rows", img.Bounds(), len(rows))
	}
	// Each tool's colour is on the chart (legend and bars).
	for _, tool := range rivalTools {
		found := false
		for y := 0; y < img.Bounds().Dy() && !found; y++ {
			for x := 0; x < img.Bounds().Dx() && !found; x++ {
				found = img.RGBAAt(x, y) == tool.color
			}
		}
		if !found {
			t.Errorf("no %s bar or legend on the chart", tool.key)
		}
	}
}

func TestRivalTableEmpty(t *testing.T) {
	r := results{}
	if err := parse(strings.NewReader("BenchmarkFlood-2 1 5 ns/op 10 banned-in-kernel\n"), r); err != nil {
		t.Fatal(err)
	}
	if rows := rivalTable(r); len(rows) != 0 {
		t.Fatalf("rows %v from a run without the side-by-side benchmark", rows)
	}
	var b strings.Builder
	rivalsMarkdown(&b, nil)
	if b.Len() != 0 {
		t.Errorf("a side-by-side section without figures: %q", b.String())
	}
}
