package exporter

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/imagefs/imagefs/pkg/fsinfo"
)

// ErrMountStuck means a call was not started because the previous call on
// the same path has not returned yet. It wraps fsinfo.ErrStatfsTimeout, so
// a lookup reports it as the hung mount it is.
var ErrMountStuck = fmt.Errorf("mount is stuck, a previous call on it has not returned (%w)", fsinfo.ErrStatfsTimeout)

// forever is the timeout the guard gives the wrapped System: the guard
// applies the caller's deadline itself and must learn when the call really
// returns.
const forever = time.Duration(1<<63 - 1)

// StuckGuard wraps an fsinfo.System so that a path whose stat, statfs or
// existence check hangs costs at most one goroutine, not one per
// collection: node_exporter's stuckMounts pattern
// (collector/filesystem_linux.go). A call that does not return within its
// deadline marks the path stuck; until that call returns, every further
// call on the path fails at once with ErrMountStuck instead of starting a
// second syscall. When it returns, the path recovers and is logged.
//
// Statfs uses the caller's timeout; Stat and Exists, which have none in
// fsinfo.System, use Timeout. A stuck Exists answers true, so the lookup
// goes on to Statfs and reports the mount as hung, not missing.
type StuckGuard struct {
	inner   fsinfo.System
	timeout time.Duration
	log     *slog.Logger

	mu    sync.Mutex
	calls map[string]*guardedCall // path → call in flight
	seen  map[string]bool         // statfs paths, for imagefs_mount_stuck
}

// guardedCall is one syscall in flight on a path.
type guardedCall struct {
	op      string
	started time.Time
	done    chan struct{} // closed when the syscall returned
	stuck   bool          // under StuckGuard.mu: a caller gave up on it
	res     any           // the call's result, set before done is closed
	err     error
}

// maxSeen bounds the paths kept for imagefs_mount_stuck; past it, paths
// that are not stuck are forgotten.
const maxSeen = 256

var _ fsinfo.System = (*StuckGuard)(nil)

// NewStuckGuard wraps inner. timeout bounds Stat and Exists (0:
// fsinfo.StatfsTimeout); log may be nil.
func NewStuckGuard(inner fsinfo.System, timeout time.Duration, log *slog.Logger) *StuckGuard {
	if timeout <= 0 {
		timeout = fsinfo.StatfsTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StuckGuard{inner: inner, timeout: timeout, log: log, calls: map[string]*guardedCall{}, seen: map[string]bool{}}
}

// Stat is the wrapped Stat, bounded by the guard's timeout.
func (g *StuckGuard) Stat(path string) (fsinfo.Stat, error) {
	return guarded(g, "stat", path, g.timeout, func() (fsinfo.Stat, error) { return g.inner.Stat(path) })
}

// Statfs is the wrapped Statfs, bounded by timeout.
func (g *StuckGuard) Statfs(path string, timeout time.Duration) (fsinfo.Statfs, error) {
	g.mu.Lock()
	if len(g.seen) >= maxSeen {
		for p := range g.seen {
			if g.calls[p] == nil {
				delete(g.seen, p)
			}
		}
	}
	g.seen[path] = true
	g.mu.Unlock()
	return guarded(g, "statfs", path, timeout, func() (fsinfo.Statfs, error) { return g.inner.Statfs(path, forever) })
}

// Exists is the wrapped Exists, bounded by the guard's timeout; a path that
// hangs is reported as existing (see StuckGuard).
func (g *StuckGuard) Exists(path string) bool {
	ok, err := guarded(g, "exists", path, g.timeout, func() (bool, error) { return g.inner.Exists(path), nil })
	if err != nil {
		return true
	}
	return ok
}

// guarded runs fn for path unless a call on path is stuck, waiting at most
// timeout for it. fn's result is handed over only once it returned.
func guarded[T any](g *StuckGuard, op, path string, timeout time.Duration, fn func() (T, error)) (T, error) {
	var zero T
	g.mu.Lock()
	if c := g.calls[path]; c != nil {
		if c.stuck {
			g.mu.Unlock()
			g.log.Debug("skipping a stuck mount", "path", path, "op", op, "pending", c.op)
			return zero, fmt.Errorf("%s %s: %w: its %s has been pending for %s", op, path, ErrMountStuck, c.op, time.Since(c.started).Round(time.Millisecond))
		}
		// A concurrent call on the same path, still within its deadline:
		// wait for it rather than start a second syscall, and share its
		// answer (or try again if it was another kind of call).
		g.mu.Unlock()
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-c.done:
			if res, ok := c.res.(T); ok && c.op == op {
				return res, c.err
			}
			return guarded(g, op, path, timeout, fn)
		case <-t.C:
			g.markStuck(c, path)
			return zero, fmt.Errorf("%s %s: %w: its %s has been pending for %s", op, path, ErrMountStuck, c.op, time.Since(c.started).Round(time.Millisecond))
		}
	}
	c := &guardedCall{op: op, started: time.Now(), done: make(chan struct{})}
	g.calls[path] = c
	g.mu.Unlock()

	go func() {
		res, err := fn()
		c.res, c.err = res, err
		g.mu.Lock()
		delete(g.calls, path)
		stuck := c.stuck
		g.mu.Unlock()
		close(c.done) // publishes res and err
		if stuck {
			g.log.Info("mount recovered, collecting it again", "path", path, "op", op, "after", time.Since(c.started).Round(time.Millisecond))
		}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.res.(T), c.err
	case <-t.C:
		g.markStuck(c, path)
		if op == "statfs" {
			return zero, fmt.Errorf("statfs %s: %w after %s", path, fsinfo.ErrStatfsTimeout, timeout)
		}
		return zero, fmt.Errorf("%s %s: did not return within %s: %w", op, path, timeout, ErrMountStuck)
	}
}

func (g *StuckGuard) markStuck(c *guardedCall, path string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-c.done:
		return // returned meanwhile
	default:
	}
	if !c.stuck {
		c.stuck = true
		g.log.Warn("mount is not responding, skipping it until its call returns", "path", path, "op", c.op)
	}
}

// MountState is one path the guard has taken statfs of.
type MountState struct {
	Path  string
	Stuck bool
}

// Mounts returns every path statfs was taken of, and whether a call on it is
// stuck, sorted by path; paths only stat'ed are included while stuck.
func (g *StuckGuard) Mounts() []MountState {
	g.mu.Lock()
	defer g.mu.Unlock()
	paths := map[string]bool{}
	for p := range g.seen {
		paths[p] = false
	}
	for p, c := range g.calls {
		if c.stuck {
			paths[p] = true
		}
	}
	out := make([]MountState, 0, len(paths))
	for p, stuck := range paths {
		out = append(out, MountState{p, stuck})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Stuck returns the paths with a stuck call, sorted.
func (g *StuckGuard) Stuck() []string {
	var out []string
	for _, m := range g.Mounts() {
		if m.Stuck {
			out = append(out, m.Path)
		}
	}
	return out
}
