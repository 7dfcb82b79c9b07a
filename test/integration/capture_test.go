//go:build integration && linux

package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/imagefs/imagefs/internal/capture"
	"github.com/imagefs/imagefs/internal/lab"
	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

// A capture of a live collection replays to the same Summary. With
// IMAGEFS_CAPTURE_DIR set it also writes the captures there: that is how
// pkg/output/testdata/capture/*.json, the inputs of the explain and doctor
// golden tests, were made.
func TestCaptureReplaysLiveCollection(t *testing.T) {
	for _, fstype := range []string{"ext4", "btrfs"} {
		t.Run(fstype, func(t *testing.T) {
			bin := lab.Binaries()[len(lab.Binaries())-1]
			testutil.RequireLab(t, bin)
			m := testutil.MountFS(t, fstype, 512<<20)
			c := testutil.StartContainerd(t, bin, filepath.Join(m.Dir, "containerd"))
			importAndWait(t, c, "lab.local/imagefs/capture:v1", testLayers()...)
			rootDir := filepath.Join(m.Dir, "kubelet")
			if err := os.MkdirAll(rootDir, 0o755); err != nil {
				t.Fatal(err)
			}
			ep, err := runtime.ResolveEndpoint(runtime.ResolveOptions{Flag: c.Endpoint})
			if err != nil {
				t.Fatal(err)
			}
			client, err := runtime.Dial(ep, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			capt, err := capture.Live(context.Background(), stats.Sources{
				Runtime: client, Endpoint: ep, System: fsinfo.OS(), RootDir: rootDir, NodeName: "harness-" + fstype,
			}, fsinfo.DefaultMountinfo, dirUsageForTest)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "capture.json")
			if dir := os.Getenv("IMAGEFS_CAPTURE_DIR"); dir != "" {
				path = filepath.Join(dir, bin.Name+"-"+fstype+".json")
			}
			if err := capt.Save(path); err != nil {
				t.Fatal(err)
			}
			loaded, err := capture.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			res, _, err := loaded.Replay()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(res.Summary)
			// The live values, independently: imagefs's own binary.
			live := statsJSON(t, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir, "--node-name", "harness-"+fstype)
			want, _ := json.Marshal(live)
			var a, b map[string]any
			_ = json.Unmarshal(got, &a)
			_ = json.Unmarshal(want, &b)
			stripTimes(a)
			stripTimes(b)
			ga, _ := json.Marshal(a)
			gb, _ := json.Marshal(b)
			if string(ga) != string(gb) {
				t.Errorf("replayed summary differs from a live run:\nreplay %s\nlive   %s", ga, gb)
			}
		})
	}
}

// stripTimes drops "time" fields, which legitimately differ between runs.
func stripTimes(v any) {
	switch m := v.(type) {
	case map[string]any:
		delete(m, "time")
		for _, x := range m {
			stripTimes(x)
		}
	}
}

// dirUsageForTest sizes a directory independently of imagefs.
func dirUsageForTest(dir string) (uint64, uint64, error) {
	if _, err := os.Stat(dir); err != nil {
		return 0, 0, err
	}
	b, n := walkUsage(dir)
	return b, n, nil
}
