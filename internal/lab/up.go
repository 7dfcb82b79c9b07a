package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpOptions configures Up.
type UpOptions struct {
	Dir       string       // lab dir; must not exist or be empty
	FSType    string       // "" => ext4
	Binary    Binary       // zero => containerd-1.6
	SizeBytes int64        // 0 => 512 MiB (sparse)
	Logger    *slog.Logger // progress; nil => discarded
}

// DemoImage is one image Up imports.
type DemoImage struct {
	Ref    string
	Layers [][]File
}

// DemoImages are the small images of the demo lab: app-a and app-b share their
// base layer (so they share its snapshot), tool shares nothing.
func DemoImages() []DemoImage {
	base := append([]File{{Path: "usr/lib/base.bin", Size: 2 << 20}}, SmallFiles("etc/base", 20, 300)...)
	return []DemoImage{
		{Ref: "lab.local/imagefs/app-a:v1", Layers: [][]File{base, {{Path: "app/a.bin", Size: 3 << 20}}}},
		{Ref: "lab.local/imagefs/app-b:v1", Layers: [][]File{base, SmallFiles("app/b", 200, 512)}},
		{Ref: "lab.local/imagefs/tool:v1", Layers: [][]File{{{Path: "opt/tool/tool.bin", Size: 4 << 20}}}},
	}
}

// Up builds a demo lab under opt.Dir: a loop filesystem at Dir/mnt, containerd
// with its root at Dir/mnt/containerd and its instance dir at Dir/ctd, and the
// DemoImages imported. It returns once ImageFsInfo reports non-zero usedBytes,
// leaving containerd running. Progress is recorded in Dir/lab.json as it goes;
// on failure everything is torn down again and Dir removed.
func Up(ctx context.Context, opt UpOptions) (_ *State, err error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Dir == "" {
		return nil, errors.New("lab up: a lab dir is required")
	}
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	if opt.FSType == "" {
		opt.FSType = "ext4"
	}
	if opt.Binary == (Binary{}) {
		opt.Binary = Binaries()[0]
	}
	if opt.SizeBytes == 0 {
		opt.SizeBytes = 512 << 20
	}
	if err := opt.Binary.Available(); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		if _, serr := os.Stat(filepath.Join(dir, StateFile)); serr == nil {
			return nil, fmt.Errorf("%s already holds a lab; run down first", dir)
		}
		return nil, fmt.Errorf("%s exists and is not empty; pick a new dir", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	s := &State{Dir: dir}
	if err := s.Save(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if derr := Down(dir); derr != nil {
				err = errors.Join(err, fmt.Errorf("cleaning up after failed up: %w", derr))
			}
		}
	}()

	m, err := MountFS(opt.FSType, filepath.Join(dir, "img"), filepath.Join(dir, "mnt"), opt.SizeBytes)
	if err != nil {
		return nil, err
	}
	s.Mounts = append(s.Mounts, m)
	if err := s.Save(); err != nil {
		return nil, err
	}
	log.Info("mounted", "fs", m.FSType, "dir", m.Dir, "device", m.Device)

	cfg := Config{Binary: opt.Binary, Root: filepath.Join(m.Dir, "containerd"), Dir: filepath.Join(dir, "ctd")}
	// Record the instance before starting it: if up is killed mid-start, down
	// still finds it through Dir/ctd/pid.
	s.Containerds = append(s.Containerds, &Containerd{Config: cfg, Socket: filepath.Join(cfg.Dir, socketName), LogPath: filepath.Join(cfg.Dir, logName)})
	if err := s.Save(); err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := StartContainerd(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.Containerds[len(s.Containerds)-1] = c
	if err := s.Save(); err != nil {
		return nil, err
	}
	log.Info("containerd ready", "binary", c.Binary.Name, "pid", c.PID, "endpoint", c.Endpoint, "took", time.Since(start).Round(time.Millisecond))

	imgDir := filepath.Join(dir, "images")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	for i, im := range DemoImages() {
		tarPath := filepath.Join(imgDir, fmt.Sprintf("image%d.tar", i))
		if err := BuildImage(tarPath, im.Ref, im.Layers...); err != nil {
			return nil, err
		}
		if err := c.Import(ctx, tarPath); err != nil {
			return nil, err
		}
		s.Images = append(s.Images, im.Ref)
		if err := s.Save(); err != nil {
			return nil, err
		}
		log.Info("imported", "image", im.Ref)
	}

	// CRI serves cached stats; its timestamp is the oldest snapshot's last
	// refresh, so once it passes the end of the imports every layer is counted.
	imported := time.Now().UnixNano()
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := c.WaitImageFsInfo(waitCtx, func(r *runtimeapi.ImageFsInfoResponse) bool {
		return UsedBytes(r) > 0 && r.GetImageFilesystems()[0].GetTimestamp() >= imported
	})
	if err != nil {
		return nil, err
	}
	log.Info("ImageFsInfo", "usedBytes", UsedBytes(resp), "mountpoint", resp.GetImageFilesystems()[0].GetFsId().GetMountpoint())
	return s, nil
}
