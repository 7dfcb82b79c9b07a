//go:build linux

// Package oracle wraps upstream code that imagefs reproduces, so tests can
// compare imagefs with the real thing. Only tests import it: the imagefs
// binary never links cadvisor.
package oracle

import (
	"fmt"

	cadvisorfs "github.com/google/cadvisor/lib/fs"
	// The plugins the kubelet registers (pkg/kubelet/cadvisor/cadvisor_linux.go).
	_ "github.com/google/cadvisor/lib/fs/btrfs/install"
	_ "github.com/google/cadvisor/lib/fs/nfs/install"
	_ "github.com/google/cadvisor/lib/fs/overlay/install"
	_ "github.com/google/cadvisor/lib/fs/tmpfs/install"
	_ "github.com/google/cadvisor/lib/fs/vfs/install"
	_ "github.com/google/cadvisor/lib/fs/zfs/install"
)

// CadvisorDirFs is cadvisor's answer for a directory.
type CadvisorDirFs struct {
	Device     string
	Mountpoint string
	Fs         cadvisorfs.Fs
}

// CadvisorGetDirFsInfo does what cadvisor's manager.GetDirFsInfo does for
// dir (cadvisor lib, the version the kubelet links), with a fresh partition
// map and fresh statfs instead of the housekeeping sample, and returns the
// same error texts.
func CadvisorGetDirFsInfo(dir string) (*CadvisorDirFs, error) {
	info, err := cadvisorfs.NewFsInfo(cadvisorfs.Context{})
	if err != nil {
		return nil, err
	}
	dev, err := info.GetDirFsDevice(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to get device for dir %q: %v", dir, err)
	}
	mp, err := info.GetMountpointForDevice(dev.Device)
	if err != nil {
		return nil, fmt.Errorf("failed to get mount point for device %q: %v", dev.Device, err)
	}
	// GetFsInfo("") then picks the sample entry whose partition mountpoint
	// equals mp; GetFsInfoForPath gives that sample restricted to mp.
	fss, err := info.GetFsInfoForPath(map[string]struct{}{mp: {}})
	if err != nil {
		return nil, err
	}
	for _, fs := range fss {
		if m, err := info.GetMountpointForDevice(fs.Device); err == nil && m == mp {
			return &CadvisorDirFs{Device: fs.Device, Mountpoint: mp, Fs: fs}, nil
		}
	}
	return nil, fmt.Errorf("cannot find filesystem info for device %q", dev.Device)
}
