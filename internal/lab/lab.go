// Package lab runs private containerd instances on throwaway filesystems, so
// tests and demos exercise a real CRI ImageFsInfo without touching any
// containerd already on the machine.
//
// Everything an instance writes lives under its Config.Root (on the filesystem
// under test) and its Config.Dir (config, log, pid, state, sockets, runc root).
// The facts behind the choices here are measured in docs/runtime-lab.md
// (/work/shared/docs/runtime-lab.md): read it before changing the config.
//
// This package returns errors and never calls testing; internal/testutil wraps
// it for tests and cmd/imagefs-lab for the demo.
package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// InstallHint is appended to errors about missing tools.
const InstallHint = "run scripts/install-deps.sh as root"

// Binary is one containerd build with its matching ctr.
type Binary struct {
	Name       string `json:"name"`       // "containerd-1.6" or "containerd-2.4"
	Containerd string `json:"containerd"` // path of the containerd binary
	Ctr        string `json:"ctr"`        // path of the matching ctr
	// Shim is the matching containerd-shim-runc-v2, needed only to run pods:
	// containerd 2.x cannot start pods with 1.6's shim ("type with url ... not
	// found"). containerd finds it first on PATH because StartContainerd puts
	// the containerd binary's dir first.
	Shim string `json:"shim"`
}

// Containerd2Dir is where scripts/install-deps.sh builds containerd 2.x.
const Containerd2Dir = "/usr/local/libexec/imagefs/containerd-v2.4.2"

// Binaries returns both builds the tests run against: Debian's containerd 1.6
// and the 2.4.2 build from scripts/install-deps.sh (what production nodes run).
func Binaries() []Binary {
	return []Binary{
		{
			Name:       "containerd-1.6",
			Containerd: "/usr/bin/containerd",
			Ctr:        "/usr/bin/ctr",
			Shim:       "/usr/bin/containerd-shim-runc-v2",
		},
		{
			Name:       "containerd-2.4",
			Containerd: filepath.Join(Containerd2Dir, "containerd"),
			Ctr:        filepath.Join(Containerd2Dir, "ctr"),
			Shim:       filepath.Join(Containerd2Dir, "containerd-shim-runc-v2"),
		},
	}
}

// BinaryByName returns the entry of Binaries called name.
func BinaryByName(name string) (Binary, error) {
	var names []string
	for _, b := range Binaries() {
		if b.Name == name {
			return b, nil
		}
		names = append(names, b.Name)
	}
	return Binary{}, fmt.Errorf("unknown containerd binary %q (want one of %v)", name, names)
}

// Available reports whether both files of b exist, saying how to get them if not.
func (b Binary) Available() error {
	for _, p := range []string{b.Containerd, b.Ctr} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %s is missing (%v): %s", b.Name, p, err, InstallHint)
		}
	}
	return nil
}

// ShimAvailable reports whether b can run pods: its own shim and runc exist.
func (b Binary) ShimAvailable() error {
	if _, err := os.Stat(b.Shim); err != nil {
		return fmt.Errorf("%s: shim %s is missing (%v), so pods cannot run; install-deps.sh must also build "+
			"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 for 2.x", b.Name, b.Shim, err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return fmt.Errorf("%s: runc not found (%v): %s", b.Name, err, InstallHint)
	}
	return nil
}

// Mount is a filesystem mounted for a test: a loop-mounted image file, or a tmpfs.
type Mount struct {
	FSType string `json:"fsType"` // ext4, xfs, btrfs or tmpfs
	Dir    string `json:"dir"`    // mountpoint
	Device string `json:"device"` // /dev/loopN as read back from mountinfo, or "tmpfs"
	Image  string `json:"image"`  // backing image file; "" for tmpfs
}

// Config describes one private containerd instance.
type Config struct {
	Binary Binary `json:"binary"`
	// Root is containerd's root: put it on the filesystem under test.
	Root string `json:"root"`
	// Dir is the instance dir: config.toml, containerd.log, pid, state/, opt/,
	// cni/, runc/ and the sockets. Keep it short: unix socket paths must stay
	// under 108 bytes.
	Dir string `json:"dir"`
	// StatsCollectPeriod is the CRI snapshot-stats refresh in seconds (0 => 1;
	// containerd's own default is 10, which makes ImageFsInfo lag by up to 10 s).
	StatsCollectPeriod int `json:"statsCollectPeriod"`
	// SnapshotterRoot, if set, moves the overlayfs snapshotter's root_path to
	// another filesystem (the "split" imagefs layout).
	SnapshotterRoot string `json:"snapshotterRoot,omitempty"`
	// SandboxImage sets the CRI sandbox (pause) image; needed to run pods offline.
	SandboxImage string `json:"sandboxImage,omitempty"`
	// LogLevel is passed to --log-level ("" => "debug", as measured in the doc).
	LogLevel string `json:"logLevel,omitempty"`
}

// Containerd is a started instance. It is JSON-serialisable so another process
// can stop it (see State).
type Containerd struct {
	Config
	PID      int    `json:"pid"`
	Socket   string `json:"socket"`
	Endpoint string `json:"endpoint"` // "unix://" + Socket
	LogPath  string `json:"logPath"`

	mu      sync.Mutex
	stopped bool
	exited  chan struct{} // closed when our child has been reaped; nil if not our child
}

// ConfigPath is the config file the instance was started with; Stop only
// signals a PID whose command line names it.
func (c *Containerd) ConfigPath() string { return filepath.Join(c.Dir, "config.toml") }

// SnapshotterDir is where the overlayfs snapshotter keeps its snapshots.
func (c *Containerd) SnapshotterDir() string {
	if c.SnapshotterRoot != "" {
		return c.SnapshotterRoot
	}
	return filepath.Join(c.Root, "io.containerd.snapshotter.v1.overlayfs")
}

// LogTail returns the last n lines of the instance's log, for error messages.
func (c *Containerd) LogTail(n int) string { return logTail(c.LogPath, n) }
