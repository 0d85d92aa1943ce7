package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io"
	"math"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The side-by-side figures (cmd/gaolerd/rivals_bench_test.go): one sub-benchmark per tool.
var rivalTools = []struct {
	key, label string
	color      color.RGBA
}{
	{"gaoler", "gaoler", color.RGBA{0x1f, 0x6f, 0xb4, 0xff}},
	{"fail2ban", "fail2ban", color.RGBA{0xe0, 0x7b, 0x10, 0xff}},
	{"sshguard", "sshguard", color.RGBA{0x2c, 0x9a, 0x3c, 0xff}},
	{"bare", "bare loop", color.RGBA{0xa0, 0xa0, 0xa0, 0xff}},
}

var rivalFigures = []struct {
	what, bench, metric, unit string
	lowerIsBetter             bool
}{
	{"ban latency p50, paced attackers", "BenchmarkRivals", "paced-p50-ms", "ms", true},
	{"ban latency p99, paced attackers", "BenchmarkRivals", "paced-p99-ms", "ms", true},
	{"burst: 100 attackers at once", "BenchmarkRivals", "burst-bans/s", "bans/s", false},
	{"catch-up, sshd entries per CPU-second", "BenchmarkRivalsCatchUp", "entries/cpu-s", "entries/CPU-s", false},
	{"CPU, sparse failures (one every 2 s)", "BenchmarkRivals", "sparse-cpu-%", "% of a core", true},
	{"CPU, idle", "BenchmarkRivals", "idle-cpu-%", "% of a core", true},
	{"memory, anonymous RSS after 121 bans", "BenchmarkRivals", "rss-anon-MiB", "MiB", true},
	{"memory, RSS after 121 bans", "BenchmarkRivals", "rss-MiB", "MiB", true},
}

// rivalRow is one figure of the side-by-side table: each tool's value, where measured.
type rivalRow struct {
	what, unit    string
	lowerIsBetter bool
	values        []float64 // by rivalTools
	has           []bool
	notes         []string // by rivalTools: "10% read" for a catch-up stopped before the end
}

// best is the index of the best value among the real tools (not the bare loop), or -1.
func (r rivalRow) best() int {
	b := -1
	for i, t := range rivalTools {
		if t.key == "bare" || !r.has[i] {
			continue
		}
		if b < 0 || (r.lowerIsBetter && r.values[i] < r.values[b]) || (!r.lowerIsBetter && r.values[i] > r.values[b]) {
			b = i
		}
	}
	return b
}

// rivalTable picks the side-by-side figures out of the results; rows nobody measured are left out.
func rivalTable(r results) []rivalRow {
	var rows []rivalRow
	for _, f := range rivalFigures {
		row := rivalRow{what: f.what, unit: f.unit, lowerIsBetter: f.lowerIsBetter,
			values: make([]float64, len(rivalTools)), has: make([]bool, len(rivalTools)), notes: make([]string, len(rivalTools))}
		any := false
		for i, t := range rivalTools {
			row.values[i], row.has[i] = r.get(f.bench+"/"+t.key, f.metric)
			any = any || row.has[i]
			if read, ok := r.get(f.bench+"/"+t.key, "read-%"); ok && row.has[i] && read < 100 {
				row.notes[i] = fmt.Sprintf("stopped, %s%% read", num(read))
			}
		}
		if any {
			rows = append(rows, row)
		}
	}
	return rows
}

func rivalsMarkdown(w io.Writer, rows []rivalRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "## Side by side: gaoler, fail2ban, sshguard")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Debian 12's fail2ban and sshguard, configured for sshd as an admin would (journal backend,")
	fmt.Fprintln(w, "nftables), and the bare loop (sd-journal polled every millisecond, one google/nftables ban per")
	fmt.Fprintln(w, "address): one after the other, each in a network namespace and a cgroup of its own, on the same")
	fmt.Fprintln(w, "live journal and the same attacks. All ban at the 5th failure within 10 minutes, for an hour")
	fmt.Fprintln(w, "(sshguard: THRESHOLD=50, 10 points per failure). Latency is from the banning failure to the")
	fmt.Fprintln(w, "element in the kernel set (nft monitor). sshguard cannot resume after downtime (it starts at the")
	fmt.Fprintln(w, "journal's tail): its catch-up figure is its pipeline's throughput over the same entries, and it is")
	fmt.Fprintln(w, "stopped after a minute (sshg-blocker searches a list of the addresses it tracks for every attack, so")
	fmt.Fprintln(w, "it slows down as they grow). The best of the three tools is in bold. See")
	fmt.Fprintln(w, "cmd/gaolerd/rivals_bench_test.go.")
	fmt.Fprintln(w)
	head, sep := "| figure |", "|---|"
	for _, t := range rivalTools {
		head += " " + t.label + " |"
		sep += "---|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	for _, row := range rows {
		cells := []string{row.what + " (" + row.unit + ")"}
		best := row.best()
		for i := range rivalTools {
			c := ""
			if row.has[i] {
				c = num(row.values[i])
				if i == best {
					c = "**" + c + "**"
				}
				if row.notes[i] != "" {
					c += " (" + row.notes[i] + ")"
				}
			}
			cells = append(cells, c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

// rivalsChart draws one group of bars per figure, a bar per tool. A group whose values span more than
// two orders of magnitude is drawn on a log scale (and says so), or gaoler's milliseconds would not
// show next to fail2ban's hundreds.
func rivalsChart(rows []rivalRow) *image.RGBA {
	const w, left, barMax, barH = 1100, 330, 560, 16
	rowH := 12 + barH*len(rivalTools) + 10
	img := image.NewRGBA(image.Rect(0, 0, w, 60+rowH*len(rows)+10))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	if len(rows) == 0 {
		return img
	}
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	text(10, 22, "Side by side on the same journal and attacks:", color.Black)
	x := 340
	for _, t := range rivalTools {
		draw.Draw(img, image.Rect(x, 12, x+14, 26), image.NewUniform(t.color), image.Point{}, draw.Src)
		text(x+18, 23, t.label, color.Black)
		x += 30 + 7*len(t.label)
	}
	for ri, row := range rows {
		y := 50 + ri*rowH
		lo, hi := math.Inf(1), 0.0
		for i, v := range row.values {
			if row.has[i] && v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		logScale := hi > 0 && hi/lo > 100
		better := "higher is better"
		if row.lowerIsBetter {
			better = "lower is better"
		}
		text(10, y+16, row.what, color.Black)
		note := better
		if logScale {
			note += ", log scale"
		}
		text(10, y+32, note, color.Gray{0x60})
		for i, t := range rivalTools {
			by := y + 4 + i*barH
			if !row.has[i] {
				text(left, by+12, t.label+": not measured", color.Gray{0x80})
				continue
			}
			v := row.values[i]
			frac := 0.0
			switch {
			case hi <= 0 || v <= 0:
			case logScale:
				// lo/10 at the left edge, so that the smallest value still has a bar.
				frac = math.Log10(v/(lo/10)) / math.Log10(hi/(lo/10))
			default:
				frac = v / hi
			}
			l := max(int(barMax*frac), 1)
			draw.Draw(img, image.Rect(left, by, left+l, by+barH-3), image.NewUniform(t.color), image.Point{}, draw.Src)
			label := num(v) + " " + row.unit
			if row.notes[i] != "" {
				label += " (" + row.notes[i] + ")"
			}
			text(left+l+6, by+11, label, color.Black)
		}
	}
	return img
}

// mainChart is the report's PNG: the side-by-side figures, then gaoler's next to its references, each
// only if measured.
func mainChart(rows []rivalRow, hs []figure) *image.RGBA {
	var parts []*image.RGBA
	if len(rows) > 0 {
		parts = append(parts, rivalsChart(rows))
	}
	if len(hs) > 0 || len(rows) == 0 {
		parts = append(parts, chart(hs))
	}
	return stack(parts...)
}

// stack puts images one under the other.
func stack(imgs ...*image.RGBA) *image.RGBA {
	w, h := 0, 0
	for _, m := range imgs {
		w, h = max(w, m.Bounds().Dx()), h+m.Bounds().Dy()
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	y := 0
	for _, m := range imgs {
		draw.Draw(out, m.Bounds().Add(image.Pt(0, y)), m, image.Point{}, draw.Src)
		y += m.Bounds().Dy()
	}
	return out
}
