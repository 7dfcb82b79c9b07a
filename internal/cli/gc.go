package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/pkg/analyze/gc"
	"github.com/imagefs/imagefs/pkg/output"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

// ExitGCTargetNotReachable is imagefs gc's exit code when removing every
// eligible image would not bring usage down to the low threshold (the
// kubelet's FreeDiskSpaceFailed). It is ExitPartial's value.
const ExitGCTargetNotReachable = ExitPartial

// gcOptions are imagefs gc's own flags.
type gcOptions struct {
	dryRun, apply, yes, force, exactBytes bool
	high, low                             int
	minAge, maxAge                        time.Duration
	assumeFirstDetected                   string

	// procRoot is where the kubelet process and the boot time are looked
	// up; now is the GC time. Tests replace both.
	procRoot string
	now      func() time.Time
}

func newGCCommand(g *GlobalOptions, streams IO) *cobra.Command {
	return newGCCommandWith(g, streams, &gcOptions{procRoot: "/proc", now: time.Now})
}

// newGCCommandWith is newGCCommand with the options tests replace.
func newGCCommandWith(g *GlobalOptions, streams IO, o *gcOptions) *cobra.Command {
	var cfg kubeletConfigOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Show which images the kubelet's image garbage collection would remove now, and whether that is enough",
		Long: `gc simulates one run of the kubelet v1.37 image garbage collector
(pkg/kubelet/images/image_gc_manager.go) on this node's image filesystem:

  usage%        = 100 - floor(available*100/capacity)   (imageFs statfs, as stats)
  GC runs       iff usage% >= --image-gc-high-threshold
  amountToFree  = floor(capacity*(100-low)/100) - available
  candidates    = images no container uses (any state, image volumes too)
                  and the runtime does not pin, ordered by lastUsed then
                  firstDetected; younger than --image-minimum-gc-age skipped
  removal       in that order, adding each image's CRI size, until the
                  total reaches amountToFree
  max age       with --image-maximum-gc-age > 0 and a kubelet running longer
                  than that, images unused for longer are removed first

The thresholds come from the --image-* flags when given, else from
--kubelet-config, else from the running kubelet's --config and flags, else
the kubelet defaults (85, 80, 2m, 0).

The kubelet keeps firstDetected and lastUsed in memory only. imagefs takes
firstDetected = the kubelet's start (its process start time, or boot time
when no kubelet runs here; --assume-first-detected overrides) and lastUsed =
now for images in use, never for the others. Every plan lists these
assumptions and marks assumed times with *.

It only reads, unless --apply --yes: then it removes the images marked
"remove" through CRI RemoveImage, in order, as the kubelet would (a failed
removal is skipped and the next candidate tried), printing each removal and
the running total on stderr, and stops on Ctrl-C.

--force plans the removals down to the low threshold even when usage is
below the high threshold (the kubelet would not run them).

Exit codes:
  0  nothing to do, or the removals reach the low threshold
  1  an error (runtime unreachable, the kubelet's image GC fails, e.g.
     "invalid capacity 0 on image filesystem", or a removal failed)
  2  usage error (bad flags, --apply without --yes)
  3  even removing every eligible image would not reach the low threshold
     (the kubelet's FreeDiskSpaceFailed)`,
		Example: `  imagefs gc
  imagefs gc --force -o json | jq '.plan.candidates[] | select(.wouldRemove) | .tags'
  imagefs gc --image-gc-high-threshold 70 --image-gc-low-threshold 60
  imagefs gc --apply --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.policyFromKubelet(cmd, g, &cfg); err != nil {
				return err
			}
			return runGC(cmd.Context(), g, o, streams)
		},
	}
	cfg.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.dryRun, "dry-run", false, "only show the plan (the default; the flag exists for clarity)")
	f.BoolVar(&o.apply, "apply", false, "remove the planned images through CRI RemoveImage (needs --yes)")
	f.BoolVar(&o.yes, "yes", false, "confirm --apply")
	f.BoolVar(&o.force, "force", false, "plan the removals down to the low threshold even when usage is below the high threshold")
	f.IntVar(&o.high, "image-gc-high-threshold", gc.DefaultHighThresholdPercent, "the kubelet's imageGCHighThresholdPercent")
	f.IntVar(&o.low, "image-gc-low-threshold", gc.DefaultLowThresholdPercent, "the kubelet's imageGCLowThresholdPercent")
	f.DurationVar(&o.minAge, "image-minimum-gc-age", gc.DefaultMinAge, "the kubelet's imageMinimumGCAge")
	f.DurationVar(&o.maxAge, "image-maximum-gc-age", gc.DefaultMaxAge, "the kubelet's imageMaximumGCAge (0: off)")
	f.StringVar(&o.assumeFirstDetected, "assume-first-detected", "", "firstDetected for every image: an RFC 3339 time, or a duration meaning that long ago (default: the kubelet's start)")
	f.BoolVar(&o.exactBytes, "bytes", false, "print exact byte counts instead of human sizes (table)")
	return cmd
}

// policyFromKubelet fills the GC thresholds not given as flags from the
// kubelet's settings (--kubelet-config, else the running kubelet's command
// line, else the defaults the flags already hold).
func (o *gcOptions) policyFromKubelet(cmd *cobra.Command, g *GlobalOptions, cfg *kubeletConfigOptions) error {
	s, _, err := cfg.load(cmd, g)
	if err != nil {
		return err
	}
	changed := cmd.Flags().Changed
	if !changed("image-gc-high-threshold") {
		o.high = int(s.ImageGCHighThresholdPercent)
	}
	if !changed("image-gc-low-threshold") {
		o.low = int(s.ImageGCLowThresholdPercent)
	}
	if !changed("image-minimum-gc-age") {
		o.minAge = s.ImageMinimumGCAge
	}
	if !changed("image-maximum-gc-age") {
		o.maxAge = s.ImageMaximumGCAge
	}
	return nil
}

// gcPolicyFromFlags is the image GC policy from gc's flags, validated as
// the kubelet validates its configuration.
func gcPolicyFromFlags(o *gcOptions) (gc.Policy, error) {
	p := gc.Policy{
		HighThresholdPercent: o.high,
		LowThresholdPercent:  o.low,
		MinAge:               o.minAge,
		MaxAge:               o.maxAge,
	}
	if err := p.Validate(); err != nil {
		return gc.Policy{}, usageError{fmt.Errorf("%w: the kubelet would not start with it", err)}
	}
	return p, nil
}

func runGC(ctx context.Context, g *GlobalOptions, o *gcOptions, streams IO) error {
	if err := checkOutput(g.Output, output.FormatTable, output.FormatJSON, output.FormatYAML); err != nil {
		return err
	}
	switch {
	case o.apply && o.dryRun:
		return usageError{errors.New("--apply and --dry-run exclude each other")}
	case o.yes && !o.apply:
		return usageError{errors.New("--yes only confirms --apply")}
	case o.apply && !o.yes:
		return usageError{errors.New("--apply removes images from the runtime and needs --yes to confirm; run without --apply first to see the plan")}
	}
	policy, err := gcPolicyFromFlags(o)
	if err != nil {
		return err
	}
	now := o.now()
	times, err := gcTimes(o, now)
	if err != nil {
		return err
	}

	res, err := collect(ctx, g)
	if err != nil {
		return err
	}
	img := res.Filesystem(stats.RoleImage)
	if img.KubeletError != "" {
		return fmt.Errorf("the kubelet's image GC would fail before freeing space by size: its ImageFsStats fails with %q; see imagefs doctor", img.KubeletError)
	}
	client, err := runtime.Dial(res.Runtime.Endpoint, g.Timeout)
	if err != nil {
		return runtimeError{ep: res.Runtime.Endpoint, timeout: g.Timeout.String(), err: err}
	}
	defer client.Close()
	images, notes, err := gcDetectImages(ctx, client, times, now)
	if err != nil {
		return runtimeError{ep: res.Runtime.Endpoint, timeout: g.Timeout.String(), err: err}
	}

	var capacity, available *uint64
	if img.Stats != nil {
		capacity, available = img.Stats.CapacityBytes, img.Stats.AvailableBytes
	}
	plan, simErr := gc.Simulate(capacity, available, images, policy, now, gc.Options{BeganGC: times.KubeletStart, Force: o.force})
	if plan == nil {
		return simErr
	}
	plan.Assumptions = append(plan.Assumptions, times.Assumptions(now)...)
	plan.Notes = append(plan.Notes, notes...)
	if capacity == nil {
		plan.Notes = append(plan.Notes, "imageFs has no capacity: "+strings.Join(img.Notes, "; "))
	}
	rep := &gc.Report{
		NodeName: res.Summary.Node.NodeName,
		Runtime:  fmt.Sprintf("%s %s at %s (%s)", res.Runtime.Name, res.Runtime.Version, res.Runtime.Endpoint.URL, res.Runtime.Endpoint.Source),
		ImageFs:  gc.ImageFs{Dir: img.Dir},
		Times:    times,
		Plan:     plan,
	}
	if img.Lookup != nil && img.Lookup.Info != nil {
		rep.ImageFs.Device, rep.ImageFs.FSType = img.Lookup.Info.Device, img.Lookup.Info.FSType
	}

	if o.apply {
		rep.Applied = gc.Apply(ctx, plan, client.RemoveImage, func(r gc.Removal) {
			fmt.Fprintf(streams.ErrOut, "imagefs: %s\n", output.GCRemoval(r))
		})
	}
	if err := output.GC(streams.Out, rep, output.GCOptions{Format: g.Output, ExactBytes: o.exactBytes}); err != nil {
		return err
	}
	return gcOutcome(streams, rep, simErr)
}

// gcOutcome maps a report to the exit code, printing one sentence on
// stderr for anything but success.
func gcOutcome(streams IO, rep *gc.Report, simErr error) error {
	p, a := rep.Plan, rep.Applied
	switch {
	case a != nil && a.Interrupted:
		return fmt.Errorf("interrupted after %d RemoveImage call(s) (%d bytes freed for space, %d for age); run imagefs gc again to see what is left", len(a.Removals), a.FreedBytes, a.MaxAgeFreedBytes)
	case a != nil && len(a.Errors) > 0:
		return fmt.Errorf("image removal failed: %s", strings.Join(a.Errors, "; "))
	case errors.Is(simErr, gc.ErrInvalidCapacity):
		return fmt.Errorf("the kubelet's image GC fails on this node with %q: the image filesystem %s has no capacity in its stats; run imagefs doctor to see why", simErr.Error(), rep.ImageFs.Dir)
	case simErr != nil:
		return simErr
	case a != nil && p.GCRuns && !a.ReachedTarget:
		fmt.Fprintf(streams.ErrOut, "imagefs: FreeDiskSpaceFailed: removed every eligible image and freed %d of %d bytes; the rest of the image filesystem is used by images in use, pinned or too young, or by other data\n", a.FreedBytes, a.AmountToFree)
		return partialError{[]string{p.KubeletMessage}}
	case a == nil && p.Verdict == gc.VerdictTargetNotReachable:
		what := "FreeDiskSpaceFailed: the kubelet would"
		if p.Forced && !p.HighCrossed {
			what = "forced: the kubelet would"
		}
		fmt.Fprintf(streams.ErrOut, "imagefs: %s free only %d of %d bytes by removing every eligible image; the rest of the image filesystem is used by images in use, pinned or too young, or by other data\n", what, p.FreedBytes, p.AmountToFree)
		return partialError{[]string{p.KubeletMessage}}
	}
	return nil
}

// gcTimes finds the kubelet's start and fills in what imagefs assumes for
// the kubelet's in-memory image times.
func gcTimes(o *gcOptions, now time.Time) (gc.Times, error) {
	var t gc.Times
	if p, err := gc.FindKubelet(o.procRoot); err == nil {
		t.KubeletStart = p.Start
		t.KubeletStartSource = fmt.Sprintf("kubelet pid %d, starttime in %s/%d/stat", p.PID, o.procRoot, p.PID)
	} else if boot, berr := gc.BootTime(o.procRoot); berr == nil {
		t.KubeletStart = boot
		t.KubeletStartSource = fmt.Sprintf("no kubelet process in %s, so assumed to have started at boot: btime in %s/stat", o.procRoot, o.procRoot)
	} else {
		t.KubeletStartSource = fmt.Sprintf("unknown: %v; %v", err, berr)
	}
	switch v := o.assumeFirstDetected; {
	case v != "":
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			t.FirstDetected = now.Add(-d)
		} else if ts, err := time.Parse(time.RFC3339, v); err == nil {
			t.FirstDetected = ts
		} else {
			return gc.Times{}, usageError{fmt.Errorf("--assume-first-detected %q is neither an RFC 3339 time (2026-12-04T15:00:00Z) nor a non-negative duration (10m)", v)}
		}
		t.FirstDetectedSource = "--assume-first-detected " + v
	case !t.KubeletStart.IsZero():
		t.FirstDetected = t.KubeletStart
		t.FirstDetectedSource = "the kubelet's start, when its first detection runs"
	default:
		t.FirstDetectedSource = "unknown, so every image counts as older than imageMinimumGCAge; pass --assume-first-detected"
	}
	return t, nil
}

// gcDetectImages is the kubelet's detectImages: ListImages, ListContainers
// (every state) and, for image volumes, ContainerStatus of each container.
func gcDetectImages(ctx context.Context, rt runtime.GCService, t gc.Times, now time.Time) ([]gc.Image, []string, error) {
	images, err := rt.ListImages(ctx)
	if err != nil {
		return nil, nil, err
	}
	containers, err := rt.ListContainers(ctx)
	if err != nil {
		return nil, nil, err
	}
	statuses := map[string]*criapi.ContainerStatus{}
	var notes []string
	for _, c := range gc.Counted(containers) {
		st, err := rt.ContainerStatus(ctx, c.GetId())
		if status.Code(err) == codes.NotFound {
			// Removed since ListContainers. The kubelet's GC run would
			// fail here ("get container status") and retry in 5m.
			notes = append(notes, fmt.Sprintf("container %s disappeared between ListContainers and ContainerStatus; the kubelet's GC run would fail on it and retry at the next period", c.GetId()))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		statuses[c.GetId()] = st
	}
	out, detectNotes := gc.Detect(images, containers, statuses, t, now)
	return out, append(notes, detectNotes...), nil
}
