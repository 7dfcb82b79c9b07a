package explain

import (
	"fmt"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/kubelet"
	"github.com/imagefs/imagefs/pkg/stats"
)

// Live is step 6: the running kubelet's Summary beside imagefs's, field by
// field, with the likely reason for each difference.
type Live struct {
	// Source says how the Summary was fetched (API server proxy or kubelet URL).
	Source string             `json:"source"`
	Error  string             `json:"error,omitempty"`
	Roles  []kubelet.RoleDiff `json:"roles,omitempty"`
	// Reasons explain differences, one line each.
	Reasons []string `json:"reasons,omitempty"`
}

// CompareLive lines a collection up against a live Summary and explains
// the differences.
func CompareLive(res *stats.Result, live *statsapi.Summary, source string) *Live {
	l := &Live{Source: source}
	var image, container *statsapi.FsStats
	if rt := res.Summary.Node.Runtime; rt != nil {
		image, container = rt.ImageFs, rt.ContainerFs
	}
	l.Roles = kubelet.CompareSummaries(res.Summary.Node.Fs, image, container, live)
	for _, rd := range l.Roles {
		if rd.Role == kubelet.RoleContainer {
			continue // same object as image; explained there
		}
		for _, f := range rd.Fields {
			if f.Equal {
				continue
			}
			l.Reasons = append(l.Reasons, reason(rd.Role, f))
		}
	}
	if len(l.Reasons) == 0 {
		l.Reasons = append(l.Reasons, "every field agrees")
	}
	return l
}

func reason(role string, f kubelet.FieldDiff) string {
	where := role + "." + f.Field
	switch {
	case f.Ours == nil && f.OursTime == nil:
		return fmt.Sprintf("%s: the kubelet reports it, imagefs does not: imagefs could not resolve this filesystem here (different mount namespace or root dir?)", where)
	case f.Live == nil && f.LiveTime == nil:
		return fmt.Sprintf("%s: imagefs reports it, the kubelet omits it: cadvisor had no data for the device (just after kubelet start, \"unable to find data in memory cache\"), or the kubelet's partition map, built when it started, lacks this filesystem (mounted later?)", where)
	}
	d := int64(0)
	if f.Diff != nil {
		d = *f.Diff
	}
	switch f.Field {
	case kubelet.FieldTime:
		if role == kubelet.RoleNode {
			return fmt.Sprintf("%s differs by %ds: the kubelet stamps node.fs with cadvisor's last housekeeping (every 10-15 s), imagefs with its own statfs", where, d)
		}
		return fmt.Sprintf("%s differs by %ds: both come from the runtime's timestamp, which advances at each refresh (containerd: stats_collect_period, 10 s by default)", where, d)
	case kubelet.FieldCapacityBytes, kubelet.FieldInodes:
		return fmt.Sprintf("%s differs by %d: a different filesystem was measured: the kubelet runs with another --root-dir, in another mount namespace, or resolved the device with the partition map from its start (a filesystem mounted after the kubelet started is unknown to it)", where, d)
	case kubelet.FieldUsedBytes, kubelet.FieldInodesUsed:
		if role == kubelet.RoleImage {
			return fmt.Sprintf("%s differs by %d: the runtime's usage changed between the two reads (containerd refreshes it every stats_collect_period)", where, d)
		}
		return fmt.Sprintf("%s differs by %d: the filesystem changed between cadvisor's sample (up to ~15 s old on the Summary API) and imagefs's statfs", where, d)
	default:
		return fmt.Sprintf("%s differs by %d: the filesystem changed between cadvisor's sample (up to ~15 s old on the Summary API) and imagefs's statfs", where, d)
	}
}

// FailedLive records a live comparison that could not be made.
func FailedLive(source string, err error) *Live {
	return &Live{Source: source, Error: err.Error()}
}
