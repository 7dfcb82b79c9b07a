package exporter_test

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imagefs/imagefs/pkg/exporter"
	"github.com/imagefs/imagefs/pkg/fsinfo"
)

// fakeStatfs answers every path.
type fakeStatfs struct{}

func (fakeStatfs) Stat(string) (fsinfo.Stat, error) { return fsinfo.Stat{Dev: 1, Mode: 0o40755}, nil }
func (fakeStatfs) Statfs(string, time.Duration) (fsinfo.Statfs, error) {
	return fsinfo.Statfs{Frsize: 4096, Blocks: 100, Bfree: 50, Bavail: 40, Files: 10, Ffree: 5}, nil
}
func (fakeStatfs) Exists(string) bool { return true }

// blockingSystem is a System whose calls on blocked paths hang like a dead
// NFS mount until released, ignoring any timeout, as the kernel does. It
// counts the calls that reached it.
type blockingSystem struct {
	inner fsinfo.System
	// statfsOnly blocks and counts only Statfs; Stat and Exists pass.
	statfsOnly bool

	mu      sync.Mutex
	blocked map[string]chan struct{}
	calls   map[string]int
	inside  map[string]int // calls currently hanging
}

func newBlockingSystem(inner fsinfo.System) *blockingSystem {
	return &blockingSystem{inner: inner, blocked: map[string]chan struct{}{}, calls: map[string]int{}, inside: map[string]int{}}
}

func (b *blockingSystem) block(path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.blocked[path] == nil {
		b.blocked[path] = make(chan struct{})
	}
}

func (b *blockingSystem) release(path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch := b.blocked[path]; ch != nil {
		close(ch)
		delete(b.blocked, path)
	}
}

func (b *blockingSystem) releaseAll() {
	b.mu.Lock()
	var paths []string
	for p := range b.blocked {
		paths = append(paths, p)
	}
	b.mu.Unlock()
	for _, p := range paths {
		b.release(p)
	}
}

func (b *blockingSystem) count(path string) (calls, hanging int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[path], b.inside[path]
}

func (b *blockingSystem) enter(path string) {
	b.mu.Lock()
	b.calls[path]++
	ch := b.blocked[path]
	if ch != nil {
		b.inside[path]++
	}
	b.mu.Unlock()
	if ch != nil {
		<-ch
		b.mu.Lock()
		b.inside[path]--
		b.mu.Unlock()
	}
}

func (b *blockingSystem) Stat(path string) (fsinfo.Stat, error) {
	if !b.statfsOnly {
		b.enter(path)
	}
	return b.inner.Stat(path)
}

func (b *blockingSystem) Statfs(path string, timeout time.Duration) (fsinfo.Statfs, error) {
	b.enter(path)
	return b.inner.Statfs(path, timeout)
}

func (b *blockingSystem) Exists(path string) bool {
	if !b.statfsOnly {
		b.enter(path)
	}
	return b.inner.Exists(path)
}

func TestStuckGuard(t *testing.T) {
	sys := newBlockingSystem(fakeStatfs{})
	t.Cleanup(sys.releaseAll)
	g := exporter.NewStuckGuard(sys, 20*time.Millisecond, nil)

	// An answering mount passes through.
	s, err := g.Statfs("/", time.Second)
	if err != nil || s.Blocks != 100 {
		t.Fatalf("Statfs(/) = %+v, %v", s, err)
	}

	// A hung mount: the first call gives up after its timeout...
	sys.block("/mnt/nfs")
	start := time.Now()
	_, err = g.Statfs("/mnt/nfs", 30*time.Millisecond)
	if !errors.Is(err, fsinfo.ErrStatfsTimeout) || errors.Is(err, exporter.ErrMountStuck) {
		t.Fatalf("first statfs of a hung mount: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > time.Second {
		t.Errorf("first statfs returned after %s, want its 30ms timeout", d)
	}
	// ...and every later call fails at once without a second syscall.
	for range 5 {
		start = time.Now()
		_, err = g.Statfs("/mnt/nfs", time.Second)
		if !errors.Is(err, exporter.ErrMountStuck) || !errors.Is(err, fsinfo.ErrStatfsTimeout) {
			t.Fatalf("statfs of a stuck mount: %v, want ErrMountStuck wrapping ErrStatfsTimeout", err)
		}
		// A second syscall would wait for the 1 s timeout; allow for a
		// loaded machine well below that.
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("statfs of a stuck mount waited %s", d)
		}
	}
	if _, err := g.Stat("/mnt/nfs"); !errors.Is(err, exporter.ErrMountStuck) {
		t.Errorf("stat of a stuck path: %v, want ErrMountStuck", err)
	}
	if !g.Exists("/mnt/nfs") {
		t.Error("Exists of a stuck path is false; want true so the lookup reports it hung, not missing")
	}
	if calls, hanging := sys.count("/mnt/nfs"); calls != 1 || hanging != 1 {
		t.Errorf("%d calls reached the hung mount (%d hanging), want 1", calls, hanging)
	}
	if got := g.Stuck(); len(got) != 1 || got[0] != "/mnt/nfs" {
		t.Errorf("Stuck() = %v", got)
	}
	mounts := g.Mounts()
	if len(mounts) != 2 || mounts[0] != (exporter.MountState{Path: "/", Stuck: false}) || mounts[1] != (exporter.MountState{Path: "/mnt/nfs", Stuck: true}) {
		t.Errorf("Mounts() = %+v", mounts)
	}
	// Other paths are not affected.
	if _, err := g.Statfs("/var", time.Second); err != nil {
		t.Errorf("statfs of another mount: %v", err)
	}

	// The call returns: the mount recovers and is asked again.
	sys.release("/mnt/nfs")
	deadline := time.Now().Add(5 * time.Second)
	for len(g.Stuck()) > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := g.Stuck(); len(got) != 0 {
		t.Fatalf("still stuck after the call returned: %v", got)
	}
	if _, err := g.Statfs("/mnt/nfs", time.Second); err != nil {
		t.Errorf("statfs after recovery: %v", err)
	}
	if calls, _ := sys.count("/mnt/nfs"); calls != 2 {
		t.Errorf("%d calls after recovery, want 2", calls)
	}
}

// Stat and Exists are bounded by the guard's own timeout; errors pass
// through unchanged.
func TestStuckGuardStatAndErrors(t *testing.T) {
	sys := newBlockingSystem(errSystem{})
	t.Cleanup(sys.releaseAll)
	g := exporter.NewStuckGuard(sys, 20*time.Millisecond, nil)
	if _, err := g.Stat("/x"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Stat error %v, want ENOENT passed through", err)
	}
	if g.Exists("/x") {
		t.Error("Exists(/x) true for a missing path")
	}
	sys.block("/hang")
	start := time.Now()
	if _, err := g.Stat("/hang"); !errors.Is(err, exporter.ErrMountStuck) {
		t.Errorf("Stat of a hung path: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Stat of a hung path took %s", d)
	}
}

type errSystem struct{}

func (errSystem) Stat(string) (fsinfo.Stat, error) { return fsinfo.Stat{}, syscall.ENOENT }
func (errSystem) Statfs(string, time.Duration) (fsinfo.Statfs, error) {
	return fsinfo.Statfs{}, syscall.ENOENT
}
func (errSystem) Exists(string) bool { return false }

// Concurrent callers on one path within its deadline share one syscall.
func TestStuckGuardConcurrentCallersShareOneCall(t *testing.T) {
	sys := newBlockingSystem(fakeStatfs{})
	g := exporter.NewStuckGuard(sys, time.Second, nil)
	sys.block("/slow")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := g.Statfs("/slow", 5*time.Second)
			errs <- err
		})
	}
	time.Sleep(50 * time.Millisecond)
	sys.release("/slow")
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent statfs: %v", err)
		}
	}
	if calls, _ := sys.count("/slow"); calls != 1 {
		t.Errorf("%d statfs calls reached the mount, want 1 shared by all callers", calls)
	}
}
