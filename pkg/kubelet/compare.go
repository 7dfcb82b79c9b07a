package kubelet

import (
	"math"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// FsStats fields by their JSON names, in the order Compare reports them.
const (
	FieldTime           = "time"
	FieldAvailableBytes = "availableBytes"
	FieldCapacityBytes  = "capacityBytes"
	FieldUsedBytes      = "usedBytes"
	FieldInodesFree     = "inodesFree"
	FieldInodes         = "inodes"
	FieldInodesUsed     = "inodesUsed"
)

// Roles CompareSummaries reports, the same names as pkg/stats uses.
const (
	RoleNode      = "node"
	RoleImage     = "image"
	RoleContainer = "container"
)

// FieldDiff is one FsStats field on both sides. A nil value means that
// side omits the field (or the whole FsStats).
type FieldDiff struct {
	// Field is the JSON name, one of the Field constants.
	Field string `json:"field"`
	// Ours and Live hold the counters (all fields but time).
	Ours *uint64 `json:"ours,omitempty"`
	Live *uint64 `json:"live,omitempty"`
	// OursTime and LiveTime hold the time field; a zero time counts as
	// omitted, as its JSON is null.
	OursTime *time.Time `json:"oursTime,omitempty"`
	LiveTime *time.Time `json:"liveTime,omitempty"`
	// Diff is Ours minus Live when both are present: bytes or inodes
	// (saturated at the int64 range), or for time whole seconds, the
	// resolution of metav1.Time on the wire.
	Diff *int64 `json:"diff,omitempty"`
	// Equal is both omitted, or both present with Diff 0.
	Equal bool `json:"equal"`
}

// RoleDiff is Compare for one filesystem role.
type RoleDiff struct {
	Role   string      `json:"role"`
	Fields []FieldDiff `json:"fields"`
}

// Compare lines ours up against live, one row per FsStats field in
// FieldTime ... FieldInodesUsed order. Either side may be nil.
func Compare(ours, live *statsapi.FsStats) []FieldDiff {
	if ours == nil {
		ours = &statsapi.FsStats{}
	}
	if live == nil {
		live = &statsapi.FsStats{}
	}
	out := []FieldDiff{compareTime(ours.Time.Time, live.Time.Time)}
	for _, f := range []struct {
		name       string
		ours, live *uint64
	}{
		{FieldAvailableBytes, ours.AvailableBytes, live.AvailableBytes},
		{FieldCapacityBytes, ours.CapacityBytes, live.CapacityBytes},
		{FieldUsedBytes, ours.UsedBytes, live.UsedBytes},
		{FieldInodesFree, ours.InodesFree, live.InodesFree},
		{FieldInodes, ours.Inodes, live.Inodes},
		{FieldInodesUsed, ours.InodesUsed, live.InodesUsed},
	} {
		d := FieldDiff{Field: f.name, Ours: clone(f.ours), Live: clone(f.live)}
		if f.ours != nil && f.live != nil {
			d.Diff = ptr(sub(*f.ours, *f.live))
		}
		d.Equal = equal(d.Ours == nil, d.Live == nil, d.Diff)
		out = append(out, d)
	}
	return out
}

// CompareSummaries compares imagefs's node.fs, node.runtime.imageFs and
// node.runtime.containerFs with live's, in node, image, container order.
// live may be nil.
func CompareSummaries(oursNodeFs, oursImageFs, oursContainerFs *statsapi.FsStats, live *statsapi.Summary) []RoleDiff {
	var liveNode, liveImage, liveContainer *statsapi.FsStats
	if live != nil {
		liveNode = live.Node.Fs
		if rt := live.Node.Runtime; rt != nil {
			liveImage, liveContainer = rt.ImageFs, rt.ContainerFs
		}
	}
	return []RoleDiff{
		{Role: RoleNode, Fields: Compare(oursNodeFs, liveNode)},
		{Role: RoleImage, Fields: Compare(oursImageFs, liveImage)},
		{Role: RoleContainer, Fields: Compare(oursContainerFs, liveContainer)},
	}
}

func compareTime(ours, live time.Time) FieldDiff {
	d := FieldDiff{Field: FieldTime}
	if !ours.IsZero() {
		d.OursTime = &ours
	}
	if !live.IsZero() {
		d.LiveTime = &live
	}
	if d.OursTime != nil && d.LiveTime != nil {
		// Unix floors, as RFC 3339 formatting drops the fraction.
		d.Diff = ptr(ours.Unix() - live.Unix())
	}
	d.Equal = equal(d.OursTime == nil, d.LiveTime == nil, d.Diff)
	return d
}

func equal(oursNil, liveNil bool, diff *int64) bool {
	if oursNil || liveNil {
		return oursNil && liveNil
	}
	return *diff == 0
}

// sub is a-b, saturated to the int64 range.
func sub(a, b uint64) int64 {
	if a >= b {
		if d := a - b; d <= math.MaxInt64 {
			return int64(d)
		}
		return math.MaxInt64
	}
	if d := b - a; d <= math.MaxInt64 {
		return -int64(d)
	}
	return math.MinInt64
}

func clone(p *uint64) *uint64 {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

func ptr[T any](v T) *T { return &v }
