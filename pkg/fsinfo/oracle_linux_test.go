//go:build linux

package fsinfo_test

import (
	. "github.com/imagefs/imagefs/pkg/fsinfo"
	"os"
	"testing"

	"github.com/imagefs/imagefs/internal/oracle"
)

// On this machine's own mount table, imagefs and cadvisor pick the same
// device and partition mountpoint, and agree on the numbers that do not
// move between two statfs calls. The integration tests compare every field
// on quiet loop filesystems.
func TestAgainstCadvisorOnThisHost(t *testing.T) {
	sys := OS()
	table, err := ReadMountTable("", sys)
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{"/", os.TempDir(), "/dev/shm", "/sys/fs/cgroup", "/proc", "/nonexistent-imagefs-dir"}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			want, wantErr := oracle.CadvisorGetDirFsInfo(dir)
			got := table.Lookup(dir, sys)
			if wantErr != nil {
				if got.Err == nil {
					t.Fatalf("cadvisor fails with %q, imagefs succeeds with %+v", wantErr, got.Info)
				}
				if got.Err.Error() != wantErr.Error() {
					t.Errorf("error text:\n imagefs  %q\n cadvisor %q", got.Err, wantErr)
				}
				return
			}
			if got.Err != nil {
				t.Fatalf("imagefs fails with %q, cadvisor gives %s at %s", got.Err, want.Device, want.Mountpoint)
			}
			if got.Device != want.Device || got.Partition.Mountpoint != want.Mountpoint {
				t.Errorf("device %q at %q, cadvisor %q at %q", got.Device, got.Partition.Mountpoint, want.Device, want.Mountpoint)
			}
			if got.Info.Capacity != want.Fs.Capacity || *got.Info.Inodes != *want.Fs.Inodes {
				t.Errorf("capacity %d inodes %d, cadvisor %d %d", got.Info.Capacity, *got.Info.Inodes, want.Fs.Capacity, *want.Fs.Inodes)
			}
		})
	}
}
