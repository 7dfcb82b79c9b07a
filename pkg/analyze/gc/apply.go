package gc

import (
	"context"
	"errors"
	"fmt"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// Removal reasons, as in the kubelet's image_garbage_collected_total metric.
const (
	ReasonAge   = "age"
	ReasonSpace = "space"
)

// Removal is one RemoveImage call made by Apply.
type Removal struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Size   uint64 `json:"size"`
	Reason string `json:"reason"`
	// CumulativeFreedBytes is the running total of successful removals of
	// this reason (the kubelet counts age and space separately).
	CumulativeFreedBytes int64  `json:"cumulativeFreedBytes"`
	Error                string `json:"error,omitempty"`
}

// ApplyResult is what Apply did.
type ApplyResult struct {
	Removals         []Removal `json:"removals"`
	MaxAgeFreedBytes int64     `json:"maxAgeFreedBytes"`
	FreedBytes       int64     `json:"freedBytes"`
	AmountToFree     int64     `json:"amountToFree"`
	ReachedTarget    bool      `json:"reachedTarget"`
	// Interrupted: the context ended before the walk did.
	Interrupted bool     `json:"interrupted,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

// Remover removes one image by its id (CRI RemoveImage).
type Remover func(ctx context.Context, id string) error

// Apply carries a plan out as the kubelet would: first the max-age
// removals (a failure there ends the run, as freeOldImages' error ends
// GarbageCollect), then, if GC runs, the candidates in order until the
// freed CRI sizes reach AmountToFree; a failed removal is recorded and the
// walk goes on to the next candidate. progress, if not nil, sees each
// removal as it completes. Apply stops between calls when ctx ends.
func Apply(ctx context.Context, plan *Plan, remove Remover, progress func(Removal)) *ApplyResult {
	res := &ApplyResult{Removals: []Removal{}, AmountToFree: plan.AmountToFree}
	do := func(c Candidate, reason string, total *int64) bool {
		if ctx.Err() != nil {
			res.Interrupted = true
			return false
		}
		r := Removal{ID: c.ID, Name: c.Name(), Size: c.Size, Reason: reason}
		if err := remove(ctx, c.ID); err != nil {
			r.Error = err.Error()
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				res.Interrupted = true
			}
		} else {
			*total += int64(c.Size)
		}
		r.CumulativeFreedBytes = *total
		res.Removals = append(res.Removals, r)
		if progress != nil {
			progress(r)
		}
		return r.Error == ""
	}

	var ageErrs []error
	for _, c := range plan.MaxAgeRemovals {
		if !do(c, ReasonAge, &res.MaxAgeFreedBytes) {
			if res.Interrupted {
				return res
			}
			ageErrs = append(ageErrs, errors.New(res.Removals[len(res.Removals)-1].Error))
		}
	}
	if len(ageErrs) > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("wanted to free images older than %v, encountered errors in image deletion: %v", plan.Policy.MaxAge, utilerrors.NewAggregate(ageErrs)))
		return res
	}
	if !plan.GCRuns {
		return res
	}
	var spaceErrs []error
	for _, c := range plan.Candidates {
		if !do(c, ReasonSpace, &res.FreedBytes) {
			if res.Interrupted {
				break
			}
			spaceErrs = append(spaceErrs, errors.New(res.Removals[len(res.Removals)-1].Error))
			continue
		}
		if res.FreedBytes >= plan.AmountToFree {
			break
		}
	}
	res.ReachedTarget = res.FreedBytes >= plan.AmountToFree
	if len(spaceErrs) > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("wanted to free %d bytes, but freed %d bytes space with errors in image deletion: %v", plan.AmountToFree, res.FreedBytes, utilerrors.NewAggregate(spaceErrs)))
	}
	return res
}
