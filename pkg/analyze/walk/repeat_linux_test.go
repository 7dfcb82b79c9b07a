//go:build linux

package walk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/containerd/continuity/fs"

	"github.com/imagefs/imagefs/pkg/analyze/walk/gentree"
)

// TestRepeatableUnderSignals walks one tree many times while the process
// is showered with SIGURG (the Go runtime's preemption signal, which it
// ignores otherwise) and requires continuity's totals every time. A signal
// pending during getdents64 makes it return early (filldir64), so "a short
// read is the last one" loses entries: this test catches that shortcut,
// which the benchmark caught first under load.
func TestRepeatableUnderSignals(t *testing.T) {
	requireRoot(t, "generate whiteouts (mknod)")
	out := t.TempDir()
	if _, err := gentree.Generate(out, gentree.Options{Entries: 10000, Seed: 9, Layers: 3, LargeFiles: -1}); err != nil {
		t.Fatal(err)
	}
	// And a directory of ~1 MiB of dirents: many getdents64 calls.
	for i := range 10000 {
		write(t, filepath.Join(out, "big", fmt.Sprintf("%s-%05d", strings.Repeat("x", 80), i)), 0)
	}
	root := out
	want, err := fs.DiskUsage(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			syscall.Kill(os.Getpid(), syscall.SIGURG)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	runs := 4
	if testing.Short() {
		runs = 5
	}
	for i := range runs {
		got, err := walkOne(t, root, Options{Workers: 1 + i%8})
		noErr(t, err)
		if got.AllocatedBytes != uint64(want.Size) || got.Inodes != uint64(want.Inodes) || got.ErrorCount != 0 {
			t.Fatalf("run %d (workers %d): %d bytes, %d inodes, %d errors; continuity: %d bytes, %d inodes",
				i, 1+i%8, got.AllocatedBytes, got.Inodes, got.ErrorCount, want.Size, want.Inodes)
		}
	}
}
