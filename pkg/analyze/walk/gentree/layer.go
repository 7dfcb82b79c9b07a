package gentree

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// layer generates one snapshot from its own random stream, so that layers
// can be generated in any order and in parallel.
type layer struct {
	r            *rand.Rand
	idx          int
	fs, work     string
	budget       int
	large        int
	unprivileged bool
	c            Counts

	dirs  []string // relative to fs; "" is fs itself
	files []string // regular files, targets for hard links and symlinks
	cur   int      // index in dirs where files are being added
	n     int      // name counter
}

var (
	contentOnce sync.Once
	content     []byte // the bytes files are written from, the same for every seed
)

const contentSize = 1 << 20

func newLayer(out string, o Options, idx, budget, large int, unprivileged bool) *layer {
	contentOnce.Do(func() {
		r := rand.New(rand.NewPCG(1, 2))
		content = make([]byte, contentSize)
		for i := range content {
			content[i] = byte(r.Uint32())
		}
	})
	snap := filepath.Join(out, "snapshots", strconv.Itoa(idx+1))
	return &layer{
		r:            rand.New(rand.NewPCG(o.Seed, uint64(idx)+1)),
		idx:          idx,
		fs:           filepath.Join(snap, "fs"),
		work:         filepath.Join(snap, "work"),
		budget:       budget,
		large:        large,
		unprivileged: unprivileged,
		dirs:         []string{""},
	}
}

func (l *layer) abs(rel string) string { return filepath.Join(l.fs, rel) }

func (l *layer) newName(ext bool) string {
	l.n++
	return name(l.r, l.n, ext)
}

func (l *layer) left() bool { return l.c.Names < l.budget }

func (l *layer) generate() error {
	if err := os.MkdirAll(l.fs, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(l.work, 0o700); err != nil {
		return err
	}
	if err := l.specials(); err != nil {
		return err
	}
	burst := 0 // files left to put in one big directory (locale, zoneinfo, …)
	for l.left() {
		if burst == 0 && l.r.Float64() < 0.0001 {
			burst = 200 + l.r.IntN(2000)
			l.cur = l.r.IntN(len(l.dirs))
		}
		if burst > 0 {
			burst--
			parent := l.dirs[l.cur]
			var err error
			switch p := l.r.Float64(); {
			case p < 0.9 || len(l.files) == 0:
				err = l.file(parent)
			case p < 0.95:
				err = l.symlink(parent)
			default:
				err = l.hardlink(parent)
			}
			if err != nil {
				return err
			}
			continue
		}
		if l.r.Float64() < 0.01 {
			l.cur = l.r.IntN(len(l.dirs))
		}
		parent := l.dirs[l.cur]
		if l.r.Float64() >= 0.8 {
			parent = l.dirs[l.r.IntN(len(l.dirs))]
		}
		var err error
		switch p := l.r.Float64(); {
		case p < 0.10:
			err = l.mkdir(parent, l.idx > 0 && l.r.Float64() < 0.03)
		case p < 0.88:
			err = l.file(parent)
		case p < 0.93:
			err = l.symlink(parent)
		case p < 0.965 && len(l.files) > 0:
			err = l.hardlink(parent)
		case p < 0.985 && l.idx > 0:
			err = l.whiteout(parent)
		case p < 0.987:
			err = l.whiteoutFile(parent)
		case p < 0.99:
			err = l.fifo(parent)
		default:
			err = l.file(parent)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// specials adds, budget permitting, the entries walkers trip on.
func (l *layer) specials() error {
	if l.idx%10 == 0 && l.budget >= 20 {
		// A symlink loop, a self loop and a directory loop.
		for _, s := range [][2]string{{"loop-b", "loop-a"}, {"loop-a", "loop-b"}, {"self", "self"}} {
			if err := os.Symlink(s[0], l.abs(s[1])); err != nil {
				return err
			}
			l.c.Names++
			l.c.Symlinks++
		}
		if err := os.Mkdir(l.abs("cycle"), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("..", l.abs("cycle/up")); err != nil {
			return err
		}
		l.dirs = append(l.dirs, "cycle")
		l.c.Names += 2
		l.c.Dirs++
		l.c.Symlinks++
	}
	for j := range l.large {
		if err := l.sparse(fmt.Sprintf("blob-%d.img", j), int64(1<<30)<<(j%3)); err != nil {
			return err
		}
	}
	if l.idx%7 == 3 && !l.unprivileged && l.budget >= 10 {
		// overlayfs ≥ 5.8 makes whiteouts as hard links of one whiteout
		// kept in its work dir.
		shared := filepath.Join(l.work, "#wh")
		if err := mknodWhiteout(shared); err != nil {
			return err
		}
		for range 3 {
			if err := os.Link(shared, l.abs(".deleted-"+l.newName(false))); err != nil {
				return err
			}
			l.c.Names++
			l.c.Whiteouts++
		}
	}
	if l.budget >= 200 {
		// A deep chain, like node_modules or a Java package tree.
		depth := 10 + l.r.IntN(30)
		p := ""
		for range depth {
			p = filepath.Join(p, l.newName(false))
			if err := os.Mkdir(l.abs(p), 0o755); err != nil {
				return err
			}
			l.dirs = append(l.dirs, p)
			l.c.Names++
			l.c.Dirs++
		}
	}
	return nil
}

func (l *layer) mkdir(parent string, opaque bool) error {
	p := filepath.Join(parent, l.newName(false))
	if err := os.Mkdir(l.abs(p), 0o755); err != nil {
		return err
	}
	l.dirs = append(l.dirs, p)
	l.c.Names++
	l.c.Dirs++
	if l.r.Float64() < 0.2 {
		l.cur = len(l.dirs) - 1
	}
	if opaque {
		if err := setOpaque(l.abs(p), l.unprivileged); err != nil {
			return fmt.Errorf("opaque dir %s: %w", l.abs(p), err)
		}
		l.c.OpaqueDirs++
	}
	return nil
}

// fileSize draws a size: mostly empty or small, rarely up to 1 MiB.
func (l *layer) fileSize() int {
	switch p := l.r.Float64(); {
	case p < 0.35:
		return 0
	case p < 0.85:
		return 1 + l.r.IntN(4096)
	case p < 0.98:
		return 4097 + l.r.IntN(12<<10)
	case p < 0.999:
		return 16<<10 + l.r.IntN(112<<10)
	default:
		return 128<<10 + l.r.IntN(896<<10)
	}
}

func (l *layer) file(parent string) error {
	p := filepath.Join(parent, l.newName(true))
	size := l.fileSize()
	mode := uint32(0o644)
	if l.r.Float64() < 0.1 {
		mode = 0o755
	}
	if err := writeFile(l.abs(p), content[:size], mode); err != nil {
		return err
	}
	l.files = append(l.files, p)
	l.c.Names++
	l.c.Files++
	l.c.Bytes += int64(size)
	return nil
}

func (l *layer) sparse(n string, size int64) error {
	if err := writeSparse(l.abs(n), size, content); err != nil {
		return err
	}
	l.files = append(l.files, n)
	l.c.Names++
	l.c.Files++
	l.c.SparseFiles++
	l.c.Bytes += size
	return nil
}

func (l *layer) symlink(parent string) error {
	var target string
	switch p := l.r.Float64(); {
	case p < 0.4 && len(l.files) > 0:
		target = rel(parent, l.files[l.r.IntN(len(l.files))])
	case p < 0.6:
		target = rel(parent, l.dirs[l.r.IntN(len(l.dirs))])
	case p < 0.85:
		// Absolute, as in images; absent on the host.
		target = "/opt/gentree-absent/" + l.newName(true)
	default:
		target = "missing-" + l.newName(true)
	}
	if err := os.Symlink(target, l.abs(filepath.Join(parent, l.newName(true)))); err != nil {
		return err
	}
	l.c.Names++
	l.c.Symlinks++
	return nil
}

// rel is the relative link target from dir to target (both relative to fs).
func rel(dir, target string) string {
	r, err := filepath.Rel(filepath.Join("/", dir), filepath.Join("/", target))
	if err != nil || r == "" {
		return "."
	}
	return r
}

func (l *layer) hardlink(parent string) error {
	target := l.files[l.r.IntN(len(l.files))]
	if err := os.Link(l.abs(target), l.abs(filepath.Join(parent, l.newName(true)))); err != nil {
		return err
	}
	l.c.Names++
	l.c.HardLinks++
	return nil
}

func (l *layer) whiteout(parent string) error {
	if l.unprivileged {
		return l.whiteoutFile(parent)
	}
	if err := mknodWhiteout(l.abs(filepath.Join(parent, l.newName(true)))); err != nil {
		return err
	}
	l.c.Names++
	l.c.Whiteouts++
	return nil
}

func (l *layer) whiteoutFile(parent string) error {
	n := ".wh." + l.newName(true)
	if l.r.Float64() < 0.2 && !strings.Contains(parent, ".wh.") {
		n = ".wh..wh..opq"
		if _, err := os.Lstat(l.abs(filepath.Join(parent, n))); err == nil {
			n = ".wh." + l.newName(true)
		}
	}
	if err := writeFile(l.abs(filepath.Join(parent, n)), nil, 0o644); err != nil {
		return err
	}
	l.c.Names++
	l.c.WhiteoutFiles++
	return nil
}

func (l *layer) fifo(parent string) error {
	if err := mkfifo(l.abs(filepath.Join(parent, l.newName(false)))); err != nil {
		return err
	}
	l.c.Names++
	l.c.FIFOs++
	return nil
}
