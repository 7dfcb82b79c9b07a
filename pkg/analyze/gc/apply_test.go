package gc

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type fakeRemover struct {
	calls []string
	fail  map[string]error
	// cancelAfter cancels the context after this many calls (0: never).
	cancelAfter int
	cancel      context.CancelFunc
}

func (f *fakeRemover) remove(_ context.Context, id string) error {
	f.calls = append(f.calls, id)
	if f.cancelAfter > 0 && len(f.calls) == f.cancelAfter {
		f.cancel()
	}
	return f.fail[id]
}

func TestApply(t *testing.T) {
	images := []Image{img("a", 60_000), img("b", 50_000), img("c", 10_000), img("d", 100_000)}
	plan := func(t *testing.T, available uint64, p Policy, o Options, imgs []Image) *Plan {
		t.Helper()
		pl, err := Simulate(u64(1_000_000), u64(available), imgs, p, now, o)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}

	t.Run("as planned", func(t *testing.T) {
		pl := plan(t, 100_000, DefaultPolicy(), Options{}, images) // amountToFree 100000: a, b
		f := &fakeRemover{}
		var seen []int64
		res := Apply(context.Background(), pl, f.remove, func(r Removal) { seen = append(seen, r.CumulativeFreedBytes) })
		if !reflect.DeepEqual(f.calls, ids(pl.Candidates, true)) || !reflect.DeepEqual(f.calls, []string{"a", "b"}) {
			t.Errorf("removed %v, plan %v", f.calls, ids(pl.Candidates, true))
		}
		if !reflect.DeepEqual(seen, []int64{60_000, 110_000}) || res.FreedBytes != 110_000 || !res.ReachedTarget || len(res.Errors) != 0 {
			t.Errorf("progress %v, result %+v", seen, res)
		}
	})

	t.Run("a failed removal is made up by the next candidate", func(t *testing.T) {
		pl := plan(t, 100_000, DefaultPolicy(), Options{}, images)
		f := &fakeRemover{fail: map[string]error{"b": errors.New("image is in use")}}
		res := Apply(context.Background(), pl, f.remove, nil)
		if !reflect.DeepEqual(f.calls, []string{"a", "b", "c", "d"}) || res.FreedBytes != 170_000 || !res.ReachedTarget {
			t.Errorf("calls %v result %+v", f.calls, res)
		}
		if len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "wanted to free 100000 bytes, but freed 170000 bytes space with errors in image deletion") {
			t.Errorf("errors %q", res.Errors)
		}
	})

	t.Run("max-age failure ends the run", func(t *testing.T) {
		pl := plan(t, 100_000, Policy{85, 80, time.Minute, time.Hour}, Options{BeganGC: now.Add(-2 * time.Hour)},
			[]Image{img("old", 1), img("old2", 2), img("recent", 5).lastUsed(now.Add(-time.Minute))})
		f := &fakeRemover{fail: map[string]error{"old": errors.New("boom")}}
		res := Apply(context.Background(), pl, f.remove, nil)
		if !reflect.DeepEqual(f.calls, []string{"old", "old2"}) || res.MaxAgeFreedBytes != 2 || len(res.Errors) != 1 ||
			!strings.Contains(res.Errors[0], "wanted to free images older than 1h0m0s") {
			t.Errorf("calls %v result %+v", f.calls, res)
		}
		if res.Removals[0].Reason != ReasonAge || res.Removals[0].Error != "boom" {
			t.Errorf("removals %+v", res.Removals)
		}
	})

	t.Run("below threshold removes only max-age images", func(t *testing.T) {
		pl := plan(t, 900_000, Policy{85, 80, time.Minute, time.Hour}, Options{BeganGC: now.Add(-2 * time.Hour)},
			[]Image{img("old", 1), img("recent", 5).lastUsed(now.Add(-time.Minute))})
		f := &fakeRemover{}
		res := Apply(context.Background(), pl, f.remove, nil)
		if !reflect.DeepEqual(f.calls, []string{"old"}) || res.ReachedTarget {
			t.Errorf("calls %v result %+v", f.calls, res)
		}
	})

	t.Run("cancel stops between calls", func(t *testing.T) {
		pl := plan(t, 0, DefaultPolicy(), Options{}, images) // amountToFree 200000: would remove all
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := &fakeRemover{cancelAfter: 2, cancel: cancel}
		res := Apply(ctx, pl, f.remove, nil)
		if !reflect.DeepEqual(f.calls, []string{"a", "b"}) || !res.Interrupted || res.FreedBytes != 110_000 {
			t.Errorf("calls %v result %+v", f.calls, res)
		}
	})
}
