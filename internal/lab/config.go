package lab

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Paths inside an instance dir.
const (
	socketName  = "containerd.sock"
	logName     = "containerd.log"
	pidName     = "pid"
	configName  = "config.toml"
	maxSockPath = 107 // sun_path is 108 bytes including the NUL
)

// configTOML renders the instance config. It is a version-2 file, the format
// containerd 1.6 reads; containerd 2.x migrates it at start-up (it logs
// "Configuration migrated from version 2", harmless) and moves
// stats_collect_period to io.containerd.cri.v1.images and sandbox_image to
// pinned_images.sandbox, so one file serves both builds (checked with
// `containerd config dump` on 2.4.2).
func configTOML(cfg Config) string {
	d := cfg.Dir
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("version = 2")
	w("root = %s", tomlString(cfg.Root))
	w("state = %s", tomlString(filepath.Join(d, "state")))
	// NRI (2.x) would listen on the shared /var/run/nri/nri.sock; 1.6 ignores the name.
	w(`disabled_plugins = ["io.containerd.nri.v1.nri"]`)
	w("[grpc]")
	w("  address = %s", tomlString(filepath.Join(d, socketName)))
	w("[ttrpc]")
	w("  address = %s", tomlString(filepath.Join(d, socketName+".ttrpc")))
	// No debug socket and no metrics listener: both would be shared resources.
	w("[debug]")
	w(`  address = ""`)
	w("[metrics]")
	w(`  address = ""`)
	w(`[plugins."io.containerd.internal.v1.opt"]`)
	w("  path = %s", tomlString(filepath.Join(d, "opt"))) // default /opt/containerd is shared
	if cfg.SnapshotterRoot != "" {
		w(`[plugins."io.containerd.snapshotter.v1.overlayfs"]`)
		w("  root_path = %s", tomlString(cfg.SnapshotterRoot))
	}
	w(`[plugins."io.containerd.grpc.v1.cri"]`)
	// Keys of the cri table itself must come before its first sub-table, or TOML
	// puts them in that sub-table and containerd silently keeps the default.
	w("  stats_collect_period = %d", cfg.StatsCollectPeriod)
	// Root here lacks CAP_SYS_RESOURCE: without this every RunPodSandbox fails.
	w("  restrict_oom_score_adj = true")
	if cfg.SandboxImage != "" {
		w("  sandbox_image = %s", tomlString(cfg.SandboxImage))
	}
	w(`  [plugins."io.containerd.grpc.v1.cri".containerd]`)
	w(`    snapshotter = "overlayfs"`)
	w(`    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`)
	w(`      runtime_type = "io.containerd.runc.v2"`)
	// The default runc root /run/containerd/runc/k8s.io is shared with any
	// system containerd.
	w(`      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`)
	w("        Root = %s", tomlString(filepath.Join(d, "runc")))
	w(`  [plugins."io.containerd.grpc.v1.cri".cni]`)
	w(`    bin_dir = "/usr/lib/cni"`)
	// An empty conf dir means no pod network: fine for images and host-network pods.
	w("    conf_dir = %s", tomlString(filepath.Join(d, "cni")))
	return b.String()
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
