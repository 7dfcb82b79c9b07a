package exporter

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/analyze/pressure"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/stats"
)

const namespace = "imagefs"

// Metric describes one metric the exporter emits; docs/metrics.md is
// generated from these.
type Metric struct {
	Name   string
	Type   string // gauge or counter
	Help   string
	Labels []string

	desc *prometheus.Desc
	vt   prometheus.ValueType
}

func newMetric(subsystem, name string, vt prometheus.ValueType, help string, labels ...string) *Metric {
	fq := prometheus.BuildFQName(namespace, subsystem, name)
	typ := "gauge"
	if vt == prometheus.CounterValue {
		typ = "counter"
	}
	m := &Metric{Name: fq, Type: typ, Help: help, Labels: labels, vt: vt, desc: prometheus.NewDesc(fq, help, labels, nil)}
	allMetrics = append(allMetrics, m)
	return m
}

// must builds a const metric; label values are always as many as labels.
func (m *Metric) must(v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(m.desc, m.vt, v, labels...)
}

var allMetrics []*Metric

// Metrics returns every metric the exporter can emit, sorted by name.
func Metrics() []Metric {
	out := make([]Metric, 0, len(allMetrics))
	for _, m := range allMetrics {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

const (
	gauge   = prometheus.GaugeValue
	counter = prometheus.CounterValue
)

// Label sets.
var fsLabels = []string{"role", "device", "mountpoint"}

// Filesystems: the Summary API's node.fs, node.runtime.imageFs and
// node.runtime.containerFs, one series per role.
var (
	mFsCapacity = newMetric("filesystem", "capacity_bytes", gauge,
		"capacityBytes the kubelet reports for the filesystem (statfs f_blocks*f_frsize of the partition cadvisor resolves); absent when the kubelet omits it.", fsLabels...)
	mFsAvailable = newMetric("filesystem", "available_bytes", gauge,
		"availableBytes the kubelet reports (statfs f_bavail*f_frsize), the eviction signals' observation; absent when the kubelet omits it.", fsLabels...)
	mFsUsed = newMetric("filesystem", "used_bytes", gauge,
		"Used bytes: source=\"runtime\" is the CRI ImageFsInfo usedBytes the kubelet reports for imageFs/containerFs, source=\"statfs\" is capacity minus free of the whole filesystem (node.fs usedBytes).", append(fsLabels, "source")...)
	mFsInodes = newMetric("filesystem", "inodes", gauge,
		"inodes the kubelet reports (statfs f_files); absent when the kubelet omits it.", fsLabels...)
	mFsInodesFree = newMetric("filesystem", "inodes_free", gauge,
		"inodesFree the kubelet reports (statfs f_ffree); absent when the kubelet omits it.", fsLabels...)
	mFsInodesUsed = newMetric("filesystem", "inodes_used", gauge,
		"Used inodes: source=\"runtime\" is the CRI ImageFsInfo inodesUsed, source=\"statfs\" is inodes minus inodes free of the whole filesystem.", append(fsLabels, "source")...)
	mFsInfo = newMetric("filesystem", "info", gauge,
		"Always 1: the directory the kubelet resolves for the role (--root-dir, or the runtime's fsId mountpoint), and the cadvisor device, mountpoint and fs type it resolves to (empty when the lookup failed).", "role", "device", "mountpoint", "fstype", "dir")
	mFsCapacityMissing = newMetric("filesystem", "capacity_missing", gauge,
		"1 when the kubelet would report the filesystem without capacityBytes (image GC then fails with \"invalid capacity 0 on image filesystem\" and the eviction signals on it are skipped), else 0.", "role")
	mFsStatsFailure = newMetric("filesystem", "stats_failure", gauge,
		"1 when the kubelet's stats code would fail on this filesystem, failing its whole Summary API (/stats/summary answers HTTP 500), else 0.", "role")
	mRuntimeUsageTimestamp = newMetric("runtime", "usage_timestamp_seconds", gauge,
		"Time of the runtime's ImageFsInfo usage sample (the Summary's time for imageFs/containerFs), Unix seconds; its age shows how stale usedBytes is.", "role")
)

// Runtime.
var (
	mRuntimeUp = newMetric("runtime", "up", gauge,
		"1 when the last collection got its answers from the container runtime (CRI Version and ImageFsInfo), else 0.")
	mRuntimeInfo = newMetric("runtime", "info", gauge,
		"Always 1: the container runtime of the last good collection, its CRI endpoint and version.", "name", "version", "api_version", "endpoint")
)

// Eviction signals, as the kubelet's eviction manager evaluates them.
var (
	mEvictionThresholdBytes = newMetric("eviction", "threshold_bytes", gauge,
		"Eviction threshold of a byte signal (nodefs/imagefs/containerfs.available) resolved against capacity as the kubelet does; kind is hard or soft.", "signal", "kind")
	mEvictionThresholdInodes = newMetric("eviction", "threshold_inodes", gauge,
		"Eviction threshold of an inode signal (*.inodesFree) resolved against the inode count as the kubelet does; kind is hard or soft.", "signal", "kind")
	mEvictionHeadroomBytes = newMetric("eviction", "headroom_bytes", gauge,
		"Bytes that can still be used before the threshold is met: observed available minus threshold; negative once met.", "signal", "kind")
	mEvictionHeadroomInodes = newMetric("eviction", "headroom_inodes", gauge,
		"Inodes that can still be used before the threshold is met: observed inodesFree minus threshold; negative once met.", "signal", "kind")
	mEvictionThresholdMet = newMetric("eviction", "threshold_met", gauge,
		"1 when the threshold is met (threshold > observed, strictly), else 0; any met threshold, soft ones before their grace period too, sets DiskPressure.", "signal", "kind")
	mDiskPressure = newMetric("", "disk_pressure", gauge,
		"1 when the kubelet would report the DiskPressure node condition with these settings, else 0.")
	mKubeletConfigInfo = newMetric("kubelet", "config_info", gauge,
		"Always 1: where the kubelet settings behind the eviction and image GC metrics come from: file (--kubelet-config), kubelet (the running kubelet's command line) or defaults (kubelet v1.37 defaults).", "source")
)

// Image garbage collection.
var (
	mImageGCHigh = newMetric("image_gc", "high_threshold_ratio", gauge,
		"imageGCHighThresholdPercent / 100: image GC runs when the image filesystem's usage reaches it.")
	mImageGCLow = newMetric("image_gc", "low_threshold_ratio", gauge,
		"imageGCLowThresholdPercent / 100: image GC frees space down to this usage.")
	mImageGCUsage = newMetric("image_gc", "usage_ratio", gauge,
		"The image filesystem's usage as image GC computes it, (100 - floor(available*100/capacity)) / 100; absent without capacity.")
	mImageGCToFree = newMetric("image_gc", "amount_to_free_bytes", gauge,
		"Bytes image GC would try to free now: capacity*(100-low)/100 - available when usage >= the high threshold, else 0; absent without capacity.")
)

// Collection and health.
var (
	mCollectionDuration = newMetric("collection", "duration_seconds", gauge,
		"Duration of the last collection attempt (runtime calls, mount table, stat and statfs).")
	mCollectionTimestamp = newMetric("collection", "timestamp_seconds", gauge,
		"Time of the last successful collection, Unix seconds; every other metric but the collection counters is from it. Absent until one succeeded.")
	mCollectionSuccess = newMetric("collection", "success", gauge,
		"1 when the last collection attempt succeeded, else 0 (the metrics then are those of the last good collection).")
	mCollectionsTotal = newMetric("", "collections_total", counter,
		"Collections attempted since the exporter started.")
	mCollectionErrors = newMetric("collection", "errors_total", counter,
		"Collections that failed since the exporter started (runtime unreachable, unreadable mount table, ...).")
	mMountStuck = newMetric("mount", "stuck", gauge,
		"1 while a stat or statfs on this path has not returned within its deadline; it is skipped, not retried, until the call returns. 0 for every other path statfs was taken of.", "mountpoint")
	mDoctorFindings = newMetric("doctor", "findings", gauge,
		"imagefs doctor's checks on the last good collection (kubelet default thresholds, no directory walks): 1 for the check's severity (ok, warn or fail), 0 for the other two.", "check", "severity")
)

// fsLabelValues are role, device and mountpoint of a filesystem.
func fsLabelValues(f *stats.Filesystem) []string {
	device, mountpoint := "", ""
	if l := f.Lookup; l != nil {
		device = l.Device
		if l.Partition != nil {
			mountpoint = l.Partition.Mountpoint
		}
	}
	return []string{f.Role, device, mountpoint}
}

func with(labels []string, more ...string) []string {
	return append(append(make([]string, 0, len(labels)+len(more)), labels...), more...)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// snapshotMetrics are the metrics of one good collection.
func snapshotMetrics(s *Snapshot) []prometheus.Metric {
	var out []prometheus.Metric
	add := func(m prometheus.Metric) { out = append(out, m) }
	res := s.Result
	for _, f := range res.Filesystems {
		lv := fsLabelValues(f)
		fstype := ""
		if f.Lookup != nil && f.Lookup.Partition != nil {
			fstype = f.Lookup.Partition.FSType
		}
		add(mFsInfo.must(1, with(lv, fstype, f.Dir)...))
		add(mFsCapacityMissing.must(bool01(f.Stats == nil || f.Stats.CapacityBytes == nil), f.Role))
		add(mFsStatsFailure.must(bool01(f.KubeletError != ""), f.Role))
		if st := f.Stats; st != nil {
			for _, g := range []struct {
				m *Metric
				v *uint64
			}{
				{mFsCapacity, st.CapacityBytes},
				{mFsAvailable, st.AvailableBytes},
				{mFsInodes, st.Inodes},
				{mFsInodesFree, st.InodesFree},
			} {
				if g.v != nil {
					add(g.m.must(float64(*g.v), lv...))
				}
			}
			if f.Role != stats.RoleNode {
				// imageFs/containerFs usedBytes and inodesUsed are the runtime's.
				if st.UsedBytes != nil {
					add(mFsUsed.must(float64(*st.UsedBytes), with(lv, "runtime")...))
				}
				if st.InodesUsed != nil {
					add(mFsInodesUsed.must(float64(*st.InodesUsed), with(lv, "runtime")...))
				}
				if !st.Time.IsZero() {
					add(mRuntimeUsageTimestamp.must(float64(st.Time.UnixNano())/1e9, f.Role))
				}
			}
		}
		if l := f.Lookup; l != nil && l.Info != nil {
			add(mFsUsed.must(float64(l.Info.Usage()), with(lv, "statfs")...))
			if l.Info.Inodes != nil && l.Info.InodesFree != nil {
				add(mFsInodesUsed.must(float64(*l.Info.Inodes-*l.Info.InodesFree), with(lv, "statfs")...))
			}
		}
	}
	add(mRuntimeInfo.must(1, res.Runtime.Name, res.Runtime.Version, res.Runtime.RuntimeAPIVersion, res.Runtime.Endpoint.URL))

	if p := s.Pressure; p != nil {
		for _, sig := range p.Signals {
			if sig.Observed == nil {
				continue // the kubelet skips a signal without observation
			}
			threshold, headroom := mEvictionThresholdBytes, mEvictionHeadroomBytes
			if sig.Unit == "inodes" {
				threshold, headroom = mEvictionThresholdInodes, mEvictionHeadroomInodes
			}
			for _, th := range []*pressure.Threshold{sig.Threshold, sig.Soft} {
				if th == nil {
					continue
				}
				add(threshold.must(float64(th.Resolved), sig.Signal, th.Kind))
				add(headroom.must(float64(th.Headroom), sig.Signal, th.Kind))
				add(mEvictionThresholdMet.must(bool01(th.Met), sig.Signal, th.Kind))
			}
		}
		add(mDiskPressure.must(bool01(p.DiskPressure)))
	}
	if set := s.Settings; set != nil {
		add(mImageGCHigh.must(float64(set.ImageGCHighThresholdPercent) / 100))
		add(mImageGCLow.must(float64(set.ImageGCLowThresholdPercent) / 100))
		if img := res.Filesystem(stats.RoleImage); img != nil {
			if usage, toFree, ok := ImageGC(img.Stats, set); ok {
				add(mImageGCUsage.must(float64(usage) / 100))
				add(mImageGCToFree.must(float64(toFree)))
			}
		}
	}
	if d := s.Doctor; d != nil {
		for _, f := range d.Findings {
			for _, sev := range []doctor.Severity{doctor.OK, doctor.Warn, doctor.Fail} {
				add(mDoctorFindings.must(bool01(f.Severity == sev), f.Check, string(sev)))
			}
		}
	}
	return out
}

// ImageGC is the kubelet image GC manager's arithmetic on the image
// filesystem (GarbageCollect, pkg/kubelet/images/image_gc_manager.go):
// usage = 100 - floor(available*100/capacity), available capped at
// capacity, and when usage >= the high threshold it frees
// capacity*(100-low)/100 - available. ok is false without capacity (the
// kubelet fails with "invalid capacity 0 on image filesystem").
func ImageGC(fs *statsapi.FsStats, s *kubeletconfig.Settings) (usagePercent int, amountToFree int64, ok bool) {
	if fs == nil {
		return 0, 0, false
	}
	usagePercent, ok = pressure.ImageGCUsage(fs.AvailableBytes, fs.CapacityBytes)
	if !ok {
		return 0, 0, false
	}
	if usagePercent >= int(s.ImageGCHighThresholdPercent) {
		var available uint64 // nil counts as 0, as the kubelet's nil pointers do
		if fs.AvailableBytes != nil {
			available = *fs.AvailableBytes
		}
		amountToFree = pressure.ImageGCAmountToFree(available, *fs.CapacityBytes, int(s.ImageGCLowThresholdPercent))
	}
	return usagePercent, amountToFree, true
}
