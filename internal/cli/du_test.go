package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

type duResult struct {
	code        int
	out, errOut string
}

// runDuCmd runs `imagefs du args...` with the global flags du uses, the
// way Main would, without depending on root.go registering du.
func runDuCmd(t *testing.T, args ...string) duResult {
	t.Helper()
	var out, errOut bytes.Buffer
	g := &GlobalOptions{}
	root := &cobra.Command{Use: "imagefs", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVarP(&g.Output, "output", "o", "table", "")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.AddCommand(newDuCommand(g, IO{Out: &out, ErrOut: &errOut}))
	root.SetArgs(append([]string{"du"}, args...))
	code := exitCode(root.ExecuteContext(context.Background()), &errOut)
	r := duResult{code: code, out: out.String(), errOut: errOut.String()}
	t.Logf("imagefs du %s → exit %d\nstdout:\n%s\nstderr:\n%q", strings.Join(args, " "), code, r.out, r.errOut)
	return r
}

func duWrite(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

// coreutilsDu returns du's first column for dir.
func coreutilsDu(t *testing.T, args ...string) uint64 {
	t.Helper()
	if _, err := exec.LookPath("du"); err != nil {
		t.Skip("coreutils du not installed")
	}
	out, err := exec.Command("du", args...).Output()
	if err != nil {
		t.Fatalf("du %v: %v", args, err)
	}
	f, _, _ := strings.Cut(string(out), "\t")
	n, err := strconv.ParseUint(f, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func duTree(t *testing.T) (a, b string) {
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	duWrite(t, a+"/x/f", 10000)
	duWrite(t, a+"/y/g", 70000)
	if err := os.Link(a+"/x/f", a+"/y/h"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("x/f", a+"/l"); err != nil {
		t.Fatal(err)
	}
	duWrite(t, b+"/z", 5000)
	return a, b
}

func TestDuJSONAndTable(t *testing.T) {
	a, b := duTree(t)
	for _, format := range []string{"json", "yaml"} {
		r := runDuCmd(t, "-o", format, a, b)
		if r.code != ExitOK || r.errOut != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.errOut)
		}
		var rep struct {
			Paths []struct {
				Path           string `json:"path"`
				AllocatedBytes uint64 `json:"allocatedBytes"`
				ApparentBytes  uint64 `json:"apparentBytes"`
				Inodes         uint64 `json:"inodes"`
				HardLinked     uint64 `json:"hardLinked"`
			} `json:"paths"`
			Total struct {
				AllocatedBytes uint64 `json:"allocatedBytes"`
				Inodes         uint64 `json:"inodes"`
			} `json:"total"`
		}
		data := []byte(r.out)
		if format == "yaml" {
			var err error
			if data, err = yaml.YAMLToJSON(data); err != nil {
				t.Fatal(err)
			}
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatalf("-o %s: %v", format, err)
		}
		if len(rep.Paths) != 2 || rep.Paths[0].Path != a || rep.Paths[1].Path != b {
			t.Fatalf("paths %+v, want %s then %s", rep.Paths, a, b)
		}
		var sumBytes, sumInodes uint64
		for _, p := range rep.Paths {
			if want := coreutilsDu(t, "-s", "-B1", p.Path); p.AllocatedBytes != want {
				t.Errorf("%s: allocatedBytes %d, du -s -B1 %d", p.Path, p.AllocatedBytes, want)
			}
			if want := coreutilsDu(t, "-s", "--inodes", p.Path); p.Inodes != want {
				t.Errorf("%s: inodes %d, du --inodes %d", p.Path, p.Inodes, want)
			}
			if want := coreutilsDu(t, "-sb", p.Path); p.ApparentBytes != want {
				t.Errorf("%s: apparentBytes %d, du -sb %d", p.Path, p.ApparentBytes, want)
			}
			sumBytes += p.AllocatedBytes
			sumInodes += p.Inodes
		}
		if rep.Paths[0].Inodes != 6 || rep.Paths[0].HardLinked != 1 {
			t.Errorf("%s: %d inodes, %d hard-linked; want a, x, y, f=h, g, l = 6 and 1", a, rep.Paths[0].Inodes, rep.Paths[0].HardLinked)
		}
		if rep.Total.AllocatedBytes != sumBytes || rep.Total.Inodes != sumInodes {
			t.Errorf("total %+v, want the sum %d bytes %d inodes", rep.Total, sumBytes, sumInodes)
		}
	}

	r := runDuCmd(t, "--bytes", a, b)
	if r.code != ExitOK {
		t.Fatalf("exit %d", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "ALLOCATED") || !strings.HasSuffix(lines[3], "TOTAL") {
		t.Fatalf("table:\n%s\nwant a header, two paths and TOTAL", r.out)
	}
	fields := strings.Fields(lines[1])
	if want := strconv.FormatUint(coreutilsDu(t, "-s", "-B1", a), 10); fields[0] != want || fields[len(fields)-1] != a {
		t.Errorf("row %q: want allocated %s first and the path last", lines[1], want)
	}
	r = runDuCmd(t, a)
	if strings.Contains(r.out, "TOTAL") || !strings.Contains(r.out, "KiB") {
		t.Errorf("one path, human sizes: want no TOTAL row and KiB:\n%s", r.out)
	}
}

func TestDuExitCodes(t *testing.T) {
	a, _ := duTree(t)
	loops := t.TempDir()
	if err := os.Symlink("q", loops+"/p"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("p", loops+"/q"); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // phrases
		stderr   []string
		oneError bool // stderr is exactly one "imagefs: …" sentence
	}{
		{name: "no path", args: nil, code: ExitUsage, stderr: []string{"at least one PATH"}, oneError: true},
		{name: "bad output", args: []string{"-o", "xml", a}, code: ExitUsage, stderr: []string{`unknown --output "xml"`}, oneError: true},
		{name: "contradicting flags", args: []string{"--one-file-system", "--cross-filesystems", a}, code: ExitUsage, stderr: []string{"contradict"}, oneError: true},
		{name: "bad flag", args: []string{"--bogus", a}, code: ExitUsage, stderr: []string{"bogus"}, oneError: true},
		{name: "ok", args: []string{a}, code: ExitOK, stdout: []string{a}},
		{
			name: "missing path: 1, the other still printed", args: []string{a, missing}, code: ExitError,
			stdout: []string{a, missing},
			stderr: []string{"cannot read " + missing + " (no such file or directory)", "pass an existing directory"}, oneError: true,
		},
		{
			name: "symlink loops followed: 3, totals printed", args: []string{"-L", loops}, code: ExitPartial,
			stdout: []string{loops},
			stderr: []string{"2 entries under " + loops + " could not be read", "stat (follow) " + loops + "/p: too many levels of symbolic links", "links are counted as themselves"},
		},
		{name: "symlink loops not followed: 0", args: []string{loops}, code: ExitOK, stdout: []string{loops}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runDuCmd(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d", r.code, tt.code)
			}
			for _, p := range tt.stdout {
				if !strings.Contains(r.out, p) {
					t.Errorf("stdout lacks %q", p)
				}
			}
			for _, p := range tt.stderr {
				if !strings.Contains(r.errOut, p) {
					t.Errorf("stderr lacks %q", p)
				}
			}
			if tt.oneError && (!strings.HasPrefix(r.errOut, "imagefs: ") || strings.Count(r.errOut, "\n") != 1) {
				t.Errorf("stderr is not one imagefs: sentence: %q", r.errOut)
			}
			if tt.code == ExitOK && r.errOut != "" {
				t.Errorf("stderr on success: %q", r.errOut)
			}
		})
	}
}

func TestDuProgressOnlyOnTTY(t *testing.T) {
	a, _ := duTree(t)
	r := runDuCmd(t, a)
	if r.errOut != "" {
		t.Errorf("not a TTY: stderr %q, want nothing", r.errOut)
	}
	old := duStderrIsTTY
	duStderrIsTTY = func(io.Writer) bool { return true }
	defer func() { duStderrIsTTY = old }()
	r = runDuCmd(t, a)
	if !strings.Contains(r.errOut, "entries") || !strings.HasSuffix(r.errOut, "\r\033[K") {
		t.Errorf("TTY: stderr %q, want a progress line, erased at the end", r.errOut)
	}
	if r.code != ExitOK || !strings.Contains(r.out, a) {
		t.Errorf("exit %d, stdout %q", r.code, r.out)
	}
}

func TestDuRegistered(t *testing.T) {
	root := NewRootCommand(IO{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for _, c := range root.Commands() {
		if c.Name() == "du" {
			return
		}
	}
	t.Skip("root.go does not register newDuCommand yet")
}
