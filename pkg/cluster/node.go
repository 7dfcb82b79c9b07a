package cluster

import (
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/analyze/pressure"
	"github.com/imagefs/imagefs/pkg/kubelet"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/output"
)

// Status of a node, from worst to best: unreachable, pressure,
// missing-capacity, near-threshold, ok.
type Status string

const (
	StatusOK              Status = "ok"
	StatusNear            Status = "near-threshold"
	StatusMissingCapacity Status = "missing-capacity"
	StatusPressure        Status = "pressure"
	StatusUnreachable     Status = "unreachable"
)

// Report is the cluster view.
type Report struct {
	Source     string     `json:"source"`
	Selector   string     `json:"selector,omitempty"`
	Thresholds Thresholds `json:"thresholds"`
	Totals     Totals     `json:"totals"`
	// Nodes are sorted by imagefs use% descending (unknown last), then name.
	Nodes    []Node   `json:"nodes"`
	Warnings []string `json:"warnings,omitempty"`
}

// Thresholds are what every node was held against.
type Thresholds struct {
	ImageGCHighThresholdPercent int32             `json:"imageGCHighThresholdPercent"`
	EvictionHard                map[string]string `json:"evictionHard"`
	EvictionSoft                map[string]string `json:"evictionSoft,omitempty"`
	NearPoints                  float64           `json:"nearPoints"`
}

// Totals count the nodes by status.
type Totals struct {
	Nodes           int `json:"nodes"`
	OK              int `json:"ok"`
	NearThreshold   int `json:"nearThreshold"`
	MissingCapacity int `json:"missingCapacity"`
	Pressure        int `json:"pressure"`
	Unreachable     int `json:"unreachable"`
}

// AllOK is every node ok.
func (t Totals) AllOK() bool { return t.OK == t.Nodes }

// Fs is one filesystem of a node's Summary; nil is "not reported".
type Fs struct {
	CapacityBytes  *uint64 `json:"capacityBytes"`
	UsedBytes      *uint64 `json:"usedBytes"`
	AvailableBytes *uint64 `json:"availableBytes"`
	Inodes         *uint64 `json:"inodes"`
	InodesFree     *uint64 `json:"inodesFree"`
	InodesUsed     *uint64 `json:"inodesUsed"`
	// UsePercent is image GC's 100 - floor(available*100/capacity), nil
	// without a capacity (or capacity 0).
	UsePercent *int `json:"usePercent"`
}

// ImageGC is where the node stands against image GC's high threshold.
type ImageGC struct {
	HighThresholdPercent int32 `json:"highThresholdPercent"`
	// UsagePercent is the image GC manager's usagePercent, nil when it
	// fails with Error.
	UsagePercent *int `json:"usagePercent"`
	// PointsToHigh is high - usage: percentage points of capacity left
	// before image GC starts deleting images; 0 or less means it does now.
	PointsToHigh *int   `json:"pointsToHigh"`
	Runs         bool   `json:"runs"`
	Disabled     bool   `json:"disabled,omitempty"`
	Error        string `json:"error,omitempty"`
}

// FetchError is why a node has no data; Err is the *kubelet.Error.
type FetchError struct {
	// Kind is the pkg/kubelet sentinel's text ("timed out", "server
	// error", ...), "" when none applies.
	Kind       string `json:"kind,omitempty"`
	StatusCode int    `json:"statusCode,omitempty"`
	URL        string `json:"url"`
	Message    string `json:"message"`
	Hint       string `json:"hint,omitempty"`
	Err        error  `json:"-"`
}

// Node is one row of the view.
type Node struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reasons say why the status is what it is, worst first, then notes.
	Reasons []string `json:"reasons,omitempty"`
	// Source is where the numbers came from: SourceSummary (the kubelet)
	// or SourceExporter.
	Source  string `json:"source"`
	ImageFs *Fs    `json:"imageFs,omitempty"`
	// ContainerFs is set only when it differs from ImageFs (split).
	ContainerFs *Fs `json:"containerFs,omitempty"`
	NodeFs      *Fs `json:"nodeFs,omitempty"`
	// Missing lists the Summary fields the kubelet left out, by path.
	Missing  []string                    `json:"missing,omitempty"`
	ImageGC  *ImageGC                    `json:"imageGC,omitempty"`
	Eviction *pressure.SummaryEvaluation `json:"eviction,omitempty"`
	// Nearest is the eviction threshold with the least headroom.
	Nearest *pressure.SummarySignal `json:"nearestEviction,omitempty"`
	// DiskPressureCondition and Ready are the Node's own conditions
	// (True, False, Unknown), "" when the node was not listed.
	DiskPressureCondition string         `json:"diskPressureCondition,omitempty"`
	Ready                 string         `json:"ready,omitempty"`
	Doctor                *doctor.Report `json:"doctor,omitempty"`
	Error                 *FetchError    `json:"error,omitempty"`
}

func thresholdsOf(s *kubeletconfig.Settings, near float64) Thresholds {
	return Thresholds{ImageGCHighThresholdPercent: s.ImageGCHighThresholdPercent, EvictionHard: fsOnly(s.EvictionHard), EvictionSoft: fsOnly(s.EvictionSoft), NearPoints: near}
}

// fsOnly drops memory and pid signals, which the view does not evaluate.
func fsOnly(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		switch k {
		case "memory.available", "allocatableMemory.available", "pid.available":
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

func errorRow(ref nodeRef, source string, err error) Node {
	n := Node{Name: ref.name, Status: StatusUnreachable, Source: source, DiskPressureCondition: ref.diskPressure, Ready: ref.ready}
	n.Error = fetchError(err)
	n.Reasons = []string{n.Error.short()}
	return n
}

// fetchError takes the parts of a *kubelet.Error apart.
func fetchError(err error) *FetchError {
	fe := &FetchError{Err: err, Message: err.Error()}
	var ke *kubelet.Error
	if errors.As(err, &ke) {
		fe.URL, fe.StatusCode, fe.Hint = ke.URL, ke.StatusCode, ke.Hint
		if ke.Kind != nil {
			fe.Kind = ke.Kind.Error()
		}
		switch {
		case ke.Message != "":
			fe.Message = ke.Message
		case ke.Err != nil:
			fe.Message = ke.Err.Error()
		}
	}
	return fe
}

// short is the error in one line without the URL.
func (e *FetchError) short() string {
	s := e.Message
	if e.StatusCode != 0 {
		s = fmt.Sprintf("HTTP %d: %s", e.StatusCode, s)
	}
	if e.Kind != "" {
		s = e.Kind + ": " + s
	}
	return s
}

// Long is the error with its hint.
func (e *FetchError) Long() string {
	if e.Hint == "" {
		return e.short()
	}
	return e.short() + "; " + e.Hint
}

func conditionOf(n *corev1.Node, t corev1.NodeConditionType) string {
	if n == nil {
		return ""
	}
	for _, c := range n.Status.Conditions {
		if c.Type == t {
			return string(c.Status)
		}
	}
	return ""
}

func fsRow(f *statsapi.FsStats) *Fs {
	if f == nil {
		return nil
	}
	r := &Fs{CapacityBytes: f.CapacityBytes, UsedBytes: f.UsedBytes, AvailableBytes: f.AvailableBytes, Inodes: f.Inodes, InodesFree: f.InodesFree, InodesUsed: f.InodesUsed}
	if f.CapacityBytes != nil {
		if u, ok := pressure.ImageGCUsage(f.AvailableBytes, f.CapacityBytes); ok {
			r.UsePercent = &u
		}
	}
	return r
}

// missing lists f's absent fields under path.
func missing(path string, f *statsapi.FsStats) []string {
	if f == nil {
		return []string{path}
	}
	var out []string
	for _, x := range []struct {
		name string
		v    *uint64
	}{
		{"capacityBytes", f.CapacityBytes}, {"availableBytes", f.AvailableBytes}, {"usedBytes", f.UsedBytes},
		{"inodes", f.Inodes}, {"inodesFree", f.InodesFree}, {"inodesUsed", f.InodesUsed},
	} {
		if x.v == nil {
			out = append(out, path+"."+x.name)
		}
	}
	return out
}

// analyze reduces a Summary to its row under settings.
// thresholds are settings.Thresholds(), parsed once for every node.
func analyze(ref nodeRef, s *statsapi.Summary, settings *kubeletconfig.Settings, thresholds []kubeletconfig.Threshold, near float64) Node {
	n := Node{Name: ref.name, Source: SourceSummary, DiskPressureCondition: ref.diskPressure, Ready: ref.ready}
	var imageFs, containerFs *statsapi.FsStats
	if rt := s.Node.Runtime; rt != nil {
		imageFs, containerFs = rt.ImageFs, rt.ContainerFs
	}
	n.ImageFs, n.NodeFs = fsRow(imageFs), fsRow(s.Node.Fs)
	n.Missing = append(missing("node.fs", s.Node.Fs), missing("node.runtime.imageFs", imageFs)...)
	if containerFs != nil && !pressure.SameFs(imageFs, containerFs) {
		n.ContainerFs = fsRow(containerFs)
		n.Missing = append(n.Missing, missing("node.runtime.containerFs", containerFs)...)
	}

	var pressureWhy, missingWhy, nearWhy []string

	// Eviction thresholds.
	ev := pressure.EvaluateSummaryThresholds(s, thresholds)
	n.Eviction = ev
	if nearest := ev.Nearest(); nearest != nil {
		c := *nearest
		n.Nearest = &c
	}
	for _, sig := range ev.Signals {
		switch {
		case sig.Met:
			pressureWhy = append(pressureWhy, fmt.Sprintf("%s<%s met%s: %s available, threshold %s (DiskPressure)",
				sig.Signal, sig.Configured, softNote(sig.Kind), amount(sig.Observed, sig.Signal), amount(uint64(max(sig.Threshold, 0)), sig.Signal)))
		case sig.HeadroomPoints <= near:
			nearWhy = append(nearWhy, fmt.Sprintf("%s<%s%s: %.1f points of headroom", sig.Signal, sig.Configured, softNote(sig.Kind), sig.HeadroomPoints))
		}
	}
	if n.DiskPressureCondition == string(corev1.ConditionTrue) && !ev.Met() {
		pressureWhy = append(pressureWhy, "Node condition DiskPressure=True, though no threshold assumed here is met (the node's kubelet config differs, or a minimum reclaim holds it)")
	}

	// Image GC.
	gc := &ImageGC{HighThresholdPercent: settings.ImageGCHighThresholdPercent}
	gc.Disabled = settings.ImageGCHighThresholdPercent == 100 && settings.ImageMaximumGCAge == 0
	var capacity, available *uint64
	if imageFs != nil {
		capacity, available = imageFs.CapacityBytes, imageFs.AvailableBytes
	}
	if u, ok := pressure.ImageGCUsage(available, capacity); ok {
		d := int(settings.ImageGCHighThresholdPercent) - u
		gc.UsagePercent, gc.PointsToHigh = &u, &d
		gc.Runs = !gc.Disabled && d <= 0
		switch {
		case gc.Disabled:
		case gc.Runs:
			// Under way, so before the distances.
			nearWhy = append([]string{fmt.Sprintf("image GC runs: usage %d%% >= high %d%%", u, gc.HighThresholdPercent)}, nearWhy...)
		case float64(d) <= near:
			nearWhy = append(nearWhy, fmt.Sprintf("image GC in %d points: usage %d%%, high %d%%", d, u, gc.HighThresholdPercent))
		}
	} else {
		gc.Error = "invalid capacity 0 on image filesystem"
		what := "node.runtime.imageFs missing"
		switch {
		case imageFs != nil && capacity == nil:
			what = "imageFs.capacityBytes missing"
		case imageFs != nil:
			what = "imageFs.capacityBytes is 0"
		}
		missingWhy = append(missingWhy, what+`: image GC fails "invalid capacity 0 on image filesystem", imagefs eviction skipped`)
	}
	n.ImageGC = gc
	if s.Node.Fs == nil || s.Node.Fs.CapacityBytes == nil || *s.Node.Fs.CapacityBytes == 0 {
		missingWhy = append(missingWhy, "node.fs.capacityBytes missing: nodefs eviction skipped")
	}

	switch {
	case len(pressureWhy) > 0:
		n.Status = StatusPressure
	case len(missingWhy) > 0:
		n.Status = StatusMissingCapacity
	case len(nearWhy) > 0:
		n.Status = StatusNear
	default:
		n.Status = StatusOK
	}
	n.Reasons = append(append(append(n.Reasons, pressureWhy...), missingWhy...), nearWhy...)
	return n
}

func softNote(kind string) string {
	if kind == "soft" {
		return " (soft)"
	}
	return ""
}

// amount formats an observation: bytes for .available, inodes otherwise.
func amount(v uint64, signal string) string {
	if len(signal) > len(".available") && signal[len(signal)-len(".available"):] == ".available" {
		return output.HumanBytes(v)
	}
	return fmt.Sprintf("%d inodes", v)
}

// addDoctor notes the exporter's warn and fail findings.
func addDoctor(n *Node) {
	if n.Doctor == nil {
		return
	}
	fs := append([]doctor.Finding(nil), n.Doctor.Findings...)
	sort.SliceStable(fs, func(i, j int) bool { return rank(fs[i].Severity) > rank(fs[j].Severity) })
	for _, f := range fs {
		if f.Severity == doctor.OK {
			continue
		}
		n.Reasons = append(n.Reasons, fmt.Sprintf("doctor %s %s: %s", f.Severity, f.Check, f.Summary))
	}
}

func rank(s doctor.Severity) int {
	switch s {
	case doctor.Fail:
		return 2
	case doctor.Warn:
		return 1
	}
	return 0
}
