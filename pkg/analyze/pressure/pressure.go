// Package pressure evaluates the kubelet's filesystem eviction signals on a
// stats collection: observations as makeSignalObservations takes them,
// thresholds as ParseThresholdConfig and UpdateContainerFsThresholds make
// them, "met" as thresholdsMet decides it, and the reclaim the eviction
// manager would try first (buildSignalToNodeReclaimFuncs).
package pressure

import (
	"fmt"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/stats"
)

// Threshold is one configured threshold resolved against a capacity.
type Threshold struct {
	Kind        string `json:"kind"` // hard or soft
	Configured  string `json:"configured"`
	Resolved    int64  `json:"resolved"`
	GracePeriod string `json:"gracePeriod,omitempty"`
	MinReclaim  string `json:"minReclaim,omitempty"`
	Met         bool   `json:"met"`
	// Headroom is observed - resolved: how much can still be used before
	// the threshold is met (negative once met).
	Headroom        int64   `json:"headroom"`
	HeadroomPercent float64 `json:"headroomPercent"`
	Source          string  `json:"source"`
}

// Signal is one eviction signal with its observation and thresholds.
type Signal struct {
	Signal string `json:"signal"`
	// Filesystem is the Summary API filesystem observed.
	Filesystem string  `json:"filesystem"`
	Unit       string  `json:"unit"` // bytes or inodes
	Observed   *uint64 `json:"observed"`
	Capacity   *uint64 `json:"capacity"`
	// Threshold is the hard threshold, Soft the soft one; either may be nil.
	Threshold *Threshold `json:"threshold"`
	Soft      *Threshold `json:"soft,omitempty"`
	Headroom  *int64     `json:"headroom"`
	Met       bool       `json:"met"`
	Source    string     `json:"source"`
	// Missing says why there is no observation (the kubelet then skips
	// the threshold: "no observation found for eviction signal").
	Missing string `json:"missing,omitempty"`
	// Reclaim lists what the kubelet does when this signal is met, in order.
	Reclaim []string `json:"reclaim"`
	// RateBytesPerSecond and TimeToPressure come from two samples (--watch).
	RatePerSecond  *float64 `json:"ratePerSecond,omitempty"`
	TimeToPressure string   `json:"timeToPressure,omitempty"`
}

// Report is the evaluation of every filesystem signal.
type Report struct {
	NodeName string    `json:"nodeName"`
	Time     time.Time `json:"time"`
	// DedicatedImageFs is the kubelet's HasDedicatedImageFs: imagefs on
	// another device than nodefs.
	DedicatedImageFs *bool  `json:"dedicatedImageFs"`
	Layout           string `json:"layout"`
	// LayoutError is set when the kubelet cannot decide the layout; its
	// eviction manager then skips every cycle.
	LayoutError  string                  `json:"layoutError,omitempty"`
	DiskPressure bool                    `json:"diskPressure"`
	FirstToTrip  string                  `json:"firstToTrip,omitempty"`
	Signals      []Signal                `json:"signals"`
	Settings     *kubeletconfig.Settings `json:"settings"`
	Notes        []string                `json:"notes,omitempty"`
}

var signalOrder = []struct{ name, role, unit string }{
	{kubeletconfig.NodeFsAvailable, stats.RoleNode, "bytes"},
	{kubeletconfig.NodeFsInodesFree, stats.RoleNode, "inodes"},
	{kubeletconfig.ImageFsAvailable, stats.RoleImage, "bytes"},
	{kubeletconfig.ImageFsInodesFree, stats.RoleImage, "inodes"},
	{kubeletconfig.ContainerFsAvailable, stats.RoleContainer, "bytes"},
	{kubeletconfig.ContainerFsInodesFree, stats.RoleContainer, "inodes"},
}

var summaryPath = map[string]string{stats.RoleNode: "node.fs", stats.RoleImage: "node.runtime.imageFs", stats.RoleContainer: "node.runtime.containerFs"}

// Evaluate computes every filesystem signal of a collection under settings.
func Evaluate(res *stats.Result, s *kubeletconfig.Settings) (*Report, error) {
	all, err := s.Thresholds()
	if err != nil {
		return nil, err
	}
	r := &Report{NodeName: res.Summary.Node.NodeName, Time: res.CollectedAt, Settings: s}

	node, img := res.Filesystem(stats.RoleNode), res.Filesystem(stats.RoleImage)
	var dedicated bool
	switch {
	case img.KubeletError != "" || node.KubeletError != "":
		r.LayoutError = "the kubelet cannot resolve both filesystems, so HasDedicatedImageFs fails and the eviction manager skips every cycle (\"Eviction manager: failed to get HasDedicatedImageFs\"): no disk or memory eviction happens until it resolves"
	case img.Lookup == nil || img.Lookup.Device == "":
		r.LayoutError = "imagefs device is not found: the eviction manager skips every cycle"
	default:
		dedicated = img.Lookup.Device != node.Lookup.Device
		r.DedicatedImageFs = &dedicated
	}
	// With a CRI stats provider containerFs is imageFs: never split.
	const split = false
	switch {
	case r.DedicatedImageFs == nil:
		r.Layout = "unknown"
	case dedicated:
		r.Layout = fmt.Sprintf("dedicated image filesystem (%s apart from nodefs %s); containerfs thresholds copied from imagefs", img.Lookup.Device, node.Lookup.Device)
	default:
		r.Layout = fmt.Sprintf("imagefs shares nodefs's filesystem %s; containerfs thresholds copied from nodefs, and imagefs thresholds apply to the same disk", node.Lookup.Device)
	}
	all = containerFsThresholds(all, dedicated, split, &r.Notes)

	minPct := 1e18
	for _, o := range signalOrder {
		sig := Signal{Signal: o.name, Filesystem: summaryPath[o.role], Unit: o.unit, Reclaim: reclaim(o.name, dedicated, split)}
		fs := fsOf(res, o.role)
		sig.Observed, sig.Capacity = observe(fs, o.unit)
		if sig.Observed == nil || sig.Capacity == nil {
			sig.Missing = fmt.Sprintf("%s has no %s; the kubelet skips this signal", sig.Filesystem, map[string]string{"bytes": "availableBytes/capacityBytes", "inodes": "inodesFree/inodes"}[o.unit])
		}
		for _, t := range all {
			if t.Signal != o.name {
				continue
			}
			th := resolve(t, sig.Observed, sig.Capacity)
			if t.Hard {
				sig.Threshold = th
			} else {
				sig.Soft = th
			}
		}
		if th := sig.Threshold; th != nil {
			sig.Source = th.Source
			if sig.Observed != nil {
				h := th.Headroom
				sig.Headroom = &h
				if th.HeadroomPercent < minPct {
					minPct, r.FirstToTrip = th.HeadroomPercent, o.name
				}
			}
		} else if sig.Soft != nil {
			sig.Source = sig.Soft.Source
		}
		sig.Met = (sig.Threshold != nil && sig.Threshold.Met) || (sig.Soft != nil && sig.Soft.Met)
		// Node conditions come from every met threshold, soft ones before
		// their grace period too (eviction_manager.go synchronize).
		r.DiskPressure = r.DiskPressure || sig.Met
		r.Signals = append(r.Signals, sig)
	}
	if r.LayoutError != "" {
		r.DiskPressure = false
		r.Notes = append(r.Notes, "with the layout undecided the kubelet evaluates no signal, so it reports no DiskPressure even where a threshold is crossed")
	}
	return r, nil
}

func fsOf(res *stats.Result, role string) *statsapi.FsStats {
	switch role {
	case stats.RoleNode:
		return res.Summary.Node.Fs
	case stats.RoleImage:
		if res.Summary.Node.Runtime != nil {
			return res.Summary.Node.Runtime.ImageFs
		}
	case stats.RoleContainer:
		if res.Summary.Node.Runtime != nil {
			return res.Summary.Node.Runtime.ContainerFs
		}
	}
	return nil
}

// observe is makeSignalObservations: available and capacity, only when both
// are reported.
func observe(fs *statsapi.FsStats, unit string) (*uint64, *uint64) {
	if fs == nil {
		return nil, nil
	}
	if unit == "bytes" {
		if fs.AvailableBytes != nil && fs.CapacityBytes != nil {
			return fs.AvailableBytes, fs.CapacityBytes
		}
		return nil, nil
	}
	if fs.InodesFree != nil && fs.Inodes != nil {
		return fs.InodesFree, fs.Inodes
	}
	return nil, nil
}

// resolve is GetThresholdQuantity plus thresholdsMet (threshold > available).
// The kubelet adds minReclaim to a threshold that is already met; imagefs
// cannot know that state and evaluates the plain threshold.
func resolve(t kubeletconfig.Threshold, observed, capacity *uint64) *Threshold {
	th := &Threshold{Kind: "hard", Configured: t.Configured, Source: t.Source, MinReclaim: t.MinReclaimConfigured}
	if !t.Hard {
		th.Kind, th.GracePeriod = "soft", t.GracePeriod.String()
	}
	if capacity == nil || observed == nil {
		if t.Value.Quantity != nil {
			th.Resolved = t.Value.Quantity.Value()
		}
		return th
	}
	th.Resolved = t.Value.Resolve(int64(*capacity))
	th.Met = th.Resolved > int64(*observed)
	th.Headroom = int64(*observed) - th.Resolved
	if *capacity > 0 {
		th.HeadroomPercent = float64(th.Headroom) * 100 / float64(*capacity)
	}
	return th
}

// containerFsThresholds is UpdateContainerFsThresholds: user-set containerfs
// thresholds are replaced by copies of nodefs's (shared disk, or split) or
// imagefs's (dedicated image filesystem).
func containerFsThresholds(in []kubeletconfig.Threshold, dedicated, split bool, notes *[]string) []kubeletconfig.Threshold {
	from := "nodefs"
	if dedicated && !split {
		from = "imagefs"
	}
	var out []kubeletconfig.Threshold
	for _, t := range in {
		if t.Signal == kubeletconfig.ContainerFsAvailable || t.Signal == kubeletconfig.ContainerFsInodesFree {
			*notes = append(*notes, fmt.Sprintf("%s %s threshold %q is ignored: the kubelet replaces containerfs thresholds with copies of %s's", t.Signal, kindOf(t), t.Configured, from))
			continue
		}
		out = append(out, t)
	}
	for _, t := range in {
		var sig string
		switch t.Signal {
		case from + ".available":
			sig = kubeletconfig.ContainerFsAvailable
		case from + ".inodesFree":
			sig = kubeletconfig.ContainerFsInodesFree
		default:
			continue
		}
		c := t
		c.Signal = sig
		c.Source = fmt.Sprintf("copied from %s (%s)", t.Signal, t.Source)
		out = append(out, c)
	}
	return out
}

func kindOf(t kubeletconfig.Threshold) string {
	if t.Hard {
		return "hard"
	}
	return "soft"
}

// reclaim is buildSignalToNodeReclaimFuncs for containerd (never split),
// followed by pod eviction when reclaim does not suffice.
func reclaim(signal string, dedicated, split bool) []string {
	const (
		containers = "delete unused containers (container GC)"
		images     = "delete every unused image older than imageMinimumGCAge (image GC, DeleteUnusedImages)"
		evict      = "evict pods ranked by their use of this resource"
	)
	var fs string
	switch signal {
	case kubeletconfig.NodeFsAvailable, kubeletconfig.NodeFsInodesFree:
		fs = "nodefs"
	case kubeletconfig.ImageFsAvailable, kubeletconfig.ImageFsInodesFree:
		fs = "imagefs"
	default:
		fs = "containerfs"
	}
	switch {
	case !dedicated:
		return []string{containers, images, evict}
	case dedicated && !split && fs == "nodefs":
		return []string{evict}
	case dedicated && !split:
		return []string{containers, images, evict}
	case fs == "imagefs":
		return []string{images, evict}
	default:
		return []string{containers, evict}
	}
}

// AddRates fills rate and time to pressure from an earlier sample of the
// same node: the change of each observed value per second, and how long the
// headroom lasts at that rate.
func (r *Report) AddRates(prev *Report) {
	dt := r.Time.Sub(prev.Time).Seconds()
	if dt <= 0 {
		return
	}
	for i := range r.Signals {
		cur, old := &r.Signals[i], prev.Signals[i]
		if cur.Observed == nil || old.Observed == nil {
			continue
		}
		rate := (float64(*old.Observed) - float64(*cur.Observed)) / dt // consumption per second
		cur.RatePerSecond = &rate
		switch {
		case cur.Headroom == nil:
		case *cur.Headroom <= 0:
			cur.TimeToPressure = "now"
		case rate <= 0:
			cur.TimeToPressure = "never at this rate"
		default:
			cur.TimeToPressure = (time.Duration(float64(*cur.Headroom)/rate) * time.Second).Round(time.Second).String()
		}
	}
}
