// Package gentree generates a synthetic containerd overlayfs snapshotter
// tree for tests and benchmarks of the disk-usage walker:
//
//	<out>/snapshots/<N>/fs/...   the layer's upper dir, what containerd measures
//	<out>/snapshots/<N>/work/    overlayfs's work dir (empty, or a shared whiteout)
//	<out>/gentree.json           the Manifest, written last
//
// Layers have skewed sizes, deep and wide directories, mostly small files,
// a few large sparse files, relative, absolute and dangling symlinks, a
// symlink loop and a directory loop, hard links within and across
// directories of a layer, overlay whiteouts (character devices 0:0, some of
// them hard links of one whiteout in work/, as overlayfs ≥ 5.8 makes them),
// .wh.* files and opaque directories (trusted.overlay.opaque=y).
//
// The tree is a function of Options alone (and of whether it runs as root,
// see Manifest.Unprivileged): names, types, sizes, link targets and
// written bytes are the same for a seed, whatever Workers is.
package gentree

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// ManifestName is the file Generate writes last in out.
const ManifestName = "gentree.json"

// Version changes whenever the same Options would generate another tree.
const Version = 1

// Options describe a tree.
type Options struct {
	// Entries is the number of names created under snapshots/*/fs.
	Entries int    `json:"entries"`
	Seed    uint64 `json:"seed"`
	// Layers is the number of snapshots; 0 means 40.
	Layers int `json:"layers"`
	// LargeFiles is the number of large sparse files; 0 means 3, negative
	// none.
	LargeFiles int `json:"largeFiles"`
	// Workers generate layers in parallel; 0 means GOMAXPROCS×2. It does not
	// change the tree.
	Workers int `json:"-"`
}

// Manifest records how a tree was made and what is in it.
type Manifest struct {
	Version int     `json:"version"`
	Options Options `json:"options"`
	// Unprivileged trees (not generated as root) have .wh.* files instead
	// of character-device whiteouts and user.overlay.opaque instead of
	// trusted.overlay.opaque.
	Unprivileged bool   `json:"unprivileged"`
	Counts       Counts `json:"counts"`
}

// Counts are names created, by kind.
type Counts struct {
	Names         int `json:"names"`
	Dirs          int `json:"dirs"`
	Files         int `json:"files"`
	SparseFiles   int `json:"sparseFiles"`
	Symlinks      int `json:"symlinks"`
	HardLinks     int `json:"hardLinks"` // extra names of an existing file
	Whiteouts     int `json:"whiteouts"` // character devices 0:0 (names)
	WhiteoutFiles int `json:"whiteoutFiles"`
	OpaqueDirs    int `json:"opaqueDirs"`
	FIFOs         int `json:"fifos"`
	// Bytes is the sum of the sizes written (apparent, sparse files included).
	Bytes int64 `json:"bytes"`
}

func (c *Counts) add(o Counts) {
	c.Names += o.Names
	c.Dirs += o.Dirs
	c.Files += o.Files
	c.SparseFiles += o.SparseFiles
	c.Symlinks += o.Symlinks
	c.HardLinks += o.HardLinks
	c.Whiteouts += o.Whiteouts
	c.WhiteoutFiles += o.WhiteoutFiles
	c.OpaqueDirs += o.OpaqueDirs
	c.FIFOs += o.FIFOs
	c.Bytes += o.Bytes
}

func (o Options) withDefaults() Options {
	if o.Layers <= 0 {
		o.Layers = 40
	}
	if o.LargeFiles < 0 {
		o.LargeFiles = 0
	} else if o.LargeFiles == 0 {
		o.LargeFiles = 3
	}
	return o
}

// ReadManifest reads the manifest of a generated tree.
func ReadManifest(out string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(out, ManifestName))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", filepath.Join(out, ManifestName), err)
	}
	return m, nil
}

// Matches reports whether m describes the tree Generate(out, o) would make.
func (m Manifest) Matches(o Options) bool {
	o = o.withDefaults()
	return m.Version == Version && m.Options == Options{Entries: o.Entries, Seed: o.Seed, Layers: o.Layers, LargeFiles: o.LargeFiles}
}

// ErrNotEmpty is returned when out exists and is not an empty directory.
var ErrNotEmpty = errors.New("output directory exists and is not empty")

// Generate creates the tree in out, which must not exist or be empty.
func Generate(out string, o Options) (Manifest, error) {
	o = o.withDefaults()
	m := Manifest{Version: Version, Options: o, Unprivileged: os.Geteuid() != 0}
	m.Options.Workers = 0
	if o.Entries < o.Layers {
		return m, fmt.Errorf("--entries %d: need at least one per layer (%d layers)", o.Entries, o.Layers)
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return m, fmt.Errorf("%s: %w", out, ErrNotEmpty)
	}
	if err := os.MkdirAll(filepath.Join(out, "snapshots"), 0o700); err != nil {
		return m, err
	}
	budgets := layerBudgets(o)
	large := largeFileLayers(o)
	workers := o.Workers
	if workers <= 0 {
		workers = 2 * runtimeProcs()
	}
	var (
		mu     sync.Mutex
		counts Counts
		errs   []error
		wg     sync.WaitGroup
		next   = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				g := newLayer(out, o, i, budgets[i], large[i], m.Unprivileged)
				err := g.generate()
				mu.Lock()
				counts.add(g.c)
				if err != nil {
					errs = append(errs, fmt.Errorf("layer %d: %w", i+1, err))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range budgets {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return m, err
	}
	m.Counts = counts
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	return m, os.WriteFile(filepath.Join(out, ManifestName), append(b, '\n'), 0o644)
}

// layerBudgets splits Entries over the layers with a skew like real images:
// a few big base layers, many small ones.
func layerBudgets(o Options) []int {
	r := rand.New(rand.NewPCG(o.Seed, 0x6c61796572)) // "layer"
	w := make([]float64, o.Layers)
	sum := 0.0
	for i := range w {
		// Pareto-ish: most layers small, some 10-50× bigger.
		w[i] = 1 / (0.02 + r.Float64()*r.Float64())
		sum += w[i]
	}
	b := make([]int, o.Layers)
	left := o.Entries - o.Layers // everyone gets at least one
	given := 0
	for i := range b {
		b[i] = 1 + int(float64(left)*w[i]/sum)
		given += b[i]
	}
	b[0] += o.Entries - given // rounding goes to the base layer
	return b
}

// largeFileLayers spreads LargeFiles over the layers.
func largeFileLayers(o Options) []int {
	n := make([]int, o.Layers)
	for i := range o.LargeFiles {
		n[(i*7+1)%o.Layers]++
	}
	return n
}

// names gives entries short, plausible, unique names.
var words = []string{
	"lib", "bin", "share", "include", "python3", "site-packages", "node_modules",
	"locale", "man", "doc", "etc", "cache", "x86_64-linux-gnu", "perl5", "go",
	"src", "pkg", "test", "data", "conf", "plugins", "modules", "static", "i18n",
}

var exts = []string{"", ".so", ".py", ".pyc", ".js", ".h", ".txt", ".json", ".gz", ".mo", ".conf", ".1"}

func name(r *rand.Rand, n int, ext bool) string {
	s := words[r.IntN(len(words))] + "-" + strconv.FormatInt(int64(n), 36)
	if ext {
		s += exts[r.IntN(len(exts))]
	}
	return s
}
