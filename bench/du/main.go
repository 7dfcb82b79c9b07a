//go:build linux

// Command du benchmarks `imagefs du` against its peers on a generated
// containerd snapshotter tree:
//
//	go run ./bench/du --entries 1000000
//
// It generates the tree once (cached in --tree, default
// /var/tmp/imagefs-bench-tree-<entries>), builds imagefs and the continuity
// helper, warms the page cache, then runs every peer --runs times in the
// same invocation, interleaved (round r runs each peer once, in a rotated
// order), and prints a markdown table: median wall time, its ratio to
// imagefs's, peak RSS (wait4 rusage ru_maxrss), and the totals each peer
// reports. Totals that must be identical (allocated bytes and inodes,
// wherever the peers' rules coincide: one walk, no mounts, no unreadable
// entries, symlinks not followed) are checked; a mismatch exits 1.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imagefs/imagefs/pkg/analyze/walk/gentree"
)

type totals struct {
	allocated, apparent, inodes *uint64
}

type peer struct {
	name  string
	args  []string
	parse func(out []byte) (totals, error)
	// what this peer's totals are compared on
	checkAllocated, checkApparent, checkInodes bool
	// gduDirs: gdu counts every directory as 4096 bytes whatever its
	// st_blocks (Dir.UpdateStats starts each directory at 4096), so its
	// allocated total is compared with imagefs's corrected for that.
	gduDirs bool
}

type sample struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	maxRSS int64         // KiB
	t      totals
}

func main() {
	var (
		entries   = flag.Int("entries", 1000000, "entries in the generated tree (100000, 1000000, …)")
		seed      = flag.Uint64("seed", 1, "generator seed")
		runs      = flag.Int("runs", 5, "timed runs of each peer")
		tree      = flag.String("tree", "", "where the tree is cached (default /var/tmp/imagefs-bench-tree-<entries>)")
		regen     = flag.Bool("regenerate", false, "remove and regenerate a cached tree that does not match --entries/--seed")
		sweep     = flag.String("workers-sweep", "", "also run imagefs du --workers N for each N in this comma list")
		syscalls  = flag.Bool("syscalls", false, "count syscalls of imagefs du and du -s with strace -c -f (one extra untimed run each)")
		markdown  = flag.String("o", "", "also write the report to this file")
		skipPeers = flag.String("skip", "", "comma list of peers to leave out (du-B1, du-b, du-inodes, gdu, continuity)")
	)
	flag.Parse()
	if *tree == "" {
		*tree = fmt.Sprintf("/var/tmp/imagefs-bench-tree-%d", *entries)
	}
	if err := run(*entries, *seed, *runs, *tree, *regen, *sweep, *syscalls, *markdown, *skipPeers); err != nil {
		fmt.Fprintf(os.Stderr, "bench/du: %v\n", err)
		os.Exit(1)
	}
}

func run(entries int, seed uint64, runs int, tree string, regen bool, sweep string, withSyscalls bool, markdown, skip string) error {
	opts := gentree.Options{Entries: entries, Seed: seed}
	if err := ensureTree(tree, opts, regen); err != nil {
		return err
	}
	root := filepath.Join(tree, "snapshots")

	bin, err := os.MkdirTemp("", "imagefs-bench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	imagefs, helper, buildNote, err := build(bin)
	if err != nil {
		return err
	}

	peers := []peer{
		{name: "imagefs du", args: []string{imagefs, "du", "--bytes", "-o", "json", root}, parse: parseImagefs,
			checkAllocated: true, checkApparent: true, checkInodes: true},
	}
	for _, w := range strings.Split(sweep, ",") {
		if w = strings.TrimSpace(w); w != "" {
			peers = append(peers, peer{name: "imagefs du --workers " + w, args: []string{imagefs, "du", "--workers", w, "--bytes", "-o", "json", root}, parse: parseImagefs,
				checkAllocated: true, checkApparent: true, checkInodes: true})
		}
	}
	all := []peer{
		{name: "du-B1", args: []string{"du", "-s", "-B1", root}, parse: firstField(func(t *totals, n uint64) { t.allocated = &n }), checkAllocated: true},
		{name: "du-b", args: []string{"du", "-sb", root}, parse: firstField(func(t *totals, n uint64) { t.apparent = &n }), checkApparent: true},
		{name: "du-inodes", args: []string{"du", "-s", "--inodes", root}, parse: firstField(func(t *totals, n uint64) { t.inodes = &n }), checkInodes: true},
		{name: "gdu", args: []string{"gdu", "--non-interactive", "--no-progress", "--summarize", "--no-prefix", root}, parse: firstField(func(t *totals, n uint64) { t.allocated = &n }), gduDirs: true},
		{name: "continuity", args: []string{helper, root}, parse: parseContinuity, checkAllocated: true, checkInodes: true},
	}
	skipped := map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		skipped[strings.TrimSpace(s)] = true
	}
	for _, p := range all {
		if skipped[p.name] {
			continue
		}
		if _, err := exec.LookPath(p.args[0]); err != nil {
			fmt.Fprintf(os.Stderr, "bench/du: %s not installed, left out\n", p.args[0])
			continue
		}
		peers = append(peers, p)
	}

	load0 := loadavg()
	fmt.Fprintf(os.Stderr, "bench/du: warming the cache (%s)\n", root)
	for _, p := range peers[:1] {
		if _, err := runOnce(p); err != nil {
			return err
		}
	}
	if _, err := runOnce(peer{name: "du", args: []string{"du", "-s", root}, parse: func([]byte) (totals, error) { return totals{}, nil }}); err != nil {
		return err
	}

	results := make([][]sample, len(peers))
	for r := range runs {
		for i := range peers {
			j := (i + r) % len(peers)
			s, err := runOnce(peers[j])
			if err != nil {
				return err
			}
			results[j] = append(results[j], s)
		}
		fmt.Fprintf(os.Stderr, "bench/du: round %d/%d done\n", r+1, runs)
	}
	load1 := loadavg()

	var sys string
	if withSyscalls {
		sys = countSyscalls([]peer{peers[0], {name: "du -s -B1", args: []string{"du", "-s", "-B1", root}}})
	}

	var b strings.Builder
	m, _ := gentree.ReadManifest(tree)
	report(&b, tree, m, peers, results, runs, load0, load1, buildNote)
	if sys != "" {
		b.WriteString("\n" + sys)
	}
	dirs, err := dirBlocks(root)
	if err != nil {
		return err
	}
	mismatch := check(&b, peers, results, dirs)
	fmt.Print(b.String())
	if markdown != "" {
		if err := os.WriteFile(markdown, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if mismatch {
		return errors.New("peers disagree on totals where their rules coincide (see above)")
	}
	return nil
}

// ensureTree reuses a cached tree whose manifest matches, or generates it.
func ensureTree(tree string, o gentree.Options, regen bool) error {
	m, err := gentree.ReadManifest(tree)
	if err == nil && m.Matches(o) {
		fmt.Fprintf(os.Stderr, "bench/du: using cached tree %s (%d names)\n", tree, m.Counts.Names)
		return nil
	}
	if ents, _ := os.ReadDir(tree); len(ents) > 0 {
		_, errSnap := os.Stat(filepath.Join(tree, "snapshots"))
		if !regen || errSnap != nil {
			return fmt.Errorf("%s exists but is not a tree for --entries %d --seed %d: remove it, pass --regenerate (only for a directory made by gentree) or another --tree", tree, o.Entries, o.Seed)
		}
		fmt.Fprintf(os.Stderr, "bench/du: removing stale tree %s\n", tree)
		if err := os.RemoveAll(tree); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "bench/du: generating %d entries in %s (once; cached)\n", o.Entries, tree)
	start := time.Now()
	if _, err := gentree.Generate(tree, o); err != nil {
		return fmt.Errorf("generate %s: %w", tree, err)
	}
	fmt.Fprintf(os.Stderr, "bench/du: generated in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// build compiles imagefs and the continuity helper from this module. If
// root.go does not register the du command yet, imagefs is built with a
// -overlay copy of root.go that does (the note says so in the report).
func build(dir string) (imagefs, helper, note string, err error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := filepath.Dir(strings.TrimSpace(string(gomod)))
	imagefs = filepath.Join(dir, "imagefs")
	helper = filepath.Join(dir, "continuity-du")
	goBuild := func(out, pkg string, extra ...string) error {
		args := append([]string{"build"}, extra...)
		args = append(args, "-o", out, pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return nil
	}
	if err := goBuild(helper, "./bench/du/continuity-du"); err != nil {
		return "", "", "", err
	}
	if err := goBuild(imagefs, "./cmd/imagefs"); err != nil {
		return "", "", "", err
	}
	if exec.Command(imagefs, "du", "--help").Run() == nil {
		return imagefs, helper, "", nil
	}
	rootGo := filepath.Join(mod, "internal", "cli", "root.go")
	src, err := os.ReadFile(rootGo)
	if err != nil {
		return "", "", "", err
	}
	const anchor = "\troot.AddCommand(newStatsCommand(g, streams))\n"
	if !bytes.Contains(src, []byte(anchor)) {
		return "", "", "", fmt.Errorf("imagefs has no du command and %s has no line %q to add it after", rootGo, strings.TrimSpace(anchor))
	}
	patched := bytes.Replace(src, []byte(anchor), []byte(anchor+"\troot.AddCommand(newDuCommand(g, streams))\n"), 1)
	pf := filepath.Join(dir, "root.go")
	if err := os.WriteFile(pf, patched, 0o644); err != nil {
		return "", "", "", err
	}
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {rootGo: pf}})
	ovf := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovf, ov, 0o644); err != nil {
		return "", "", "", err
	}
	if err := goBuild(imagefs, "./cmd/imagefs", "-overlay", ovf); err != nil {
		return "", "", "", err
	}
	return imagefs, helper, "imagefs was built with `-overlay` adding `root.AddCommand(newDuCommand(g, streams))` to root.go, which does not register du yet.", nil
}

func runOnce(p peer) (sample, error) {
	cmd := exec.Command(p.args[0], p.args[1:]...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, fmt.Errorf("%s: %w", p.name, err)
	}
	err := cmd.Wait()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s (%s): %w\n%s", p.name, strings.Join(p.args, " "), err, errOut.Bytes())
	}
	s := sample{wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.maxRSS = ru.Maxrss
	}
	s.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	s.t, err = p.parse(out.Bytes())
	if err != nil {
		return s, fmt.Errorf("%s output: %w\n%s", p.name, err, out.Bytes())
	}
	return s, nil
}

func parseImagefs(out []byte) (totals, error) {
	var r struct {
		Total struct {
			AllocatedBytes uint64 `json:"allocatedBytes"`
			ApparentBytes  uint64 `json:"apparentBytes"`
			Inodes         uint64 `json:"inodes"`
			ErrorCount     uint64 `json:"errorCount"`
		} `json:"total"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return totals{}, err
	}
	if r.Total.ErrorCount != 0 {
		return totals{}, fmt.Errorf("%d unreadable entries", r.Total.ErrorCount)
	}
	return totals{&r.Total.AllocatedBytes, &r.Total.ApparentBytes, &r.Total.Inodes}, nil
}

func parseContinuity(out []byte) (totals, error) {
	var r struct{ Size, Inodes uint64 }
	if err := json.Unmarshal(out, &r); err != nil {
		return totals{}, err
	}
	return totals{allocated: &r.Size, inodes: &r.Inodes}, nil
}

func firstField(set func(*totals, uint64)) func([]byte) (totals, error) {
	return func(out []byte) (totals, error) {
		f := strings.Fields(string(out))
		if len(f) == 0 {
			return totals{}, errors.New("no output")
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return totals{}, err
		}
		var t totals
		set(&t, n)
		return t, nil
	}
}

func median(s []sample) (med, lo, hi, cpu time.Duration, rss int64) {
	w := make([]time.Duration, len(s))
	c := make([]time.Duration, len(s))
	for i, x := range s {
		w[i], c[i] = x.wall, x.cpu
		rss = max(rss, x.maxRSS)
	}
	mid := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		if len(d)%2 == 0 {
			return (d[len(d)/2-1] + d[len(d)/2]) / 2
		}
		return d[len(d)/2]
	}
	med, cpu = mid(w), mid(c)
	return med, w[0], w[len(w)-1], cpu, rss
}

func report(w io.Writer, tree string, m gentree.Manifest, peers []peer, res [][]sample, runs int, load0, load1, note string) {
	var uts unix.Utsname
	unix.Uname(&uts)
	var st unix.Statfs_t
	unix.Statfs(tree, &st)
	fmt.Fprintf(w, "Tree: %s — %d names in %d snapshots (seed %d): %d dirs, %d files (%d sparse), %d symlinks, %d hard links, %d whiteouts, %d .wh. files, %d opaque dirs, %d FIFOs\n\n",
		tree, m.Counts.Names, m.Options.Layers, m.Options.Seed, m.Counts.Dirs, m.Counts.Files, m.Counts.SparseFiles, m.Counts.Symlinks, m.Counts.HardLinks, m.Counts.Whiteouts, m.Counts.WhiteoutFiles, m.Counts.OpaqueDirs, m.Counts.FIFOs)
	fmt.Fprintf(w, "Machine: %d CPUs (%s), kernel %s, tree on %s (f_type %#x), %s; load average %s before, %s after; warm page cache; %d runs per peer, interleaved.\n\n",
		runtime.NumCPU(), cpuModel(), unix.ByteSliceToString(uts.Release[:]), fsName(st.Type), st.Type, runtime.Version(), load0, load1, runs)
	if note != "" {
		fmt.Fprintf(w, "Note: %s\n\n", note)
	}
	base, _, _, _, _ := median(res[0])
	fmt.Fprintln(w, "| peer | command | median wall | min – max | time / imagefs | median CPU (user+sys) | peak RSS | allocated bytes | apparent bytes | inodes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, p := range peers {
		med, lo, hi, cpu, rss := median(res[i])
		t := res[i][len(res[i])-1].t
		args := slices.Clone(p.args)
		args[0] = filepath.Base(args[0])
		fmt.Fprintf(w, "| %s | `%s` | %.3f s | %.3f – %.3f s | %.2f× | %.2f s | %.1f MiB | %s | %s | %s |\n",
			p.name, strings.Join(args, " "), med.Seconds(), lo.Seconds(), hi.Seconds(),
			med.Seconds()/base.Seconds(), cpu.Seconds(), float64(rss)/1024, num(t.allocated), num(t.apparent), num(t.inodes))
	}
}

// dirStats are the directories of a tree: how many, and Σ st_blocks*512.
type dirStats struct{ n, bytes uint64 }

// dirBlocks sums the directories' allocated bytes with find(1), untimed,
// to check gdu's rule for directories.
func dirBlocks(root string) (dirStats, error) {
	out, err := exec.Command("find", root, "-type", "d", "-printf", "%b\n").Output()
	if err != nil {
		return dirStats{}, fmt.Errorf("find %s -type d: %w", root, err)
	}
	var d dirStats
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return d, err
		}
		d.n++
		d.bytes += n * 512
	}
	return d, nil
}

// check compares the totals every peer reports on the quantities its rules
// share with imagefs, over every run, and writes the verdict.
func check(w io.Writer, peers []peer, res [][]sample, dirs dirStats) bool {
	ref := res[0][0].t
	gduWant := *ref.allocated - dirs.bytes + 4096*dirs.n
	bad := false
	for i, p := range peers {
		for _, s := range res[i] {
			if p.gduDirs && (s.t.allocated == nil || *s.t.allocated != gduWant) {
				fmt.Fprintf(w, "\nMISMATCH: gdu reports %s bytes, want imagefs du's %s − %d bytes of directories + 4096 × %d directories = %d\n",
					num(s.t.allocated), num(ref.allocated), dirs.bytes, dirs.n, gduWant)
				bad = true
			}
			for _, c := range []struct {
				on        bool
				what      string
				got, want *uint64
			}{
				{p.checkAllocated, "allocated bytes", s.t.allocated, ref.allocated},
				{p.checkApparent, "apparent bytes", s.t.apparent, ref.apparent},
				{p.checkInodes, "inodes", s.t.inodes, ref.inodes},
			} {
				if c.on && (c.got == nil || *c.got != *c.want) {
					fmt.Fprintf(w, "\nMISMATCH: %s reports %s %s, imagefs du %s\n", p.name, c.what, num(c.got), num(c.want))
					bad = true
				}
			}
		}
	}
	if !bad {
		fmt.Fprintf(w, "\nTotals identical in every run: allocated bytes (imagefs du = du -B1 = continuity), apparent bytes (imagefs du = du -b), inodes (imagefs du = du --inodes = continuity). "+
			"gdu counts each directory as 4096 bytes instead of its st_blocks (gdu's Dir.UpdateStats): its total equals imagefs du's − %d bytes of directories + 4096 × %d directories = %d in every run.\n",
			dirs.bytes, dirs.n, gduWant)
	}
	return bad
}

// countSyscalls runs each peer once under strace -c -f and returns the
// per-syscall counts.
func countSyscalls(peers []peer) string {
	if _, err := exec.LookPath("strace"); err != nil {
		return "strace not installed: syscalls not counted (apt-get install strace)\n"
	}
	var b strings.Builder
	b.WriteString("Syscalls (one run each under `strace -c -f`; strace slows every call, so these runs are not timed):\n\n")
	for _, p := range peers {
		f, err := os.CreateTemp("", "strace-")
		if err != nil {
			return err.Error()
		}
		f.Close()
		defer os.Remove(f.Name())
		cmd := exec.Command("strace", append([]string{"-c", "-f", "-o", f.Name()}, p.args...)...)
		cmd.Stdout = io.Discard
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(&b, "%s: strace: %v\n", p.name, err)
			continue
		}
		out, _ := os.ReadFile(f.Name())
		fmt.Fprintf(&b, "%s:\n\n```\n%s```\n\n", p.name, filterStrace(string(out)))
	}
	return b.String()
}

// filterStrace keeps the header, the total and the filesystem syscalls
// (not the Go runtime's futex/nanosleep, which strace itself inflates).
func filterStrace(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		name := f[len(f)-1]
		switch name {
		case "syscall", "statx", "newfstatat", "getdents64", "openat", "close", "fcntl", "flistxattr", "fgetxattr", "fstat", "total":
			b.WriteString(l + "\n")
		default:
			if strings.HasPrefix(l, "---") {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}

func num(p *uint64) string {
	if p == nil {
		return "–"
	}
	return strconv.FormatUint(*p, 10)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func fsName(t int64) string {
	switch uint32(t) {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return "unknown fs"
}
