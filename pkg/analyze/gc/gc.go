// Package gc simulates the kubelet v1.37 image garbage collector
// (pkg/kubelet/images/image_gc_manager.go: GarbageCollect, freeOldImages,
// freeSpace, imagesInEvictionOrder, detectImages) on a snapshot of the
// runtime's images and containers and the image filesystem's statfs
// numbers. Simulate is pure: it never calls the runtime. Apply replays a
// plan's removals through a function the caller provides.
//
// The kubelet keeps firstDetected and lastUsed in memory only; imagefs
// cannot read them. Detect fills them from stated assumptions (see Times),
// and every plan carries those assumptions.
package gc

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/imagefs/imagefs/pkg/analyze/pressure"
)

// Kubelet defaults (pkg/kubelet/apis/config/v1beta1/defaults.go) and the
// image GC period (pkg/kubelet/kubelet.go: ImageGCPeriod).
const (
	DefaultHighThresholdPercent = 85
	DefaultLowThresholdPercent  = 80
	DefaultMinAge               = 2 * time.Minute
	DefaultMaxAge               = time.Duration(0)
	Period                      = 5 * time.Minute
)

// ErrInvalidCapacity is the kubelet's error when imageFs has no capacity
// (nil or 0): GarbageCollect returns it and records the Warning event
// InvalidDiskCapacity.
var ErrInvalidCapacity = errors.New("invalid capacity 0 on image filesystem")

// ErrInvalidPolicy wraps every policy the kubelet would refuse to start with.
var ErrInvalidPolicy = errors.New("invalid image GC policy")

// Policy is the kubelet's ImageGCPolicy.
type Policy struct {
	HighThresholdPercent int           `json:"highThresholdPercent"`
	LowThresholdPercent  int           `json:"lowThresholdPercent"`
	MinAge               time.Duration `json:"-"`
	MaxAge               time.Duration `json:"-"`
}

// DefaultPolicy is the kubelet's default: 85%, 80%, 2m, max age disabled.
func DefaultPolicy() Policy {
	return Policy{DefaultHighThresholdPercent, DefaultLowThresholdPercent, DefaultMinAge, DefaultMaxAge}
}

// MarshalJSON writes the ages as Go duration strings ("2m0s"), as the
// KubeletConfiguration does.
func (p Policy) MarshalJSON() ([]byte, error) {
	type plain Policy
	return json.Marshal(struct {
		plain
		MinAge string `json:"minAge"`
		MaxAge string `json:"maxAge"`
	}{plain(p), p.MinAge.String(), p.MaxAge.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Policy) UnmarshalJSON(b []byte) error {
	type plain Policy
	var v struct {
		plain
		MinAge string `json:"minAge"`
		MaxAge string `json:"maxAge"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Policy(v.plain)
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{v.MinAge, &p.MinAge}, {v.MaxAge, &p.MaxAge}} {
		if d.s == "" {
			continue
		}
		parsed, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("image GC policy: %w", err)
		}
		*d.dst = parsed
	}
	return nil
}

// Validate applies the kubelet's checks, in the words of
// ValidateKubeletConfiguration (stricter than NewImageGCManager, which
// allows low == high): a kubelet with such a policy does not start.
func (p Policy) Validate() error {
	var errs []error
	if p.HighThresholdPercent < 0 || p.HighThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("imageGCHighThresholdPercent (--image-gc-high-threshold) %d must be between 0 and 100, inclusive", p.HighThresholdPercent))
	}
	if p.LowThresholdPercent < 0 || p.LowThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("imageGCLowThresholdPercent (--image-gc-low-threshold) %d must be between 0 and 100, inclusive", p.LowThresholdPercent))
	}
	if p.LowThresholdPercent >= p.HighThresholdPercent {
		errs = append(errs, fmt.Errorf("imageGCLowThresholdPercent (--image-gc-low-threshold) %d must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) %d", p.LowThresholdPercent, p.HighThresholdPercent))
	}
	if p.MinAge < 0 {
		errs = append(errs, fmt.Errorf("imageMinimumGCAge %v must not be negative", p.MinAge))
	}
	if p.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("imageMaximumGCAge %v must not be negative", p.MaxAge))
	}
	if p.MaxAge > 0 && p.MaxAge <= p.MinAge {
		errs = append(errs, fmt.Errorf("imageMaximumGCAge %v must be greater than imageMinimumGCAge %v", p.MaxAge, p.MinAge))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidPolicy, errors.Join(errs...))
}

// Disabled reports whether the kubelet stubs image GC out entirely
// (StartGarbageCollection: high threshold 100 and max age 0).
func (p Policy) Disabled() bool { return p.HighThresholdPercent == 100 && p.MaxAge == 0 }

// Image is one image record as the kubelet keeps it (imageRecord), with
// what imagefs knows about it besides.
type Image struct {
	// ID is the CRI image id (the kubelet's record key and RemoveImage argument).
	ID      string   `json:"id"`
	Tags    []string `json:"tags,omitempty"`
	Digests []string `json:"digests,omitempty"`
	// Size is CRI Image.size, the amount the kubelet counts as freed.
	Size   uint64 `json:"size"`
	Pinned bool   `json:"pinned,omitempty"`
	// InUse: a container the runtime lists (any state) runs it, or mounts it
	// as an image volume.
	InUse  bool     `json:"inUse,omitempty"`
	UsedBy []string `json:"usedBy,omitempty"`
	// FirstDetected and LastUsed are the kubelet's in-memory times; a zero
	// LastUsed is the kubelet's "never seen in use since it started".
	FirstDetected time.Time `json:"firstDetected"`
	LastUsed      time.Time `json:"lastUsed"`
	// Assumed says how imagefs came by FirstDetected and LastUsed.
	Assumed string `json:"assumed,omitempty"`
}

// Name is the first tag, else the first digest, else the ID.
func (i Image) Name() string {
	switch {
	case len(i.Tags) > 0:
		return i.Tags[0]
	case len(i.Digests) > 0:
		return i.Digests[0]
	}
	return i.ID
}

// Candidate is an image the kubelet may remove, in the order it visits them.
type Candidate struct {
	Image
	// Order is the 1-based position in the kubelet's walk.
	Order int `json:"order"`
	// WouldRemove: the kubelet removes it in this run (it comes before the
	// point where the freed total reaches the target).
	WouldRemove bool `json:"wouldRemove"`
	// CumulativeFreedBytes is the running total of Size over the removals
	// up to and including this one (set only when WouldRemove).
	CumulativeFreedBytes int64 `json:"cumulativeFreedBytes,omitempty"`
	// TieGroup numbers runs of candidates with equal lastUsed and
	// firstDetected (from 1; 0 = no tie): the kubelet visits the members
	// of a group in random order.
	TieGroup int `json:"tieGroup,omitempty"`
}

// SkipReason says why the kubelet leaves an image alone.
type SkipReason string

const (
	SkipInUse        SkipReason = "in-use"        // imagesInEvictionOrder: isImageUsed
	SkipPinned       SkipReason = "pinned"        // imagesInEvictionOrder: record.pinned
	SkipTooYoung     SkipReason = "too-young"     // freeSpace: now - firstDetected < MinAge
	SkipUsedRecently SkipReason = "used-recently" // freeSpace: lastUsed >= now
)

// Skip is an image the kubelet would not remove, and why.
type Skip struct {
	Image
	Reason SkipReason `json:"reason"`
	Detail string     `json:"detail"`
}

// Verdict sums a plan up.
type Verdict string

const (
	// VerdictDisabled: high threshold 100 and max age 0, no image GC at all.
	VerdictDisabled Verdict = "disabled"
	// VerdictBelowThreshold: usage below the high threshold, nothing to free.
	VerdictBelowThreshold Verdict = "below-threshold"
	// VerdictReachesTarget: the removals free at least amountToFree.
	VerdictReachesTarget Verdict = "reaches-target"
	// VerdictTargetNotReachable: every eligible image removed still frees
	// less than amountToFree (the kubelet's FreeDiskSpaceFailed).
	VerdictTargetNotReachable Verdict = "target-not-reachable"
	// VerdictInvalidCapacity: the kubelet's "invalid capacity 0 on image filesystem".
	VerdictInvalidCapacity Verdict = "invalid-capacity"
)

// Options are the inputs of Simulate that are neither state nor policy.
type Options struct {
	// BeganGC is when the kubelet started its GC loop (about its start
	// time); max-age removals wait until now - BeganGC > MaxAge. Zero means
	// unknown: max-age removals are then not simulated.
	BeganGC time.Time
	// Force plans the removals that would bring usage down to the low
	// threshold even when the high threshold is not crossed (the kubelet
	// would not run them).
	Force bool
}

// Plan is what one GarbageCollect run of the kubelet would do.
type Plan struct {
	Now      time.Time `json:"now"`
	BeganGC  time.Time `json:"beganGC,omitzero"`
	Policy   Policy    `json:"policy"`
	Disabled bool      `json:"disabled,omitempty"`
	Forced   bool      `json:"forced,omitempty"`

	// CapacityBytes and AvailableBytes as the kubelet uses them: nil → 0,
	// available clamped to capacity.
	CapacityBytes    uint64 `json:"capacityBytes"`
	AvailableBytes   uint64 `json:"availableBytes"`
	AvailableClamped bool   `json:"availableClamped,omitempty"`
	// UsagePercent = 100 - int(available*100/capacity).
	UsagePercent int  `json:"usagePercent"`
	HighCrossed  bool `json:"highCrossed"`
	// GCRuns: the kubelet's freeSpace runs now (HighCrossed; or Forced,
	// hypothetically, when there is something to free).
	GCRuns bool `json:"gcRuns"`
	// TargetBytes = capacity*(100-low)/100, the available bytes at the low
	// threshold; AmountToFree = TargetBytes - available.
	TargetBytes  int64 `json:"targetBytes"`
	AmountToFree int64 `json:"amountToFree"`

	// Candidates are the eligible images in the kubelet's order.
	Candidates []Candidate `json:"candidates"`
	// Skipped are the images the kubelet would not remove.
	Skipped []Skip `json:"skipped"`
	// FreedBytes sums Size over the candidates it would remove.
	FreedBytes int64 `json:"freedBytes"`
	// WouldReachTarget: GCRuns and FreedBytes >= AmountToFree (false when
	// GC does not run: see Verdict).
	WouldReachTarget bool `json:"wouldReachTarget"`

	// MaxAgeApplies: MaxAge > 0 and the kubelet has run longer than MaxAge.
	MaxAgeApplies    bool        `json:"maxAgeApplies"`
	MaxAgeRemovals   []Candidate `json:"maxAgeRemovals,omitempty"`
	MaxAgeFreedBytes int64       `json:"maxAgeFreedBytes,omitempty"`

	Verdict Verdict `json:"verdict"`
	// KubeletMessage is the kubelet's own error/event text for the verdict
	// (FreeDiskSpaceFailed, InvalidDiskCapacity), if any.
	KubeletMessage string `json:"kubeletMessage,omitempty"`
	// KubeletEvent is the Warning event reason the kubelet would record.
	KubeletEvent string `json:"kubeletEvent,omitempty"`

	// Assumptions imagefs made for what it cannot know (set by the caller
	// of Simulate, e.g. from Times.Assumptions).
	Assumptions []string `json:"assumptions"`
	// Notes explain kubelet behaviour that matters for this plan.
	Notes  []string `json:"notes,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Simulate runs the kubelet's GarbageCollect on a snapshot: images as
// Detect builds them, imageFs capacity and available (statfs of the image
// filesystem, nil when the kubelet would have none), the policy and the
// time of the run. It returns ErrInvalidCapacity (with the plan) when the
// kubelet would, and an ErrInvalidPolicy error (no plan) for a policy the
// kubelet would refuse.
func Simulate(capacity, available *uint64, images []Image, p Policy, now time.Time, o Options) (*Plan, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	plan := &Plan{Now: now, BeganGC: o.BeganGC, Policy: p, Disabled: p.Disabled(), Forced: o.Force,
		Candidates: []Candidate{}, Skipped: []Skip{}, Assumptions: []string{}}

	// imagesInEvictionOrder: records keyed by ID; in-use and pinned left out.
	var order []Image
	for _, img := range dedupe(images) {
		switch {
		case img.InUse:
			plan.Skipped = append(plan.Skipped, Skip{Image: img, Reason: SkipInUse, Detail: inUseDetail(img)})
		case img.Pinned:
			plan.Skipped = append(plan.Skipped, Skip{Image: img, Reason: SkipPinned, Detail: "pinned by the runtime (CRI Image.pinned, e.g. the sandbox image)"})
		default:
			order = append(order, img)
		}
	}
	// sort.Sort(byLastUsedAndDetected): lastUsed ascending, ties by
	// firstDetected ascending. The kubelet sorts a slice built from map
	// iteration with an unstable sort, so images equal in both come in
	// random order; imagefs breaks the tie by ID to be reproducible.
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if !a.LastUsed.Equal(b.LastUsed) {
			return a.LastUsed.Before(b.LastUsed)
		}
		if !a.FirstDetected.Equal(b.FirstDetected) {
			return a.FirstDetected.Before(b.FirstDetected)
		}
		return a.ID < b.ID
	})
	ties := tieGroups(order)

	if plan.Disabled {
		plan.Verdict = VerdictDisabled
		plan.Notes = append(plan.Notes, "image GC is disabled: with imageGCHighThresholdPercent 100 and imageMaximumGCAge 0 the kubelet never starts the image GC loop (StartGarbageCollection)")
		if !o.Force {
			for i, img := range order {
				plan.Candidates = append(plan.Candidates, Candidate{Image: img, Order: i + 1, TieGroup: ties[i]})
			}
			return plan, nil
		}
	}

	// freeOldImages: before any disk statistics, and regardless of MinAge.
	if p.MaxAge > 0 {
		switch {
		case o.BeganGC.IsZero():
			plan.Notes = append(plan.Notes, fmt.Sprintf("imageMaximumGCAge %v is set but the kubelet's start time is unknown: max-age removals are not simulated", p.MaxAge))
		case now.Sub(o.BeganGC) <= p.MaxAge:
			plan.Notes = append(plan.Notes, fmt.Sprintf("max-age removals wait until the kubelet has run longer than imageMaximumGCAge %v (it has run %v)", p.MaxAge, now.Sub(o.BeganGC).Round(time.Second)))
		default:
			plan.MaxAgeApplies = true
			var rest []Image
			var restTies []int
			for i, img := range order {
				if now.Sub(img.LastUsed) > p.MaxAge {
					plan.MaxAgeFreedBytes += int64(img.Size)
					plan.MaxAgeRemovals = append(plan.MaxAgeRemovals, Candidate{Image: img, Order: len(plan.MaxAgeRemovals) + 1,
						WouldRemove: true, CumulativeFreedBytes: plan.MaxAgeFreedBytes, TieGroup: ties[i]})
					continue
				}
				rest, restTies = append(rest, img), append(restTies, ties[i])
			}
			order, ties = rest, restTies
			if len(plan.MaxAgeRemovals) > 0 {
				plan.Notes = append(plan.Notes, "the kubelet removes max-age images before it reads imageFs stats, and does not count them toward amountToFree; cadvisor's cached statfs sample (up to ~15 s old) usually predates those removals, so imagefs uses available as measured before them")
			}
		}
	}

	// ImageFsStats: nil pointers are 0; available > capacity is clamped.
	var capacityI, availableI int64
	if capacity != nil {
		capacityI = int64(*capacity)
	}
	if available != nil {
		availableI = int64(*available)
	} else if capacity != nil && *capacity != 0 {
		plan.Notes = append(plan.Notes, "imageFs has capacity but no availableBytes: the kubelet takes available as 0")
	}
	if availableI > capacityI {
		plan.AvailableClamped = true
		plan.Notes = append(plan.Notes, fmt.Sprintf("available %d > capacity %d: the kubelet logs \"Availability is larger than capacity\" and uses available = capacity", availableI, capacityI))
		availableI = capacityI
	}
	plan.CapacityBytes, plan.AvailableBytes = uint64(capacityI), uint64(availableI)
	if capacityI == 0 {
		// Only eligible images are listed; none is removed for space.
		for i, img := range order {
			plan.Candidates = append(plan.Candidates, Candidate{Image: img, Order: i + 1, TieGroup: ties[i]})
		}
		plan.Verdict = VerdictInvalidCapacity
		plan.KubeletEvent = "InvalidDiskCapacity"
		plan.KubeletMessage = ErrInvalidCapacity.Error()
		plan.Errors = append(plan.Errors, ErrInvalidCapacity.Error())
		return plan, ErrInvalidCapacity
	}

	plan.UsagePercent, _ = pressure.ImageGCUsage(&plan.AvailableBytes, &plan.CapacityBytes)
	plan.HighCrossed = plan.UsagePercent >= p.HighThresholdPercent
	plan.TargetBytes = capacityI * int64(100-p.LowThresholdPercent) / 100
	plan.AmountToFree = plan.TargetBytes - availableI
	switch {
	case plan.HighCrossed && !plan.Disabled:
		plan.GCRuns = true
		if plan.AmountToFree <= 0 {
			plan.Notes = append(plan.Notes, fmt.Sprintf("amountToFree is %d: the kubelet still removes the first eligible image, because freeSpace compares the freed total with the target only after a removal", plan.AmountToFree))
		}
	case !o.Force:
	case plan.AmountToFree > 0:
		plan.GCRuns = true
		why := fmt.Sprintf("usage %d%% is below the high threshold %d%%", plan.UsagePercent, p.HighThresholdPercent)
		if plan.Disabled {
			why = "image GC is disabled"
		}
		plan.Notes = append(plan.Notes, fmt.Sprintf("forced: %s, so the kubelet would not free anything now; these removals are what it would take to reach the low threshold %d%%", why, p.LowThresholdPercent))
	default:
		plan.Notes = append(plan.Notes, fmt.Sprintf("forced: usage %d%% is already at or below the low threshold %d%% (available %d ≥ %d): nothing to free", plan.UsagePercent, p.LowThresholdPercent, availableI, plan.TargetBytes))
	}

	// freeSpace: walk in order, skip used-recently and too-young images,
	// count CRI sizes, stop once the total reaches amountToFree.
	done := !plan.GCRuns
	for i, img := range order {
		if !img.LastUsed.Before(now) {
			plan.Skipped = append(plan.Skipped, Skip{Image: img, Reason: SkipUsedRecently, Detail: fmt.Sprintf("lastUsed %s is not before the GC time", img.LastUsed.UTC().Format(time.RFC3339))})
			continue
		}
		if age := now.Sub(img.FirstDetected); age < p.MinAge {
			plan.Skipped = append(plan.Skipped, Skip{Image: img, Reason: SkipTooYoung, Detail: fmt.Sprintf("first detected %v ago, less than imageMinimumGCAge %v", age.Round(time.Second), p.MinAge)})
			continue
		}
		c := Candidate{Image: img, Order: len(plan.Candidates) + 1, TieGroup: ties[i]}
		if !done {
			plan.FreedBytes += int64(img.Size)
			c.WouldRemove, c.CumulativeFreedBytes = true, plan.FreedBytes
			done = plan.FreedBytes >= plan.AmountToFree
		}
		plan.Candidates = append(plan.Candidates, c)
	}

	switch {
	case !plan.GCRuns && plan.Disabled:
	case !plan.GCRuns:
		plan.Verdict = VerdictBelowThreshold
	case plan.FreedBytes >= plan.AmountToFree:
		plan.Verdict = VerdictReachesTarget
		plan.WouldReachTarget = true
	default:
		plan.Verdict = VerdictTargetNotReachable
		plan.KubeletEvent = "FreeDiskSpaceFailed"
		plan.KubeletMessage = FreeDiskSpaceFailedMessage(plan.UsagePercent, capacityI, plan.FreedBytes)
	}
	for _, c := range plan.Candidates {
		if c.TieGroup > 0 {
			plan.Notes = append(plan.Notes, "candidates with the same tieGroup have equal lastUsed and firstDetected: the kubelet visits them in random order (a slice built from map iteration, sorted with the unstable sort.Sort); imagefs lists them by image ID")
			break
		}
	}
	if plan.GCRuns {
		plan.Notes = append(plan.Notes, tieNote(plan.Candidates)...)
	}
	return plan, nil
}

// FreeDiskSpaceFailedMessage is the kubelet's event and error text when
// freeSpace frees less than amountToFree.
func FreeDiskSpaceFailedMessage(usagePercent int, capacity, freed int64) string {
	return fmt.Sprintf("Insufficient free disk space on the node's image filesystem (%d%% of %s used). "+
		"Failed to free sufficient space by deleting unused images (freed %d bytes). "+
		"Investigate disk usage, as it could be used by active images, logs, volumes, or other data.",
		usagePercent, formatSize(capacity), freed)
}

// formatSize is the kubelet's formatSize (image_gc_manager.go).
func formatSize(sizeBytes int64) string {
	const (
		KiB = 1024
		MiB = 1024 * KiB
		GiB = 1024 * MiB
		TiB = 1024 * GiB
	)
	size := float64(sizeBytes)
	switch {
	case size < KiB:
		return fmt.Sprintf("%d B", int64(size))
	case size < MiB:
		return fmt.Sprintf("%.1f KiB", size/KiB)
	case size < GiB:
		return fmt.Sprintf("%.1f MiB", size/MiB)
	case size < TiB:
		return fmt.Sprintf("%.1f GiB", size/GiB)
	default:
		return fmt.Sprintf("%.1f TiB", size/TiB)
	}
}

// dedupe keeps one record per ID, the last one winning, as the kubelet's
// map does (size and pinned are overwritten on every detection); in-use
// is the union.
func dedupe(images []Image) []Image {
	idx := map[string]int{}
	var out []Image
	for _, img := range images {
		if i, ok := idx[img.ID]; ok {
			inUse, usedBy := out[i].InUse || img.InUse, append(out[i].UsedBy, img.UsedBy...)
			out[i] = img
			out[i].InUse, out[i].UsedBy = inUse, usedBy
			continue
		}
		idx[img.ID] = len(out)
		out = append(out, img)
	}
	return out
}

func inUseDetail(img Image) string {
	if len(img.UsedBy) == 0 {
		return "in use by a container"
	}
	s := "in use by " + img.UsedBy[0]
	if n := len(img.UsedBy) - 1; n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	return s
}

// tieGroups numbers runs of equal (lastUsed, firstDetected) in sorted order.
func tieGroups(order []Image) []int {
	groups := make([]int, len(order))
	n := 0
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if a.LastUsed.Equal(b.LastUsed) && a.FirstDetected.Equal(b.FirstDetected) {
			if groups[i-1] == 0 {
				n++
				groups[i-1] = n
			}
			groups[i] = groups[i-1]
		}
	}
	return groups
}

// tieNote warns when the last planned removal sits in a tie group with
// images the plan keeps: the kubelet might remove different ones.
func tieNote(cands []Candidate) []string {
	last := -1
	for i, c := range cands {
		if c.WouldRemove {
			last = i
		}
	}
	if last < 0 || cands[last].TieGroup == 0 || last+1 >= len(cands) || cands[last+1].TieGroup != cands[last].TieGroup {
		return nil
	}
	g := cands[last].TieGroup
	kept := 0
	for _, c := range cands[last+1:] {
		if c.TieGroup == g {
			kept++
		}
	}
	return []string{fmt.Sprintf("the plan stops inside tie group %d (equal lastUsed and firstDetected): the kubelet visits that group in random order, so it may remove other images of that group than the ones listed (%d image(s) of the group kept): whether the target is reached does not depend on that order, which images go and how many bytes are freed do", g, kept)}
}

// Report is one imagefs gc run: where, the plan, and what --apply did.
type Report struct {
	NodeName string `json:"nodeName"`
	// Runtime names the runtime and its endpoint.
	Runtime string  `json:"runtime"`
	ImageFs ImageFs `json:"imageFs"`
	Times   Times   `json:"times"`
	Plan    *Plan   `json:"plan"`
	// Applied is set when removals were made (--apply --yes).
	Applied *ApplyResult `json:"applied,omitempty"`
}

// ImageFs names the filesystem the plan measured.
type ImageFs struct {
	Dir    string `json:"dir"`
	Device string `json:"device,omitempty"`
	FSType string `json:"fsType,omitempty"`
}
