// Package contrib holds gaoler's contributed filters (filters/*.toml) and their sample lines
// (filters/testdata). It has no code of its own: its tests check that every filter is well formed,
// trusts only journal fields a client cannot forge, and matches exactly the sample lines it should,
// run through `gaoler test-filter` as a user would.
package contrib

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/gaoler/gaoler/internal/testenv"
)

// filterFile is the shape of a contributed filter file: one [filter.NAME] table, NAME being the
// file's base name. The example jail is commented out, so there is no [jail] table.
type filterFile struct {
	Filter map[string]struct {
		JournalMatch []string `toml:"journal_match"`
		FailRegex    []string `toml:"failregex"`
		IgnoreRegex  []string `toml:"ignoreregex"`
	} `toml:"filter"`
	Jail map[string]any `toml:"jail"`
}

// trustedFields are the journal fields journald sets itself (SPEC "Trust").
var trustedFields = []string{"_SYSTEMD_UNIT", "_COMM", "_EXE", "_UID"}

func filterFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("filters/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no filters in filters/: %v", err)
	}
	return files
}

func filterName(file string) string { return strings.TrimSuffix(filepath.Base(file), ".toml") }

// TestFilterFiles checks each file's structure without running gaoler.
func TestFilterFiles(t *testing.T) {
	for _, file := range filterFiles(t) {
		name := filterName(file)
		t.Run(name, func(t *testing.T) {
			var f filterFile
			md, err := toml.DecodeFile(file, &f)
			if err != nil {
				t.Fatal(err)
			}
			if u := md.Undecoded(); len(u) > 0 {
				t.Errorf("unknown keys: %v", u)
			}
			if len(f.Jail) > 0 {
				t.Errorf("the example jail must be commented out, found [jail] tables %v", f.Jail)
			}
			if len(f.Filter) != 1 {
				t.Fatalf("want exactly one [filter.%s] table, have %d", name, len(f.Filter))
			}
			flt, ok := f.Filter[name]
			if !ok {
				t.Fatalf("the filter table must be [filter.%s], named as the file", name)
			}
			if len(flt.FailRegex) == 0 {
				t.Error("no failregex")
			}
			for i, re := range flt.FailRegex {
				if strings.Count(re, "<HOST>") != 1 {
					t.Errorf("failregex[%d] must hold <HOST> exactly once: %s", i, re)
				}
			}
			trusted := false
			for _, term := range flt.JournalMatch {
				field, _, _ := strings.Cut(term, "=")
				for _, tf := range trustedFields {
					trusted = trusted || field == tf
				}
			}
			if !trusted {
				t.Errorf("journal_match %q rests on no trusted field (%v)", flt.JournalMatch, trustedFields)
			}
			for _, suffix := range []string{".log", ".expected"} {
				if _, err := os.Stat(filepath.Join("filters", "testdata", name+suffix)); err != nil {
					t.Errorf("sample lines missing: %v", err)
				}
			}
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(text, []byte("\n# [jail.")) {
				t.Error("no commented example [jail.NAME]")
			}
		})
	}
}

// expected reads testdata/NAME.expected: "LINE HOST" for each line the filter must match; every
// other line must miss. Blank lines and lines starting with # are comments.
func expected(t *testing.T, name string) map[int]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("filters", "testdata", name+".expected"))
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[int]string)
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fields := strings.Fields(l)
		n, err := strconv.Atoi(fields[0])
		if len(fields) != 2 || err != nil {
			t.Fatalf("%s.expected:%d: want \"LINE HOST\", have %q", name, i+1, l)
		}
		want[n] = fields[1]
	}
	return want
}

var (
	buildOnce sync.Once
	gaolerBin string
	buildErr  error
)

// gaoler builds cmd/gaoler once per test binary. Until the client builds, the tests that need it
// skip, except under GAOLER_INTEGRATION=1, where they fail.
func gaoler(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gaoler-contrib-")
		if err != nil {
			buildErr = err
			return
		}
		gaolerBin = filepath.Join(dir, "gaoler")
		cmd := exec.Command("go", "build", "-o", gaolerBin, "./cmd/gaoler")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(strings.TrimSpace(string(out)))
		}
	})
	testenv.Require(t, buildErr == nil, "cmd/gaoler does not build: "+errString(buildErr))
	return gaolerBin
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if gaolerBin != "" {
		os.RemoveAll(filepath.Dir(gaolerBin))
	}
	os.Exit(code)
}

// lineResult is one object of `gaoler test-filter --json` (SPEC "Binaries").
type lineResult struct {
	Line    int             `json:"line"`
	Message string          `json:"message"`
	Match   bool            `json:"match"`
	Host    string          `json:"host"`
	Rule    string          `json:"rule"`
	Summary json.RawMessage `json:"summary"`
}

// TestSampleLines runs each filter over its sample lines with `gaoler test-filter --json` and
// compares every line's verdict and host with NAME.expected.
func TestSampleLines(t *testing.T) {
	bin := gaoler(t)
	for _, file := range filterFiles(t) {
		name := filterName(file)
		t.Run(name, func(t *testing.T) {
			want := expected(t, name)
			logFile := filepath.Join("filters", "testdata", name+".log")
			lines := countLines(t, logFile)

			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, "test-filter", name, "--config", file, logFile, "--json")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, stderr.String())
			}

			seen := make(map[int]bool)
			summary := false
			dec := json.NewDecoder(&stdout)
			for {
				var r lineResult
				err := dec.Decode(&r)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("bad JSON from test-filter: %v", err)
				}
				if r.Summary != nil {
					summary = true
					continue
				}
				seen[r.Line] = true
				host, should := want[r.Line]
				switch {
				case should && !r.Match:
					t.Errorf("line %d: missed, want host %s: %s", r.Line, host, r.Message)
				case !should && r.Match:
					t.Errorf("line %d: matched (host %s, rule %s), want a miss: %s", r.Line, r.Host, r.Rule, r.Message)
				case should && r.Host != host:
					t.Errorf("line %d: host %s, want %s: %s", r.Line, r.Host, host, r.Message)
				}
			}
			if !summary {
				t.Error("no summary object")
			}
			for n := 1; n <= lines; n++ {
				if !seen[n] {
					t.Errorf("no result for line %d", n)
				}
			}
			for n := range want {
				if n < 1 || n > lines {
					t.Errorf("%s.expected names line %d of %d", name, n, lines)
				}
			}
		})
	}
}

// TestCheckConfig loads each filter file as a configuration: it must be valid on its own.
func TestCheckConfig(t *testing.T) {
	bin := gaoler(t)
	for _, file := range filterFiles(t) {
		t.Run(filterName(file), func(t *testing.T) {
			out, err := exec.Command(bin, "check-config", "--config", file).CombinedOutput()
			if err != nil {
				t.Fatalf("check-config: %v\n%s", err, out)
			}
		})
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		n++
	}
	return n
}
