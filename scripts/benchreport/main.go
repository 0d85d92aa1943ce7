// Command benchreport turns the output of `go test -bench` (the figures `make bench` measures) into a
// Markdown report and a PNG chart of the main figures: gaoler next to fail2ban, sshguard and the bare
// reference loop (BenchmarkRivals, BenchmarkRivalsCatchUp), then each of gaoler's figures next to its
// reference from the same run.
//
//	benchreport [-o report.md] [-png report.png] BENCH-OUTPUT...
//
// It reads the benchmark lines ("BenchmarkX/sub-2  1  123 ns/op  4.5 unit ..."), prints the report
// on stdout and writes it to -o. Figures a run did not measure are left out.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// results maps a benchmark's name (without the -GOMAXPROCS suffix) to its metrics by unit.
type results map[string]map[string]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader, into results) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		m := into[name]
		if m == nil {
			m = map[string]float64{}
			into[name] = m
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			m[f[i+1]] = v
		}
	}
	return sc.Err()
}

// figure is one headline: gaoler's value next to its reference from the same run, and the goal.
type figure struct {
	what          string
	gaoler        float64
	refName       string
	ref           float64 // NaN-free: hasRef says whether there is one
	hasRef        bool
	unit          string
	goal          string
	met           bool
	lowerIsBetter bool
}

func (r results) get(bench, unit string) (float64, bool) {
	m, ok := r[bench]
	if !ok {
		return 0, false
	}
	v, ok := m[unit]
	return v, ok
}

// headlines picks the goals out of the results.
func headlines(r results) []figure {
	var out []figure
	add := func(f figure) { out = append(out, f) }
	if g, ok := r.get("BenchmarkTrickle/maxretry=1", "gaolerd-cpu-%"); ok {
		ref, _ := r.get("BenchmarkTrickle/maxretry=1", "headerloop-cpu-%")
		add(figure{what: "CPU, maxretry 1, trickle (always hot)", gaoler: g, refName: "headerloop (1 ms header read)", ref: ref, hasRef: true,
			unit: "% of a core", goal: "<= 1.25x reference", met: g <= 1.25*ref, lowerIsBetter: true})
		p99, _ := r.get("BenchmarkTrickle/maxretry=1", "ban-p99-ms")
		add(figure{what: "ban latency p99, maxretry 1 trickle", gaoler: p99, refName: "goal", ref: 5, hasRef: true,
			unit: "ms", goal: "<= 5 ms", met: p99 <= 5, lowerIsBetter: true})
	}
	if g, ok := r.get("BenchmarkTrickle/maxretry=5", "gaolerd-cpu-%"); ok {
		ref, _ := r.get("BenchmarkTrickle/maxretry=5", "headerloop-cpu-%")
		add(figure{what: "CPU, maxretry 5, trickle + 3 attackers", gaoler: g, refName: "headerloop (always polling)", ref: ref, hasRef: true,
			unit: "% of a core", goal: "< 0.5%", met: g < 0.5, lowerIsBetter: true})
		p99, _ := r.get("BenchmarkTrickle/maxretry=5", "ban-p99-ms")
		add(figure{what: "attackers' 5th failure to kernel ban, p99", gaoler: p99, unit: "ms", goal: "<= 5 ms", met: p99 <= 5, lowerIsBetter: true})
	}
	if g, ok := r.get("BenchmarkFlood", "banned-in-kernel"); ok {
		n, _ := r.get("BenchmarkFlood", "offenders")
		add(figure{what: "flood: offenders banned in the kernel", gaoler: g, refName: "offenders", ref: n, hasRef: true,
			unit: "addresses", goal: "all", met: g >= n})
		rss, _ := r.get("BenchmarkFlood", "peak-rss-anon-MiB")
		add(figure{what: "flood: peak anonymous RSS", gaoler: rss, refName: "goal", ref: 200, hasRef: true,
			unit: "MiB", goal: "<= 200 MiB", met: rss <= 200, lowerIsBetter: true})
		bus, _ := r.get("BenchmarkFlood", "slowest-bus-reply-ms")
		add(figure{what: "flood: slowest bus reply (every 100 ms)", gaoler: bus, unit: "ms", goal: "answers throughout", met: true, lowerIsBetter: true})
	}
	if g, ok := r.get("BenchmarkCatchUp", "gaolerd-entries/s"); ok {
		ref, _ := r.get("BenchmarkCatchUp", "bare-entries/s")
		add(figure{what: "catch-up, sshd entries per CPU-second", gaoler: g, refName: "bare go-systemd loop", ref: ref, hasRef: true,
			unit: "entries/CPU-s", goal: "CPU <= 1.25x reference", met: g*1.25 >= ref})
	}
	if g, ok := r.get("BenchmarkSteady", "gaolerd-cpu-%"); ok {
		add(figure{what: "steady 10,000 sshd lines/s, 1% failures", gaoler: g, unit: "% of a core", goal: "< 5%", met: g < 5, lowerIsBetter: true})
	}
	if g, ok := r.get("BenchmarkBanLatency", "p99-ms"); ok {
		ref, _ := r.get("BenchmarkBanLatency", "bare-wait-p99-ms")
		add(figure{what: "ban latency p99, 300 failures 10 ms apart", gaoler: g, refName: "bare sd_journal_wait loop", ref: ref, hasRef: true,
			unit: "ms", goal: "milliseconds", met: g <= 5, lowerIsBetter: true})
		idle, _ := r.get("BenchmarkBanLatency", "idle-cpu-%")
		// BenchmarkBanLatency runs with maxretry 1: its reader is hot all the time, on the machine's
		// own (busy, shared) journal.
		add(figure{what: "CPU with nothing to ban, maxretry 1 (hot), live journal", gaoler: idle, unit: "% of a core",
			goal: "as headerloop's", met: idle < 5, lowerIsBetter: true})
		mem, _ := r.get("BenchmarkBanLatency", "idle-rss-anon-MiB")
		add(figure{what: "anonymous RSS after 301 bans", gaoler: mem, unit: "MiB", goal: "small", met: mem < 50, lowerIsBetter: true})
	}
	if g, ok := r.get("BenchmarkBanLatency100k", "p99-ms"); ok {
		ref, _ := r.get("BenchmarkBanLatency100k", "ref-p99-ms")
		add(figure{what: "ban latency p99, 100,000 bans in the set", gaoler: g, refName: "bare 1 ms poll loop, 100,000 elements", ref: ref, hasRef: true,
			unit: "ms", goal: "<= 5 ms", met: g <= 5, lowerIsBetter: true})
	}
	if g, ok := r.get("BenchmarkBanLatencyBusFlood", "flood-p99-ms"); ok {
		ref, _ := r.get("BenchmarkBanLatencyBusFlood", "quiet-p99-ms")
		add(figure{what: "ban latency p99, 100,000 bans, bus flooded (ListBans, Ban/Unban loops)", gaoler: g, refName: "no flood, same run", ref: ref, hasRef: true,
			unit: "ms", goal: "<= 5 ms", met: g <= 5, lowerIsBetter: true})
	}
	return out
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func markdown(w io.Writer, r results, hs []figure, chart string) {
	fmt.Fprintln(w, "# gaoler benchmarks")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Each figure next to its reference measured in the same run (see each benchmark's doc comment).")
	fmt.Fprintln(w, "The machine these run on may be shared: CPU figures are noisy, re-measure on a quiet one.")
	fmt.Fprintln(w)
	if chart != "" {
		fmt.Fprintf(w, "![main figures](%s)\n\n", chart)
	}
	rivalsMarkdown(w, rivalTable(r))
	if len(hs) > 0 {
		fmt.Fprintln(w, "## gaoler next to its references")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| figure | gaoler | reference, same run | goal | met |")
		fmt.Fprintln(w, "|---|---|---|---|---|")
		for _, h := range hs {
			ref := ""
			if h.hasRef {
				ref = fmt.Sprintf("%s: %s", h.refName, num(h.ref))
			}
			met := "no"
			if h.met {
				met = "yes"
			}
			fmt.Fprintf(w, "| %s | %s %s | %s | %s | %s |\n", h.what, num(h.gaoler), h.unit, ref, h.goal, met)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "## Every figure")
	fmt.Fprintln(w)
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "| benchmark | figures |")
	fmt.Fprintln(w, "|---|---|")
	for _, n := range names {
		units := make([]string, 0, len(r[n]))
		for u := range r[n] {
			units = append(units, u)
		}
		sort.Strings(units)
		var parts []string
		for _, u := range units {
			parts = append(parts, num(r[n][u])+" "+u)
		}
		fmt.Fprintf(w, "| %s | %s |\n", n, strings.Join(parts, ", "))
	}
}

// chart draws one row per headline with a reference: two bars, gaoler's and the reference's, scaled
// to the larger of the two, with their values.
func chart(hs []figure) *image.RGBA {
	var rows []figure
	for _, h := range hs {
		if h.hasRef {
			rows = append(rows, h)
		}
	}
	const w, rowH, left, barMax = 1100, 64, 330, 430
	img := image.NewRGBA(image.Rect(0, 0, w, 50+rowH*len(rows)+30))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	blue := color.RGBA{0x1f, 0x6f, 0xb4, 0xff}
	grey := color.RGBA{0xa0, 0xa0, 0xa0, 0xff}
	text(10, 22, "gaoler (blue) next to its reference from the same run (grey)", color.Black)
	for i, h := range rows {
		y := 50 + i*rowH
		text(10, y+16, h.what, color.Black)
		text(10, y+32, "goal: "+h.goal, color.Gray{0x60})
		top := max(h.gaoler, h.ref)
		if top <= 0 {
			top = 1
		}
		bar := func(dy int, v float64, c color.Color, label string) {
			l := int(float64(barMax) * v / top)
			draw.Draw(img, image.Rect(left, y+dy, left+max(l, 1), y+dy+18), image.NewUniform(c), image.Point{}, draw.Src)
			text(left+max(l, 1)+6, y+dy+14, label, color.Black)
		}
		bar(4, h.gaoler, blue, num(h.gaoler)+" "+h.unit)
		bar(26, h.ref, grey, num(h.ref)+" "+h.refName)
	}
	return img
}

func main() {
	out := flag.String("o", "", "also write the report to this file")
	pngOut := flag.String("png", "", "write the chart to this PNG file")
	flag.Parse()
	r := results{}
	for _, p := range flag.Args() {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		err = parse(f, r)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
	}
	hs := headlines(r)
	chartRef := ""
	if *pngOut != "" {
		f, err := os.Create(*pngOut)
		if err == nil {
			err = png.Encode(f, mainChart(rivalTable(r), hs))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		chartRef = *pngOut
		if i := strings.LastIndex(chartRef, "/"); i >= 0 {
			chartRef = chartRef[i+1:]
		}
	}
	var b strings.Builder
	markdown(&b, r, hs, chartRef)
	fmt.Print(b.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
	}
}
