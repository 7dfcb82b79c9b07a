package fsinfo_test

import (
	"errors"
	. "github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/fsinfo/fsinfotest"
	"strings"
	"testing"
)

const blockDev = fsinfotest.BlockDevice

var dev = fsinfotest.Dev

type fakeSystem = fsinfotest.System

func mustTable(name string, sys System) *MountTable {
	t, err := ReadMountTable("testdata/mountinfo/"+name, sys)
	if err != nil {
		panic(err)
	}
	return t
}

func nodeSystem() *fakeSystem {
	return &fakeSystem{
		Stats: map[string]Stat{
			"/":                   {Dev: dev(8, 1)},
			"/var/lib/kubelet":    {Dev: dev(8, 1)},
			"/run":                {Dev: dev(0, 25)},
			"/run/containerd":     {Dev: dev(0, 25)},
			"/var/lib/containerd": {Dev: dev(8, 17)},
			"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs": {Dev: dev(8, 17)},
			"/mnt/bind/x":                           {Dev: dev(8, 17)},
			"/dev/loop2":                            {Dev: dev(0, 6), Mode: blockDev},
			"/srv/btrfs":                            {Dev: dev(0, 41)},
			"/srv/btrfs/ctd":                        {Dev: dev(0, 41)},
			"/srv/btrfs/subvol":                     {Dev: dev(0, 43)},
			"/var/lib/docker/overlay2/abc/merged":   {Dev: dev(0, 52)},
			"/var/lib/docker/overlay2/abc/merged/x": {Dev: dev(0, 52)},
			"/mnt/fuse/ctd":                         {Dev: dev(0, 60)},
			"/mnt/nfs/ctd":                          {Dev: dev(0, 50)},
			"/mnt/nfs":                              {Dev: dev(0, 50)},
			"/run/user/0/x":                         {Dev: dev(0, 26)},
			"/run/user/0":                           {Dev: dev(0, 26)},
			"/mnt/cg/x":                             {Dev: dev(0, 70)},
		},
		Statfs_: map[string]Statfs{
			"/":                                   {Bsize: 4096, Frsize: 4096, Blocks: 1000, Bfree: 400, Bavail: 350, Files: 500, Ffree: 100},
			"/run":                                {Bsize: 4096, Frsize: 4096, Blocks: 400, Bfree: 399, Bavail: 399, Files: 90, Ffree: 80},
			"/var/lib/containerd":                 {Bsize: 4096, Frsize: 1024, Blocks: 2000, Bfree: 1500, Bavail: 1500, Files: 64, Ffree: 60},
			"/srv/btrfs":                          {Bsize: 4096, Frsize: 4096, Blocks: 262144, Bfree: 255266, Bavail: 226290},
			"/var/lib/docker/overlay2/abc/merged": {Bsize: 4096, Frsize: 4096, Blocks: 10, Bfree: 5, Bavail: 4, Files: 3, Ffree: 2},
			"/mnt/nfs":                            {Bsize: 1048576, Frsize: 1048576, Blocks: 7, Bfree: 6, Bavail: 5, Files: 9, Ffree: 8},
			"/run/user/0":                         {Bsize: 4096, Frsize: 4096, Blocks: 25, Bfree: 25, Bavail: 25, Files: 9, Ffree: 9},
		},
	}
}

func TestPartitionMap(t *testing.T) {
	table := mustTable("node.txt", nodeSystem())
	want := map[string]struct {
		mountpoint   string
		major, minor uint
		plugin       string
	}{
		"/dev/sda1":      {"/", 8, 1, "vfs"},
		"/dev/sdb1":      {"/var/lib/containerd", 8, 17, "vfs"}, // bind mount at /mnt/bind ignored
		"/run":           {"/run", 0, 25, "tmpfs"},              // tmpfs keyed by mountpoint
		"/run/user/0":    {"/run/user/0", 0, 26, "tmpfs"},
		"/dev/loop2":     {"/srv/btrfs", 0, 41, "btrfs"}, // renumbered from stat of the mountpoint
		"overlay_0-52":   {"/var/lib/docker/overlay2/abc/merged", 0, 52, "overlay"},
		"server:/export": {"/mnt/nfs", 0, 50, "nfs"},
	}
	got := table.Partitions()
	if len(got) != len(want) {
		var names []string
		for _, p := range got {
			names = append(names, p.Device)
		}
		t.Fatalf("partitions = %v, want %d entries (proc, sysfs, devtmpfs, cgroup2, fuse.sshfs have no plugin)", names, len(want))
	}
	for _, p := range got {
		w, ok := want[p.Device]
		if !ok {
			t.Errorf("unexpected partition %q", p.Device)
			continue
		}
		if p.Mountpoint != w.mountpoint || p.Major != w.major || p.Minor != w.minor || p.Plugin != w.plugin {
			t.Errorf("%s = {%s %d:%d %s}, want {%s %d:%d %s}", p.Device, p.Mountpoint, p.Major, p.Minor, p.Plugin, w.mountpoint, w.major, w.minor, w.plugin)
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name, dir       string
		via, device     string
		statfsAt        string
		capacity, avail uint64
		free            uint64
		inodes, ifree   uint64
		errIs           error
		errText         string
		mutate          func(*fakeSystem)
	}{
		{name: "kubelet root on the root disk", dir: "/var/lib/kubelet", via: ViaPartitionMap, device: "/dev/sda1", statfsAt: "/",
			capacity: 4096000, free: 1638400, avail: 1433600, inodes: 500, ifree: 100},
		{name: "snapshotter on its own xfs disk, frsize not bsize", dir: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs", via: ViaPartitionMap, device: "/dev/sdb1", statfsAt: "/var/lib/containerd",
			capacity: 2048000, free: 1536000, avail: 1536000, inodes: 64, ifree: 60},
		{name: "bind mount resolves to the first mount of the source", dir: "/mnt/bind/x", via: ViaPartitionMap, device: "/dev/sdb1", statfsAt: "/var/lib/containerd",
			capacity: 2048000, free: 1536000, avail: 1536000, inodes: 64, ifree: 60},
		{name: "tmpfs keyed by mountpoint", dir: "/run/containerd", via: ViaPartitionMap, device: "/run", statfsAt: "/run",
			capacity: 1638400, free: 1634304, avail: 1634304, inodes: 90, ifree: 80},
		{name: "nested tmpfs", dir: "/run/user/0/x", via: ViaPartitionMap, device: "/run/user/0", statfsAt: "/run/user/0",
			capacity: 102400, free: 102400, avail: 102400, inodes: 9, ifree: 9},
		{name: "overlay renamed source_major-minor", dir: "/var/lib/docker/overlay2/abc/merged/x", via: ViaPartitionMap, device: "overlay_0-52", statfsAt: "/var/lib/docker/overlay2/abc/merged",
			capacity: 40960, free: 20480, avail: 16384, inodes: 3, ifree: 2},
		{name: "btrfs renumbered: stat of the mount matches", dir: "/srv/btrfs/ctd", via: ViaPartitionMap, device: "/dev/loop2", statfsAt: "/srv/btrfs",
			capacity: 1073741824, free: 1045569536, avail: 926883840, inodes: 0, ifree: 0},
		{name: "btrfs subvolume: unknown 0:43, found by walking up to a /dev/ mount", dir: "/srv/btrfs/subvol", via: ViaMountTable, device: "/dev/loop2", statfsAt: "/srv/btrfs",
			capacity: 1073741824, free: 1045569536, avail: 926883840, inodes: 0, ifree: 0},
		{name: "nfs", dir: "/mnt/nfs/ctd", via: ViaPartitionMap, device: "server:/export", statfsAt: "/mnt/nfs",
			capacity: 7340032, free: 6291456, avail: 5242880, inodes: 9, ifree: 8},
		{name: "fuse: no plugin and no /dev/ source", dir: "/mnt/fuse/ctd", errIs: ErrDeviceNotInPartitionsMap,
			errText: `failed to get device for dir "/mnt/fuse/ctd": with major: 0, minor: 60: could not find device in cached partitions map`},
		{name: "cgroup2: excluded type", dir: "/mnt/cg/x", errIs: ErrDeviceNotInPartitionsMap,
			errText: `failed to get device for dir "/mnt/cg/x": with major: 0, minor: 70: could not find device in cached partitions map`},
		{name: "directory missing (other mount namespace)", dir: "/var/lib/nope", errIs: ErrStatFailed,
			errText: `failed to get device for dir "/var/lib/nope": stat failed on /var/lib/nope with error: no such file or directory`},
		{name: "vfs mountpoint gone: dropped from cadvisor's sample", dir: "/var/lib/containerd", errIs: ErrNoFsInfo,
			mutate:  func(f *fakeSystem) { f.Missing = map[string]bool{"/var/lib/containerd": true} },
			errText: `cannot find filesystem info for device "/dev/sdb1"`},
		{name: "hung statfs: dropped after the timeout", dir: "/mnt/nfs/ctd", errIs: ErrNoFsInfo,
			mutate:  func(f *fakeSystem) { f.Hang = map[string]bool{"/mnt/nfs": true} },
			errText: `cannot find filesystem info for device "server:/export"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := nodeSystem()
			if tt.mutate != nil {
				tt.mutate(sys)
			}
			l := mustTable("node.txt", sys).Lookup(tt.dir, sys)
			if tt.errIs != nil {
				if !errors.Is(l.Err, tt.errIs) {
					t.Fatalf("err = %v, want %v", l.Err, tt.errIs)
				}
				if !strings.HasPrefix(l.Err.Error(), tt.errText) {
					t.Errorf("err text = %q, want prefix %q", l.Err, tt.errText)
				}
				if l.Info != nil {
					t.Errorf("info = %+v on error, want nil", l.Info)
				}
				return
			}
			if l.Err != nil {
				t.Fatalf("unexpected error: %v", l.Err)
			}
			if l.Via != tt.via || l.Device != tt.device || l.Partition.Mountpoint != tt.statfsAt {
				t.Errorf("via %q device %q statfs at %q, want %q %q %q", l.Via, l.Device, l.Partition.Mountpoint, tt.via, tt.device, tt.statfsAt)
			}
			i := l.Info
			if i.Capacity != tt.capacity || i.Free != tt.free || i.Available != tt.avail || *i.Inodes != tt.inodes || *i.InodesFree != tt.ifree {
				t.Errorf("info = cap %d free %d avail %d inodes %d free %d, want %d %d %d %d %d", i.Capacity, i.Free, i.Available, *i.Inodes, *i.InodesFree, tt.capacity, tt.free, tt.avail, tt.inodes, tt.ifree)
			}
		})
	}
}

// The root mount is stored again with mountinfo's own numbers after the
// btrfs renumbering, so "/" on btrfs is found only by the fallback.
func TestRootOnBtrfsStoredLast(t *testing.T) {
	sys := &fakeSystem{
		Stats: map[string]Stat{
			"/dev/sda2":        {Mode: blockDev},
			"/":                {Dev: dev(0, 31)},
			"/home":            {Dev: dev(0, 31)},
			"/var/lib/kubelet": {Dev: dev(0, 31)},
		},
		Statfs_: map[string]Statfs{"/": {Frsize: 4096, Blocks: 10, Bfree: 5, Bavail: 5}},
	}
	table := mustTable("btrfs-root.txt", sys)
	p, ok := table.Partition("/dev/sda2")
	if !ok || p.Major != 0 || p.Minor != 30 || p.Mountpoint != "/" {
		t.Fatalf("partition /dev/sda2 = %+v, want 0:30 at / (raw numbers of the root mount)", p)
	}
	l := table.Lookup("/var/lib/kubelet", sys)
	if l.Err != nil || l.Via != ViaMountTable || l.Device != "/dev/sda2" || l.Info.Capacity != 40960 {
		t.Fatalf("lookup = %+v err %v, want /dev/sda2 via the mount table", l, l.Err)
	}
}

func TestMalformedMountTable(t *testing.T) {
	_, err := ReadMountTable("testdata/mountinfo/malformed.txt", nodeSystem())
	if err == nil || !strings.Contains(err.Error(), "testdata/mountinfo/malformed.txt") {
		t.Fatalf("err = %v, want a parse error naming the file", err)
	}
	_, err = ReadMountTable("testdata/mountinfo/does-not-exist.txt", nodeSystem())
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.txt") {
		t.Fatalf("err = %v, want an error naming the file", err)
	}
	_, err = ParseMountTable(strings.NewReader(""), "empty", nodeSystem())
	if !errors.Is(err, ErrEmptyMountTable) {
		t.Fatalf("err = %v, want ErrEmptyMountTable", err)
	}
}

func TestPlugin(t *testing.T) {
	for fstype, want := range map[string]string{
		"ext4": "vfs", "ext2": "vfs", "xfs": "vfs", "vfat": "vfs", "btrfs": "btrfs", "tmpfs": "tmpfs",
		"overlay": "overlay", "nfs4": "nfs", "nfs": "nfs", "zfs": "zfs",
		"fuse.sshfs": "", "cgroup2": "", "proc": "", "devtmpfs": "", "9p": "", "virtiofs": "", "ceph": "", "squashfs": "vfs",
	} {
		if got := Plugin(fstype); got != want {
			t.Errorf("Plugin(%q) = %q, want %q", fstype, got, want)
		}
	}
}

func TestLineQuotesTheMountinfoEntry(t *testing.T) {
	sys := nodeSystem()
	table := mustTable("node.txt", sys)
	l := table.Lookup("/mnt/bind/x", sys)
	want := "31 27 8:17 / /var/lib/containerd rw,relatime - xfs /dev/sdb1 rw,attr2,inode64"
	if got := table.Line(l.Mount); got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
}
