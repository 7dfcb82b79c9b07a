// Package capture records everything one stats collection read on a live
// node (CRI responses, mountinfo, stat/statfs answers, directory sizes) and
// replays it, so golden tests of explain and doctor run on real inputs
// taken from the harness without a runtime.
package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/fsinfo/fsinfotest"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

// Capture is one collection's inputs.
type Capture struct {
	NodeName    string               `json:"nodeName"`
	RootDir     string               `json:"rootDir"`
	Endpoint    runtime.Endpoint     `json:"endpoint"`
	CollectedAt time.Time            `json:"collectedAt"`
	Version     json.RawMessage      `json:"version"`     // protojson VersionResponse
	ImageFsInfo json.RawMessage      `json:"imageFsInfo"` // protojson ImageFsInfoResponse
	Mountinfo   string               `json:"mountinfo"`
	System      fsinfotest.System    `json:"system"`
	DirUsage    map[string][2]uint64 `json:"dirUsage"` // dir → {bytes, inodes}
}

// Usage measures a directory (bytes, inodes).
type Usage func(dir string) (uint64, uint64, error)

// recordingRuntime remembers the CRI answers it passes on.
type recordingRuntime struct {
	runtime.Service
	version *criapi.VersionResponse
	info    *criapi.ImageFsInfoResponse
}

func (r *recordingRuntime) Version(ctx context.Context) (*criapi.VersionResponse, error) {
	v, err := r.Service.Version(ctx)
	r.version = v
	return v, err
}

func (r *recordingRuntime) ImageFsInfo(ctx context.Context) (*criapi.ImageFsInfoResponse, error) {
	v, err := r.Service.ImageFsInfo(ctx)
	r.info = v
	return v, err
}

// Live runs one collection on this host, recording what it read, and
// measures the runtime directories explain and doctor size.
func Live(ctx context.Context, src stats.Sources, mountinfoPath string, usage Usage) (*Capture, error) {
	raw, err := os.ReadFile(mountinfoPath)
	if err != nil {
		return nil, err
	}
	rec := fsinfotest.Record(src.System)
	table, err := fsinfo.ParseMountTable(strings.NewReader(string(raw)), mountinfoPath, rec)
	if err != nil {
		return nil, err
	}
	rt := &recordingRuntime{Service: src.Runtime}
	src.Runtime, src.System, src.Mounts = rt, rec, table
	res, err := stats.Collect(ctx, src)
	if err != nil {
		return nil, err
	}
	c := &Capture{NodeName: src.NodeName, RootDir: src.RootDir, Endpoint: src.Endpoint, CollectedAt: res.CollectedAt, Mountinfo: string(raw), DirUsage: map[string][2]uint64{}}
	if c.Version, err = protojson.Marshal(rt.version); err != nil {
		return nil, err
	}
	if c.ImageFsInfo, err = protojson.Marshal(rt.info); err != nil {
		return nil, err
	}
	if img := res.Filesystem(stats.RoleImage); img != nil && img.Dir != "" && usage != nil {
		root := filepath.Dir(img.Dir)
		for _, d := range []string{img.Dir, root, filepath.Join(root, "io.containerd.content.v1.content")} {
			if b, n, err := usage(d); err == nil {
				c.DirUsage[d] = [2]uint64{b, n}
			}
		}
	}
	c.System = rec.Recorded
	return c, nil
}

// Save writes the capture as indented JSON.
func (c *Capture) Save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Load reads a capture.
func Load(path string) (*Capture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Capture
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode capture %s: %w", path, err)
	}
	return &c, nil
}

// replayRuntime answers from the captured responses.
type replayRuntime struct {
	runtime.Service
	version *criapi.VersionResponse
	info    *criapi.ImageFsInfoResponse
}

func (r *replayRuntime) Version(context.Context) (*criapi.VersionResponse, error) {
	return r.version, nil
}
func (r *replayRuntime) ImageFsInfo(context.Context) (*criapi.ImageFsInfoResponse, error) {
	return r.info, nil
}

// Replay runs the collection again from the captured inputs.
func (c *Capture) Replay() (*stats.Result, *fsinfo.MountTable, error) {
	rt := &replayRuntime{version: &criapi.VersionResponse{}, info: &criapi.ImageFsInfoResponse{}}
	if err := protojson.Unmarshal(c.Version, rt.version); err != nil {
		return nil, nil, err
	}
	if err := protojson.Unmarshal(c.ImageFsInfo, rt.info); err != nil {
		return nil, nil, err
	}
	sys := c.System
	table, err := fsinfo.ParseMountTable(strings.NewReader(c.Mountinfo), "/proc/self/mountinfo", &sys)
	if err != nil {
		return nil, nil, err
	}
	res, err := stats.Collect(context.Background(), stats.Sources{
		Runtime: rt, Endpoint: c.Endpoint, Mounts: table, System: &sys, RootDir: c.RootDir, NodeName: c.NodeName,
		Now: func() time.Time { return c.CollectedAt },
	})
	return res, table, err
}

// Usage answers directory sizes from the capture.
func (c *Capture) Usage(dir string) (uint64, uint64, error) {
	v, ok := c.DirUsage[dir]
	if !ok {
		return 0, 0, fmt.Errorf("%s: %w", dir, os.ErrNotExist)
	}
	return v[0], v[1], nil
}
