package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/imagefs/imagefs/pkg/analyze/walk"
	"github.com/imagefs/imagefs/pkg/output"
)

// duErrorsShown is how many unreadable entries per path du prints on stderr
// (-o json lists up to walk.DefaultMaxErrors).
const duErrorsShown = 5

type duOptions struct {
	exactBytes       bool
	oneFileSystem    bool
	crossFilesystems bool
	followSymlinks   bool
	workers          int
}

// duStderrIsTTY reports whether progress may be drawn on w; tests replace it.
var duStderrIsTTY = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newDuCommand(g *GlobalOptions, streams IO) *cobra.Command {
	o := &duOptions{}
	cmd := &cobra.Command{
		Use:   "du PATH...",
		Short: "Measure directories as containerd measures snapshots (allocated bytes, inodes)",
		Long: `du walks each PATH and prints its allocated bytes, apparent bytes and inodes,
counted the way containerd counts a snapshot's usage, which CRI ImageFsInfo
sums into the usedBytes and inodesUsed the kubelet reports for imagefs
(containerd v2.4.2 overlayfs snapshotter: continuity v0.5.0 fs.DiskUsage of
<root>/snapshots/<id>/fs):

  allocated  Σ st_blocks×512 over distinct inodes: containerd's Size, du -B1
  inodes     distinct (st_dev, st_ino), directories and PATH included:
             containerd's Inodes, du --inodes
  apparent   Σ st_size over distinct inodes: du -b

Hard links are counted once per PATH; PATHs are counted separately and
TOTAL is their sum, as CRI sums snapshots. Symlinks are not followed (a
symlinked PATH counts as the link) unless --follow-symlinks. Mounts below a
PATH are skipped and listed on stderr unless --cross-filesystems (containerd
crosses them; snapshot dirs normally contain none). Overlay whiteouts
(character devices 0:0), .wh.* files and opaque directories are counted in
the totals, as containerd counts them, and shown separately.

An entry that cannot be read (permission denied, removed during the walk,
symlink loop with --follow-symlinks) does not stop the walk: it is counted
in ERRORS and the first ones are printed on stderr. containerd would fail
the whole snapshot instead.

Exit codes:
  0  every entry was read
  1  a PATH could not be read at all (the others are still printed)
  2  usage error
  3  totals printed, but some entries could not be read (see stderr)`,
		Example: `  imagefs du /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/*/fs
  imagefs du --bytes -o json /var/lib/containerd | jq .total.allocatedBytes
  imagefs du --cross-filesystems /var/lib/kubelet`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("du needs at least one PATH, e.g. imagefs du /var/lib/containerd")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch g.Output {
			case output.FormatTable, output.FormatJSON, output.FormatYAML:
			default:
				return usageError{fmt.Errorf("unknown --output %q: use table, json or yaml", g.Output)}
			}
			if cmd.Flags().Changed("cross-filesystems") && cmd.Flags().Changed("one-file-system") && o.crossFilesystems == o.oneFileSystem {
				return usageError{errors.New("--one-file-system and --cross-filesystems contradict each other: pass one")}
			}
			if o.crossFilesystems {
				o.oneFileSystem = false
			}
			return runDu(cmd.Context(), g, streams, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.exactBytes, "bytes", false, "print exact byte counts instead of human sizes (table)")
	f.BoolVarP(&o.oneFileSystem, "one-file-system", "x", true, "skip mounts below each PATH (--one-file-system=false or --cross-filesystems to include them)")
	f.BoolVar(&o.crossFilesystems, "cross-filesystems", false, "descend into mounts below each PATH, as containerd does")
	f.BoolVarP(&o.followSymlinks, "follow-symlinks", "L", false, "count what symlinks point to instead of the links (like du -L)")
	f.IntVar(&o.workers, "workers", 0, "directories read in parallel (0: max(16, 2×GOMAXPROCS))")
	return cmd
}

// duPath is one PATH in the report: its totals, or why it has none.
type duPath struct {
	Path  string `json:"path"`
	Error string `json:"error,omitempty"`
	*walk.Totals
}

// duReport is what du prints with -o json / yaml.
type duReport struct {
	Paths []duPath    `json:"paths"`
	Total walk.Totals `json:"total"`
}

func runDu(ctx context.Context, g *GlobalOptions, streams IO, o *duOptions, paths []string) error {
	wo := walk.Options{
		Workers:          o.workers,
		CrossFilesystems: !o.oneFileSystem,
		FollowSymlinks:   o.followSymlinks,
	}
	var prog *duProgress
	if duStderrIsTTY(streams.ErrOut) {
		prog = &duProgress{w: streams.ErrOut}
		wo.Progress = prog.draw
	}
	res, err := walk.Walk(ctx, paths, wo)
	prog.erase()

	var interrupted error
	rootErrs := map[string]error{}
	if err != nil {
		var re *walk.RootError
		for _, e := range duUnjoin(err) {
			if errors.As(e, &re) {
				rootErrs[re.Root] = re
			} else {
				interrupted = e
			}
		}
	}

	rep := duReport{}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		if t, ok := res[p]; ok {
			rep.Paths = append(rep.Paths, duPath{Path: p, Totals: &t})
			rep.Total.Add(t)
		} else if e := rootErrs[p]; e != nil {
			rep.Paths = append(rep.Paths, duPath{Path: p, Error: e.Error()})
		}
	}
	if err := renderDu(streams.Out, rep, g.Output, o.exactBytes); err != nil {
		return err
	}

	var problems []string
	hints := map[string]bool{}
	for _, p := range rep.Paths {
		if p.Totals == nil {
			continue
		}
		if p.SkippedMountCount > 0 {
			fmt.Fprintf(streams.ErrOut, "imagefs: du: skipped %d mount point(s) under %s, not counted (pass --cross-filesystems to include them): %s\n",
				p.SkippedMountCount, p.Path, strings.Join(p.SkippedMounts, ", "))
		}
		if p.ErrorCount == 0 {
			continue
		}
		s := fmt.Sprintf("%d entr%s under %s could not be read; the totals count everything else",
			p.ErrorCount, duPlural(p.ErrorCount, "y", "ies"), p.Path)
		fmt.Fprintf(streams.ErrOut, "imagefs: du: %s:\n", s)
		for i, e := range p.Errors {
			if i == duErrorsShown {
				fmt.Fprintf(streams.ErrOut, "  … and %d more (-o json lists up to %d)\n", p.ErrorCount-duErrorsShown, walk.DefaultMaxErrors)
				break
			}
			fmt.Fprintf(streams.ErrOut, "  %s %s: %v\n", e.Op, e.Path, duErrText(e.Err))
		}
		problems = append(problems, s)
		for _, e := range p.Errors {
			hints[duHint(e.Err)] = true
		}
	}
	if len(rootErrs) > 0 {
		return duRootError(paths, rootErrs)
	}
	if interrupted != nil {
		return fmt.Errorf("du interrupted (%v); the totals printed are partial", interrupted)
	}
	if len(problems) > 0 {
		for _, h := range []string{duHintRoot, duHintVanished, duHintLoop} {
			if hints[h] {
				fmt.Fprintf(streams.ErrOut, "imagefs: du: %s\n", h)
			}
		}
		return partialError{problems}
	}
	return nil
}

const (
	duHintRoot     = "permission denied: run imagefs as root to read every entry"
	duHintVanished = "entries removed while du ran are expected on a live node (containers writing, image GC): run it again for a stable number"
	duHintLoop     = "symlink loops cannot be followed: the links are counted as themselves"
)

// duHint says what to do about an entry error, or "".
func duHint(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission) && os.Geteuid() != 0:
		return duHintRoot
	case errors.Is(err, os.ErrNotExist):
		return duHintVanished
	case errors.Is(err, syscall.ELOOP):
		return duHintLoop
	}
	return ""
}

// duRootError is one sentence naming each PATH that could not be read and
// what to do.
func duRootError(paths []string, errs map[string]error) error {
	var parts []string
	hint := "check the path"
	for _, p := range paths {
		e, ok := errs[p]
		if !ok {
			continue
		}
		delete(errs, p) // a PATH given twice is named once
		parts = append(parts, fmt.Sprintf("%s (%s)", p, duErrText(e)))
		switch {
		case errors.Is(e, os.ErrPermission):
			hint = "run imagefs as root"
		case errors.Is(e, os.ErrNotExist) && hint == "check the path":
			hint = "pass an existing directory, e.g. /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
		}
	}
	return fmt.Errorf("cannot read %s: %s", strings.Join(parts, ", "), hint)
}

// errText is the cause of a wrapped error, e.g. "permission denied".
func duErrText(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

func duUnjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, duUnjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func duPlural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func renderDu(w io.Writer, r duReport, format string, exact bool) error {
	switch format {
	case output.FormatJSON:
		return output.JSON(w, r)
	case output.FormatYAML:
		return output.YAML(w, r)
	}
	size := func(n uint64) string {
		if exact {
			return strconv.FormatUint(n, 10)
		}
		return output.HumanBytes(n)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ALLOCATED\tAPPARENT\tINODES\tDIRS\tFILES\tSYMLINKS\tWHITEOUTS\tERRORS\t\tPATH")
	row := func(path string, t *walk.Totals) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\t%s\n", size(t.AllocatedBytes), size(t.ApparentBytes),
			t.Inodes, t.Dirs, t.Files, t.Symlinks, t.Whiteouts+t.WhiteoutFiles, t.ErrorCount, path)
	}
	n := 0
	for _, p := range r.Paths {
		if p.Totals == nil {
			fmt.Fprintf(tw, "-\t-\t-\t-\t-\t-\t-\t-\t\t%s\n", p.Path)
			continue
		}
		row(p.Path, p.Totals)
		n++
	}
	if n > 1 {
		row("TOTAL", &r.Total)
	}
	return tw.Flush()
}

// duProgress draws one self-erasing status line on a terminal.
type duProgress struct {
	mu    sync.Mutex
	w     io.Writer
	drawn bool
	last  walk.Progress
	rate  float64
	at    time.Duration
}

func (p *duProgress) draw(pr walk.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dt := (pr.Elapsed - p.at).Seconds(); dt > 0 {
		r := float64(pr.Entries-p.last.Entries) / dt
		if p.rate == 0 {
			p.rate = r
		} else {
			p.rate = 0.7*p.rate + 0.3*r
		}
	}
	p.last, p.at = pr, pr.Elapsed
	line := fmt.Sprintf("du: %d entries (%.0f/s), %s allocated, %d dirs", pr.Entries, p.rate, output.HumanBytes(pr.AllocatedBytes), pr.Dirs)
	if pr.Errors > 0 {
		line += fmt.Sprintf(", %d errors", pr.Errors)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *duProgress) erase() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
