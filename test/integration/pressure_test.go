//go:build integration && linux

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/imagefs/imagefs/internal/testutil"
)

type pressureSignal struct {
	Signal    string  `json:"signal"`
	Observed  *uint64 `json:"observed"`
	Capacity  *uint64 `json:"capacity"`
	Threshold *struct {
		Configured string `json:"configured"`
		Resolved   int64  `json:"resolved"`
		Met        bool   `json:"met"`
	} `json:"threshold"`
	Headroom *int64 `json:"headroom"`
	Met      bool   `json:"met"`
	Source   string `json:"source"`
}

type pressureReport struct {
	DiskPressure bool             `json:"diskPressure"`
	Signals      []pressureSignal `json:"signals"`
}

func pressureJSON(t *testing.T, wantCode int, args ...string) pressureReport {
	t.Helper()
	out, errOut, code := runImagefs(t, append([]string{"pressure", "-o", "json"}, args...)...)
	if code != wantCode {
		t.Fatalf("imagefs pressure exit %d, want %d\n%s\n%s", code, wantCode, out, errOut)
	}
	var r pressureReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	return r
}

// Fill the shared image/node filesystem with real data until imagefs's 15%
// is crossed but nodefs's 10% is not, then past 10%: the predicted signals
// flip exactly where independent statfs arithmetic says they must.
func TestPressureFillUntilThresholds(t *testing.T) {
	m := testutil.MountFS(t, "ext4", 512<<20)
	c, rootDir := newRuntime(t, m.Dir)
	cfg := filepath.Join(t.TempDir(), "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--runtime-endpoint", c.Endpoint, "--root-dir", rootDir, "--kubelet-config", cfg}

	r := pressureJSON(t, 0, args...)
	if r.DiskPressure {
		t.Fatalf("DiskPressure on an empty filesystem: %+v", r)
	}
	for _, step := range []struct {
		frac                  float64
		imagefsMet, nodefsMet bool
	}{{0.14, true, false}, {0.08, true, true}} {
		fillTo(t, m.Dir, step.frac)
		var s unix.Statfs_t
		if err := unix.Statfs(m.Dir, &s); err != nil {
			t.Fatal(err)
		}
		capacity, avail := uint64(s.Frsize)*s.Blocks, uint64(s.Frsize)*s.Bavail
		r = pressureJSON(t, 3, args...)
		if !r.DiskPressure {
			t.Errorf("at %.0f%% free: no DiskPressure predicted", step.frac*100)
		}
		for _, sig := range r.Signals {
			var pct float32
			want := false
			switch sig.Signal {
			case "imagefs.available":
				pct, want = 0.15, step.imagefsMet
			case "nodefs.available", "containerfs.available":
				// One disk: the kubelet copies nodefs's threshold to containerfs.
				pct, want = 0.10, step.nodefsMet
			default:
				continue
			}
			resolved := int64(float64(capacity) * float64(pct))
			if sig.Observed == nil || *sig.Observed != avail || *sig.Capacity != capacity {
				t.Errorf("%s observed %v/%v, statfs says %d/%d", sig.Signal, sig.Observed, sig.Capacity, avail, capacity)
			}
			if sig.Threshold == nil || sig.Threshold.Resolved != resolved || sig.Met != want || sig.Met != (resolved > int64(avail)) {
				t.Errorf("at %.0f%% free: %s = %+v met %v, want resolved %d met %v", step.frac*100, sig.Signal, sig.Threshold, sig.Met, resolved, want)
			}
		}
	}
}
