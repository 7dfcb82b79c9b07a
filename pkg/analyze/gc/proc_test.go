package gc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeProc(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, s := range files {
		path := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// stat builds a /proc/<pid>/stat line with starttime (field 22) = ticks.
func stat(pid, comm, ticks string) string {
	// fields 3..21 are 19 fields, then starttime.
	return pid + " (" + comm + ") S 1 1 1 0 -1 4194560 1 0 0 0 1 1 0 0 20 0 30 0 " + ticks + " 100000 100 18446744073709551615\n"
}

func TestFindKubelet(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, map[string]string{
		"stat":      "cpu  1 2 3\nbtime 1796400000\nprocesses 5\n",
		"1/comm":    "systemd\n",
		"1/stat":    stat("1", "systemd", "1"),
		"812/comm":  "kubelet\n",
		"812/stat":  stat("812", "kubelet", "123456"), // 1234.56 s after boot
		"900/comm":  "kubelet\n",
		"900/stat":  stat("900", "kubelet", "999999"), // a later one: the oldest wins
		"77/comm":   "weird ) name\n",
		"77/stat":   stat("77", "weird ) name", "5"),
		"self/comm": "imagefs\n",
		"notapid/x": "",
		"950/comm":  "kubelet\n", // exited between comm and stat: skipped
	})
	p, err := FindKubelet(root)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Unix(1796400000, 0).Add(1234560 * time.Millisecond)
	if p.PID != 812 || !p.Start.Equal(want) {
		t.Errorf("FindKubelet = %+v, want pid 812 started %s", p, want)
	}
	if ticks, err := startTicks(root, 77); err != nil || ticks != 5 {
		t.Errorf("comm with \") \": %d, %v", ticks, err)
	}

	empty := t.TempDir()
	writeProc(t, empty, map[string]string{"stat": "btime 1\n", "1/comm": "init\n"})
	if _, err := FindKubelet(empty); !errors.Is(err, ErrNoKubelet) {
		t.Errorf("no kubelet: %v", err)
	}
	if b, err := BootTime(empty); err != nil || b.Unix() != 1 {
		t.Errorf("BootTime = %v, %v", b, err)
	}
	if _, err := BootTime(t.TempDir()); err == nil {
		t.Error("BootTime without /proc/stat succeeded")
	}
	if _, err := FindKubelet(filepath.Join(root, "missing")); err == nil || errors.Is(err, ErrNoKubelet) {
		t.Errorf("missing proc root: %v", err)
	}
}

// TestFindKubeletLive reads this machine's /proc: no kubelet here is fine,
// but the boot time must parse and a found kubelet must have started after it.
func TestFindKubeletLive(t *testing.T) {
	boot, err := BootTime("/proc")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if boot.After(time.Now()) {
		t.Errorf("boot time %s is in the future", boot)
	}
	p, err := FindKubelet("/proc")
	switch {
	case errors.Is(err, ErrNoKubelet):
	case err != nil:
		t.Error(err)
	case p.Start.Before(boot) || p.Start.After(time.Now()):
		t.Errorf("kubelet %+v started outside [boot %s, now]", p, boot)
	}
}
