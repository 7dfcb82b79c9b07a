// Package doctor checks a stats collection for the known ways the
// kubelet's node filesystem stats go wrong, and says for each what it saw
// and what to do.
package doctor

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/analyze/pressure"
	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/stats"
)

// Severity of a finding; the report's worst one decides the exit code.
type Severity string

const (
	OK   Severity = "ok"
	Warn Severity = "warn"
	Fail Severity = "fail"
)

func (s Severity) rank() int {
	switch s {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Finding is the result of one check.
type Finding struct {
	Check    string   `json:"check"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence,omitempty"`
	Fix      string   `json:"fix,omitempty"`
}

// Report is every finding, in check order.
type Report struct {
	NodeName string    `json:"nodeName"`
	Findings []Finding `json:"findings"`
	Worst    Severity  `json:"worst"`
}

// Thresholds are the kubelet defaults the checks compare with (Linux,
// kubernetes v1.37: eviction hard defaults and image GC thresholds).
type Thresholds struct {
	ImagefsAvailable   float32 // imagefs.available<15%
	ImagefsInodesFree  float32 // imagefs.inodesFree<5%
	NodefsAvailable    float32 // nodefs.available<10%
	NodefsInodesFree   float32 // nodefs.inodesFree<5%
	ImageGCHighPercent int     // imageGCHighThresholdPercent 85
	ImageGCLowPercent  int     // imageGCLowThresholdPercent 80
}

// DefaultThresholds are the kubelet v1.37 Linux defaults.
var DefaultThresholds = Thresholds{0.15, 0.05, 0.10, 0.05, 85, 80}

// Inputs of Run.
type Inputs struct {
	Result *stats.Result
	Table  *fsinfo.MountTable
	// Usage measures a directory (allocated bytes, inodes); nil skips the
	// accounting check.
	Usage      func(dir string) (bytes, inodes uint64, err error)
	Thresholds Thresholds
	// StaleAfter is when the runtime's usage counts as stale; containerd
	// refreshes every 10 s by default.
	StaleAfter time.Duration
	// AccountingMinGap is the smallest uncounted amount worth a warning, so
	// an empty runtime's metadata does not raise one.
	AccountingMinGap uint64
}

// Run performs every check.
func Run(in Inputs) *Report {
	if in.Thresholds == (Thresholds{}) {
		in.Thresholds = DefaultThresholds
	}
	if in.StaleAfter == 0 {
		in.StaleAfter = 30 * time.Second
	}
	if in.AccountingMinGap == 0 {
		in.AccountingMinGap = 16 << 20
	}
	r := &Report{NodeName: in.Result.Summary.Node.NodeName, Worst: OK}
	for _, check := range []func(Inputs) Finding{
		checkRuntimeImageFs,
		checkCapacity,
		checkSplit,
		checkSharedDevice,
		checkAccounting,
		checkBytePressure,
		checkInodePressure,
		checkStale,
		checkUnexpectedFs,
	} {
		f := check(in)
		r.Findings = append(r.Findings, f)
		if f.Severity.rank() > r.Worst.rank() {
			r.Worst = f.Severity
		}
	}
	return r
}

func checkRuntimeImageFs(in Inputs) Finding {
	f := Finding{Check: "runtime-imagefs", Title: "the runtime reports an image filesystem that exists on this host"}
	res := in.Result
	fss := res.ImageFsInfo.GetImageFilesystems()
	if len(fss) == 0 {
		f.Severity, f.Summary = Fail, "the runtime's ImageFsInfo has no image filesystem, so the kubelet fails every Summary with \"imageFs information is unavailable\""
		f.Fix = "check the runtime's CRI image service configuration (containerd: the CRI plugin's snapshotter); crictl imagefsinfo shows the same answer"
		return f
	}
	mp := fss[0].GetFsId().GetMountpoint()
	f.Evidence = append(f.Evidence, fmt.Sprintf("image_filesystems[0].fs_id.mountpoint = %q", mp))
	img := res.Filesystem(stats.RoleImage)
	if img.Lookup != nil && errors.Is(img.Lookup.Err, fsinfo.ErrStatFailed) {
		f.Severity, f.Summary = Fail, fmt.Sprintf("the runtime's mountpoint %s does not exist in this mount namespace", mp)
		f.Evidence = append(f.Evidence, img.Lookup.Err.Error())
		f.Fix = "run imagefs where the kubelet runs (the host mount namespace: nsenter -t 1 -m), or mount the runtime's root into imagefs's container at the same path; if it is missing on the host too, the runtime reports a directory it never created (containerd 1.6 does when the overlayfs snapshotter has a root_path: upgrade to 2.x or drop root_path)"
		return f
	}
	f.Severity, f.Summary = OK, fmt.Sprintf("%s %s reports %s", res.Runtime.Name, res.Runtime.Version, mp)
	return f
}

func checkCapacity(in Inputs) Finding {
	f := Finding{Check: "imagefs-capacity", Title: "imageFs and containerFs carry capacity and available bytes"}
	img := in.Result.Filesystem(stats.RoleImage)
	if img.Stats != nil && img.Stats.CapacityBytes != nil && img.Stats.AvailableBytes != nil && img.KubeletError == "" {
		f.Severity = OK
		f.Summary = fmt.Sprintf("cadvisor resolves %s to %s at %s", img.Dir, img.Lookup.Device, img.Lookup.Partition.Mountpoint)
		return f
	}
	f.Severity = Fail
	f.Summary = "the kubelet cannot give imageFs a capacity: image GC fails (\"invalid capacity 0 on image filesystem\" or a failed Summary) and imagefs eviction signals are missing"
	if img.KubeletError != "" {
		f.Evidence = append(f.Evidence, "kubelet error: "+img.KubeletError)
	}
	f.Evidence = append(f.Evidence, img.Notes...)
	l := img.Lookup
	switch {
	case l == nil:
		f.Fix = "the runtime gave no usable fs_id; upgrade or reconfigure the runtime so ImageFsInfo names its snapshotter directory"
	case errors.Is(l.Err, fsinfo.ErrStatFailed):
		f.Evidence = append(f.Evidence, "cause: the mountpoint is not visible in this mount namespace")
		f.Fix = "run the kubelet (and imagefs) in the mount namespace where the runtime's root is mounted"
	case errors.Is(l.Err, fsinfo.ErrDeviceNotInPartitionsMap):
		cause := fmt.Sprintf("cause: %s has device %d:%d, which is in no cadvisor partition", img.Dir, l.Major, l.Minor)
		if m := in.Table.MountFor(img.Dir); m != nil {
			cause += fmt.Sprintf("; it is on %s (fs type %s, source %q)", m.Mountpoint, m.FSType, m.Source)
			if fsinfo.Plugin(m.FSType) == "" {
				cause += fmt.Sprintf(": cadvisor has no plugin for %s", m.FSType)
			}
		}
		f.Evidence = append(f.Evidence, cause)
		f.Fix = "put the runtime's root on a filesystem cadvisor handles (ext4, xfs, btrfs, tmpfs, overlay, nfs, zfs) with a /dev/ source, then restart the kubelet (it builds its partition map only at start)"
	case errors.Is(l.Err, fsinfo.ErrNoFsInfo), errors.Is(l.Err, fsinfo.ErrNoPartitionInfo):
		f.Evidence = append(f.Evidence, "cause: "+l.Err.Error())
		f.Fix = "the partition's mountpoint is gone or its statfs fails or hangs: check the mount (df, mount) and the storage behind it"
	default:
		f.Fix = "see imagefs explain imagefs"
	}
	return f
}

func checkSplit(in Inputs) Finding {
	f := Finding{Check: "split-imagefs", Title: "the runtime's and the kubelet's view of a split image filesystem agree"}
	res := in.Result
	img, cfs := res.ImageFsInfo.GetImageFilesystems(), res.ImageFsInfo.GetContainerFilesystems()
	if len(cfs) == 0 || len(img) == 0 || cfs[0].GetFsId().GetMountpoint() == img[0].GetFsId().GetMountpoint() {
		f.Severity, f.Summary = OK, "the runtime reports no separate container filesystem; containerFs = imageFs, as the kubelet assumes"
		return f
	}
	f.Severity = Warn
	f.Summary = fmt.Sprintf("the runtime reports container filesystems at %s, apart from images at %s, but the kubelet's CRI stats provider ignores container_filesystems: containerFs is reported as imageFs and containerfs.* signals watch the image filesystem", cfs[0].GetFsId().GetMountpoint(), img[0].GetFsId().GetMountpoint())
	f.Fix = "with a CRI stats provider (containerd, v1.37) a split image filesystem is not supported; for CRI-O use the legacy cadvisor provider with KubeletSeparateDiskGC, or keep images and containers on one filesystem"
	return f
}

func checkSharedDevice(in Inputs) Finding {
	f := Finding{Check: "shared-device", Title: "imagefs and nodefs: dedicated disk or shared"}
	node, img := in.Result.Filesystem(stats.RoleNode), in.Result.Filesystem(stats.RoleImage)
	if node.Lookup == nil || img.Lookup == nil || node.Lookup.Device == "" || img.Lookup.Device == "" {
		f.Severity, f.Summary = OK, "not determined: a filesystem did not resolve (see the other findings)"
		return f
	}
	if node.Lookup.Device != img.Lookup.Device {
		f.Severity = OK
		f.Summary = fmt.Sprintf("dedicated image filesystem: imagefs on %s, nodefs on %s; nodefs.* pressure evicts pods only, imagefs.* pressure deletes unused containers and images first", img.Lookup.Device, node.Lookup.Device)
		return f
	}
	f.Summary = fmt.Sprintf("imagefs and nodefs share %s: both sets of eviction signals watch the same disk, so imagefs.available<%.0f%% trips before nodefs.available<%.0f%% (DiskPressure at %.0f%% free), and reclaim runs container and image GC before evicting", img.Lookup.Device, in.Thresholds.ImagefsAvailable*100, in.Thresholds.NodefsAvailable*100, in.Thresholds.ImagefsAvailable*100)
	f.Severity = OK
	if s := img.Stats; s != nil && s.CapacityBytes != nil && s.AvailableBytes != nil && *s.CapacityBytes > 0 {
		pct := float64(*s.AvailableBytes) * 100 / float64(*s.CapacityBytes)
		f.Evidence = append(f.Evidence, fmt.Sprintf("available %.1f%% of %d bytes", pct, *s.CapacityBytes))
		if pct < float64(in.Thresholds.ImagefsAvailable*100)+5 {
			f.Severity = Warn
			f.Fix = "free space or give images their own disk; or, if intended, set evictionHard imagefs.available to match nodefs"
		}
	}
	return f
}

func checkAccounting(in Inputs) Finding {
	f := Finding{Check: "usage-accounting", Title: "the runtime's usedBytes accounts for most of its disk use"}
	img := in.Result.Filesystem(stats.RoleImage)
	if in.Usage == nil || img.Dir == "" || img.Stats == nil || img.Stats.UsedBytes == nil {
		f.Severity, f.Summary = OK, "not measured"
		return f
	}
	root := filepath.Dir(img.Dir)
	rootBytes, _, err := in.Usage(root)
	if err != nil {
		f.Severity, f.Summary = OK, fmt.Sprintf("could not measure %s: %v", root, err)
		return f
	}
	used := *img.Stats.UsedBytes
	snapBytes, _, _ := in.Usage(img.Dir)
	contentBytes, _, _ := in.Usage(filepath.Join(root, "io.containerd.content.v1.content"))
	f.Evidence = []string{
		fmt.Sprintf("usedBytes (runtime) %d", used),
		fmt.Sprintf("%s on disk %d (snapshots of every namespace)", img.Dir, snapBytes),
		fmt.Sprintf("content store %d (never counted)", contentBytes),
		fmt.Sprintf("runtime root %s on disk %d", root, rootBytes),
	}
	if rootBytes == 0 || used*2 >= rootBytes || rootBytes-used < in.AccountingMinGap {
		f.Severity = OK
		f.Summary = fmt.Sprintf("usedBytes is %d of the %d bytes under %s", used, rootBytes, root)
		return f
	}
	f.Severity = Warn
	f.Summary = fmt.Sprintf("usedBytes (%d) is under half of what %s holds (%d): the content store, snapshots outside the k8s.io namespace, orphaned snapshots and metadata are not counted", used, root, rootBytes)
	f.Fix = "this is how containerd counts (usedBytes is not what eviction uses; capacity/available come from statfs); to reclaim, remove unused images (crictl rmi --prune) and images in other namespaces (ctr -n NAMESPACE images rm)"
	return f
}

// thresholdMet is the kubelet's test: a percentage threshold resolved
// against capacity, compared strictly with the available value.
func thresholdMet(available, capacity uint64, pct float32) (bool, int64) {
	q := pressure.ResolveThreshold(kubeletconfig.Value{Percentage: pct}, capacity)
	return pressure.ThresholdMet(q, available), q
}

func checkBytePressure(in Inputs) Finding {
	f := Finding{Check: "byte-pressure", Title: "free space above the eviction and image GC thresholds"}
	th := in.Thresholds
	worst := OK
	raise := func(s Severity) {
		if s.rank() > worst.rank() {
			worst = s
		}
	}
	for _, c := range []struct {
		signal string
		fs     *statsapi.FsStats
		pct    float32
	}{
		{"nodefs.available", in.Result.Summary.Node.Fs, th.NodefsAvailable},
		{"imagefs.available", imageStats(in.Result), th.ImagefsAvailable},
	} {
		if c.fs == nil || c.fs.CapacityBytes == nil || c.fs.AvailableBytes == nil {
			continue
		}
		met, q := thresholdMet(*c.fs.AvailableBytes, *c.fs.CapacityBytes, c.pct)
		line := fmt.Sprintf("%s: available %d, threshold %.0f%% = %d bytes", c.signal, *c.fs.AvailableBytes, c.pct*100, q)
		if met {
			raise(Fail)
			line += ": MET, the kubelet reports DiskPressure"
		}
		f.Evidence = append(f.Evidence, line)
	}
	if s := imageStats(in.Result); s != nil && s.AvailableBytes != nil && s.CapacityBytes != nil {
		if usage, ok := pressure.ImageGCUsage(s.AvailableBytes, s.CapacityBytes); ok {
			line := fmt.Sprintf("image GC: usage %d%% (100 - floor(available*100/capacity)), high threshold %d%%", usage, th.ImageGCHighPercent)
			if usage >= th.ImageGCHighPercent {
				raise(Warn)
				toFree := pressure.ImageGCAmountToFree(*s.AvailableBytes, *s.CapacityBytes, th.ImageGCLowPercent)
				line += fmt.Sprintf(": image GC runs now and tries to free %d bytes (to %d%%)", toFree, th.ImageGCLowPercent)
			}
			f.Evidence = append(f.Evidence, line)
		}
	}
	f.Severity = worst
	switch worst {
	case OK:
		f.Summary = "no eviction threshold met and image GC idle (kubelet defaults)"
	case Warn:
		f.Summary = "image GC would run now (kubelet default thresholds)"
		f.Fix = "remove unused images or grow the filesystem before the eviction threshold is reached"
	case Fail:
		f.Summary = "an eviction threshold is met: the kubelet reports DiskPressure and starts reclaiming (kubelet default thresholds)"
		f.Fix = "free space on that filesystem now: unused images (crictl rmi --prune), exited containers, logs; or grow it"
	}
	return f
}

func checkInodePressure(in Inputs) Finding {
	f := Finding{Check: "inode-pressure", Title: "free inodes above the eviction thresholds"}
	th := in.Thresholds
	f.Severity = OK
	for _, c := range []struct {
		signal string
		fs     *statsapi.FsStats
		pct    float32
	}{
		{"nodefs.inodesFree", in.Result.Summary.Node.Fs, th.NodefsInodesFree},
		{"imagefs.inodesFree", imageStats(in.Result), th.ImagefsInodesFree},
	} {
		if c.fs == nil || c.fs.Inodes == nil || c.fs.InodesFree == nil {
			continue
		}
		if *c.fs.Inodes == 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: statfs reports no inode counts (e.g. btrfs); the signal can never trip", c.signal))
			continue
		}
		met, q := thresholdMet(*c.fs.InodesFree, *c.fs.Inodes, c.pct)
		line := fmt.Sprintf("%s: free %d of %d, threshold %.0f%% = %d", c.signal, *c.fs.InodesFree, *c.fs.Inodes, c.pct*100, q)
		if met {
			f.Severity = Fail
			line += ": MET, the kubelet reports DiskPressure"
		}
		f.Evidence = append(f.Evidence, line)
	}
	if f.Severity == Fail {
		f.Summary = "free inodes are below an eviction threshold: DiskPressure"
		f.Fix = "many small files: remove unused images and containers, find the directory holding them (imagefs du), or recreate the filesystem with more inodes"
	} else {
		f.Summary = "free inodes above the kubelet's default thresholds"
	}
	return f
}

func checkStale(in Inputs) Finding {
	f := Finding{Check: "stale-usage", Title: "the runtime's usage numbers are fresh"}
	fss := in.Result.ImageFsInfo.GetImageFilesystems()
	if len(fss) == 0 {
		f.Severity, f.Summary = OK, "no image filesystem"
		return f
	}
	ts := time.Unix(0, fss[0].GetTimestamp())
	age := in.Result.CollectedAt.Sub(ts)
	f.Evidence = []string{fmt.Sprintf("timestamp %s, %.1f s before imagefs asked", ts.UTC().Format(time.RFC3339Nano), max(0, age.Seconds()))}
	if age <= in.StaleAfter {
		f.Severity, f.Summary = OK, fmt.Sprintf("usage is %.0f s old (containerd refreshes every stats_collect_period, 10 s by default)", max(0, age.Seconds()))
		return f
	}
	f.Severity = Warn
	f.Summary = fmt.Sprintf("usage is %.0f s old, older than %s: the runtime's stats collector is slow, stuck or failing", age.Seconds(), in.StaleAfter)
	f.Fix = "check the runtime's log (containerd: \"Failed to sync snapshot stats\" or \"Failed to get usage for snapshot\") and its stats_collect_period"
	return f
}

func checkUnexpectedFs(in Inputs) Finding {
	f := Finding{Check: "unexpected-fs", Title: "kubelet root dir and runtime root on ordinary disk filesystems"}
	f.Severity = OK
	for _, fs := range []*stats.Filesystem{in.Result.Filesystem(stats.RoleNode), in.Result.Filesystem(stats.RoleImage)} {
		if fs == nil || fs.Lookup == nil || fs.Lookup.Partition == nil {
			continue
		}
		p := fs.Lookup.Partition
		switch p.FSType {
		case "tmpfs":
			f.Severity = Warn
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s (%s) is on tmpfs %s: its data is lost on reboot, counts against memory, and capacity is the tmpfs size", fs.Dir, fs.Role, p.Mountpoint))
		case "overlay":
			f.Severity = Warn
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s (%s) is on an overlay mount %s: statfs describes the overlay's upper filesystem, usually a container's, not a disk of the node (docker-in-docker, kind)", fs.Dir, fs.Role, p.Mountpoint))
		default:
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s (%s) on %s (%s)", fs.Dir, fs.Role, p.Device, p.FSType))
		}
	}
	if f.Severity == Warn {
		f.Summary = "a kubelet or runtime directory is on tmpfs or overlay"
		f.Fix = "expected in test and nested setups; on a production node put /var/lib/kubelet and the runtime root on persistent disks"
	} else {
		f.Summary = "both on disk filesystems"
	}
	return f
}

func imageStats(r *stats.Result) *statsapi.FsStats {
	if r.Summary.Node.Runtime == nil {
		return nil
	}
	return r.Summary.Node.Runtime.ImageFs
}
