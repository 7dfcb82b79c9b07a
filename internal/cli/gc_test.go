package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/pkg/analyze/gc"
)

// gcRuntime is a CRI server for imagefs gc: images and containers from
// fixed lists, RemoveImage removes from the list (or fails for ids in
// failRemove), every call counted.
type gcRuntime struct {
	criapi.UnimplementedRuntimeServiceServer
	criapi.UnimplementedImageServiceServer
	endpoint   string
	mountpoint string
	noFsID     bool
	failRemove map[string]bool

	mu         sync.Mutex
	images     []*criapi.Image
	containers []*criapi.Container
	statuses   map[string]*criapi.ContainerStatus
	calls      map[string]int
	removed    []string
}

func (r *gcRuntime) count(m string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[m]++
}

func (r *gcRuntime) Calls(m string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[m]
}

func (r *gcRuntime) Removed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.removed...)
}

func (r *gcRuntime) Version(context.Context, *criapi.VersionRequest) (*criapi.VersionResponse, error) {
	r.count("Version")
	return &criapi.VersionResponse{RuntimeName: "containerd", RuntimeVersion: "v2.4.2", RuntimeApiVersion: "v1"}, nil
}

func (r *gcRuntime) ImageFsInfo(context.Context, *criapi.ImageFsInfoRequest) (*criapi.ImageFsInfoResponse, error) {
	r.count("ImageFsInfo")
	fs := &criapi.FilesystemUsage{Timestamp: time.Now().UnixNano(), FsId: &criapi.FilesystemIdentifier{Mountpoint: r.mountpoint},
		UsedBytes: &criapi.UInt64Value{Value: 1 << 20}, InodesUsed: &criapi.UInt64Value{Value: 10}}
	if r.noFsID {
		fs.FsId = nil
	}
	return &criapi.ImageFsInfoResponse{ImageFilesystems: []*criapi.FilesystemUsage{fs}}, nil
}

func (r *gcRuntime) ListImages(context.Context, *criapi.ListImagesRequest) (*criapi.ListImagesResponse, error) {
	r.count("ListImages")
	r.mu.Lock()
	defer r.mu.Unlock()
	return &criapi.ListImagesResponse{Images: r.images}, nil
}

func (r *gcRuntime) ListContainers(context.Context, *criapi.ListContainersRequest) (*criapi.ListContainersResponse, error) {
	r.count("ListContainers")
	return &criapi.ListContainersResponse{Containers: r.containers}, nil
}

func (r *gcRuntime) ContainerStatus(_ context.Context, req *criapi.ContainerStatusRequest) (*criapi.ContainerStatusResponse, error) {
	r.count("ContainerStatus")
	st, ok := r.statuses[req.GetContainerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %q not found", req.GetContainerId())
	}
	return &criapi.ContainerStatusResponse{Status: st}, nil
}

func (r *gcRuntime) RemoveImage(_ context.Context, req *criapi.RemoveImageRequest) (*criapi.RemoveImageResponse, error) {
	r.count("RemoveImage")
	id := req.GetImage().GetImage()
	if r.failRemove[id] {
		return nil, status.Errorf(codes.Unknown, "failed to delete image %q: injected failure", id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = append(r.removed, id)
	for i, img := range r.images {
		if img.GetId() == id {
			r.images = append(r.images[:i:i], r.images[i+1:]...)
			break
		}
	}
	return &criapi.RemoveImageResponse{}, nil
}

// Sizes in the fixture: gcHuge images alone exceed any real filesystem's
// used bytes, so with --image-gc-low-threshold 0 (amountToFree = capacity -
// available) one of them always reaches the target, whatever the host's
// temp filesystem holds; gcTiny ones never do.
const (
	gcHuge = 1 << 50
	gcTiny = 1
)

// startGCRuntime serves the node: app (running), job (exited), data (image
// volume of app), pause (pinned), and unused images old-a, old-b, old-c of
// the given sizes.
func startGCRuntime(t *testing.T, sizes [3]uint64) *gcRuntime {
	t.Helper()
	dir, err := os.MkdirTemp("", "cligc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "cri.sock")
	labels := func(pod string) map[string]string {
		return map[string]string{"io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.name": pod}
	}
	r := &gcRuntime{
		endpoint:   "unix://" + path,
		mountpoint: t.TempDir(),
		calls:      map[string]int{},
		images: []*criapi.Image{
			{Id: "sha256:app", RepoTags: []string{"example.com/app:v1"}, Size: gcHuge},
			{Id: "sha256:job", RepoTags: []string{"example.com/job:v1"}, Size: gcHuge},
			{Id: "sha256:data", RepoTags: []string{"example.com/data:v1"}, Size: gcHuge},
			{Id: "sha256:pause", RepoTags: []string{"registry.k8s.io/pause:3.10"}, Size: gcHuge, Pinned: true},
			{Id: "sha256:old-c", RepoTags: []string{"example.com/old-c:v1"}, Size: sizes[2]},
			{Id: "sha256:old-a", RepoTags: []string{"example.com/old-a:v1"}, Size: sizes[0]},
			{Id: "sha256:old-b", RepoDigests: []string{"example.com/old-b@sha256:1"}, Size: sizes[1]},
		},
		containers: []*criapi.Container{
			{Id: "c-app", Metadata: &criapi.ContainerMetadata{Name: "app"}, Image: &criapi.ImageSpec{Image: "example.com/app:v1"},
				ImageRef: "sha256:app", State: criapi.ContainerState_CONTAINER_RUNNING, Labels: labels("web")},
			{Id: "c-job", Metadata: &criapi.ContainerMetadata{Name: "job"}, Image: &criapi.ImageSpec{Image: "example.com/job:v1"},
				ImageRef: "sha256:job", State: criapi.ContainerState_CONTAINER_EXITED, Labels: labels("batch")},
		},
		statuses: map[string]*criapi.ContainerStatus{
			"c-app": {Id: "c-app", Mounts: []*criapi.Mount{{ContainerPath: "/data", Image: &criapi.ImageSpec{Image: "sha256:data"}}}},
			"c-job": {Id: "c-job"},
		},
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	criapi.RegisterRuntimeServiceServer(srv, r)
	criapi.RegisterImageServiceServer(srv, r)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return r
}

// gcFakeProc writes a proc root whose kubelet started at kubeletStart (zero:
// no kubelet process), booted an hour earlier.
func gcFakeProc(t *testing.T, kubeletStart time.Time) (root string, boot time.Time) {
	t.Helper()
	root = t.TempDir()
	boot = time.Unix(time.Now().Add(-10*time.Hour).Unix(), 0)
	if !kubeletStart.IsZero() {
		boot = time.Unix(kubeletStart.Add(-time.Hour).Unix(), 0)
	}
	files := map[string]string{"stat": fmt.Sprintf("cpu 1\nbtime %d\n", boot.Unix()), "1/comm": "systemd\n"}
	if !kubeletStart.IsZero() {
		ticks := kubeletStart.Sub(boot) / (time.Second / 100)
		files["4242/comm"] = "kubelet\n"
		files["4242/stat"] = fmt.Sprintf("4242 (kubelet) S 1 1 1 0 -1 4194560 1 0 0 0 1 1 0 0 20 0 30 0 %d 100000 100\n", ticks)
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, boot
}

type gcResult struct {
	code        int
	out, errOut string
}

// runGCCmd runs "imagefs gc args…" through the root command with o's
// test hooks. Until root.go registers gc, the command is added here and
// handed the global flags' values.
func runGCCmd(t *testing.T, o *gcOptions, args ...string) gcResult {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := IO{Out: &out, ErrOut: &errOut}
	root := NewRootCommand(streams)
	for _, c := range root.Commands() {
		if c.Name() == "gc" {
			root.RemoveCommand(c)
		}
	}
	g := &GlobalOptions{}
	cmd := newGCCommandWith(g, streams, o)
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, a []string) error {
		f := c.Flags()
		g.RuntimeEndpoint, _ = f.GetString("runtime-endpoint")
		g.Timeout, _ = f.GetDuration("timeout")
		g.RootDir, _ = f.GetString("root-dir")
		g.Output, _ = f.GetString("output")
		g.Mountinfo, _ = f.GetString("mountinfo")
		g.NodeName, _ = f.GetString("node-name")
		return run(c, a)
	}
	root.AddCommand(cmd)
	argsAreUsageErrors(root)
	root.SetArgs(append([]string{"gc"}, args...))
	code := exitCode(root.ExecuteContext(context.Background()), &errOut)
	r := gcResult{code, out.String(), errOut.String()}
	t.Logf("imagefs gc %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.out, r.errOut)
	return r
}

func gcOpts(t *testing.T, kubeletStart time.Time) *gcOptions {
	root, _ := gcFakeProc(t, kubeletStart)
	return &gcOptions{procRoot: root, now: time.Now}
}

func decodeGC(t *testing.T, out string) gc.Report {
	t.Helper()
	var r gc.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stdout is not a gc report: %v\n%s", err, out)
	}
	if r.Plan == nil {
		t.Fatalf("no plan: %s", out)
	}
	return r
}

// skipIfGCUnresolvable skips when the temp dir's filesystem is not in
// cadvisor's partition map here (fsinfo's business, not gc's).
func skipIfGCUnresolvable(t *testing.T, r gcResult) {
	t.Helper()
	if r.code == ExitError && strings.Contains(r.errOut, "ImageFsStats fails") {
		t.Skipf("the temp dir's filesystem does not resolve here: %s", r.errOut)
	}
}

func gcCandidateIDs(p *gc.Plan, onlyRemoved bool) []string {
	out := []string{}
	for _, c := range p.Candidates {
		if !onlyRemoved || c.WouldRemove {
			out = append(out, c.ID)
		}
	}
	return out
}

var gcAlwaysRuns = []string{"--image-gc-high-threshold", "1", "--image-gc-low-threshold", "0", "--image-minimum-gc-age", "0s"}

func TestGCUsageErrors(t *testing.T) {
	t.Parallel()
	r := startGCRuntime(t, [3]uint64{gcHuge, gcHuge, gcHuge})
	ep := []string{"--runtime-endpoint", r.endpoint}
	for _, tc := range []struct {
		name    string
		args    []string
		phrases []string
	}{
		{"apply without yes", []string{"--apply"}, []string{"--apply removes images", "needs --yes"}},
		{"yes without apply", []string{"--yes"}, []string{"--yes only confirms --apply"}},
		{"apply and dry-run", []string{"--apply", "--yes", "--dry-run"}, []string{"exclude each other"}},
		{"low not below high", []string{"--image-gc-high-threshold", "80"}, []string{"imageGCLowThresholdPercent (--image-gc-low-threshold) 80 must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) 80", "would not start"}},
		{"high above 100", []string{"--image-gc-high-threshold", "101"}, []string{"between 0 and 100"}},
		{"max age not above min age", []string{"--image-maximum-gc-age", "1m"}, []string{"imageMaximumGCAge 1m0s must be greater than imageMinimumGCAge 2m0s"}},
		{"negative min age", []string{"--image-minimum-gc-age", "-1s"}, []string{"must not be negative"}},
		{"bad first detected", []string{"--assume-first-detected", "yesterday"}, []string{`--assume-first-detected "yesterday"`, "RFC 3339"}},
		{"bad output", []string{"-o", "xml"}, []string{`unknown --output "xml"`}},
		{"argument", []string{"now"}, []string{`unknown command "now"`}},
		{"bad flag value", []string{"--image-gc-high-threshold", "lots"}, []string{"lots"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runGCCmd(t, gcOpts(t, time.Time{}), append(append([]string{}, ep...), tc.args...)...)
			if res.code != ExitUsage || res.out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", res.code, res.out)
			}
			for _, p := range tc.phrases {
				if !strings.Contains(res.errOut, p) {
					t.Errorf("stderr lacks %q", p)
				}
			}
			if strings.Count(res.errOut, "\n") != 1 || !strings.HasPrefix(res.errOut, "imagefs: ") {
				t.Errorf("stderr is not one sentence: %q", res.errOut)
			}
		})
	}
	t.Cleanup(func() {
		if n := r.Calls("RemoveImage") + r.Calls("ListImages") + r.Calls("Version"); n != 0 {
			t.Errorf("usage errors made %d runtime calls", n)
		}
	})
}

func TestGCDryRun(t *testing.T) {
	t.Parallel()
	r := startGCRuntime(t, [3]uint64{gcHuge, gcHuge, gcHuge})
	kubeletStart := time.Now().Add(-time.Hour).Truncate(time.Second)
	res := runGCCmd(t, gcOpts(t, kubeletStart), append([]string{"--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir(), "-o", "json", "--dry-run"}, gcAlwaysRuns...)...)
	skipIfGCUnresolvable(t, res)
	if res.code != ExitOK || res.errOut != "" {
		t.Fatalf("exit %d, stderr %q", res.code, res.errOut)
	}
	rep := decodeGC(t, res.out)
	p := rep.Plan
	// Unused, unpinned, all never used and detected at the kubelet start:
	// one tie group, ordered by ID. One gcHuge image reaches any target.
	if got, want := gcCandidateIDs(p, false), []string{"sha256:old-a", "sha256:old-b", "sha256:old-c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("candidates %v, want %v", got, want)
	}
	if got := gcCandidateIDs(p, true); !reflect.DeepEqual(got, []string{"sha256:old-a"}) {
		t.Errorf("removed %v, want only old-a", got)
	}
	skips := map[string]gc.SkipReason{}
	for _, s := range p.Skipped {
		skips[s.ID] = s.Reason
	}
	want := map[string]gc.SkipReason{"sha256:app": gc.SkipInUse, "sha256:job": gc.SkipInUse, "sha256:data": gc.SkipInUse, "sha256:pause": gc.SkipPinned}
	if !reflect.DeepEqual(skips, want) {
		t.Errorf("skipped %v, want %v", skips, want)
	}
	if !p.HighCrossed || !p.GCRuns || p.Verdict != gc.VerdictReachesTarget || p.AmountToFree != int64(p.CapacityBytes-p.AvailableBytes) {
		t.Errorf("plan: crossed %v runs %v verdict %s amountToFree %d (capacity %d, available %d)", p.HighCrossed, p.GCRuns, p.Verdict, p.AmountToFree, p.CapacityBytes, p.AvailableBytes)
	}
	if !rep.Times.KubeletStart.Equal(kubeletStart) || !strings.Contains(rep.Times.KubeletStartSource, "kubelet pid 4242") {
		t.Errorf("times %+v, want the fake kubelet's start %s", rep.Times, kubeletStart)
	}
	for _, c := range p.Candidates {
		if !c.FirstDetected.Equal(kubeletStart) || !c.LastUsed.IsZero() || c.Assumed == "" {
			t.Errorf("%s: firstDetected %s lastUsed %s assumed %q", c.ID, c.FirstDetected, c.LastUsed, c.Assumed)
		}
	}
	if len(p.Assumptions) < 4 || rep.ImageFs.Dir != r.mountpoint {
		t.Errorf("assumptions %q, imageFs %+v", p.Assumptions, rep.ImageFs)
	}
	if n := r.Calls("ContainerStatus"); n != 2 {
		t.Errorf("%d ContainerStatus calls, want 2 (one per container)", n)
	}
	if n := r.Calls("RemoveImage"); n != 0 {
		t.Errorf("a dry run made %d RemoveImage calls", n)
	}

	// Table and YAML of the same node.
	res = runGCCmd(t, gcOpts(t, kubeletStart), append([]string{"--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir()}, gcAlwaysRuns...)...)
	for _, w := range []string{"usage ", "(100 - floor(available*100/capacity)) ≥ high 1%: GC runs, must free", "bytes to reach 0%",
		"example.com/old-a:v1", "remove", "keep (target reached)", "in-use", "default/web/app (running)", "pinned", "verdict: reaches the target", "assumptions:"} {
		if !strings.Contains(res.out, w) {
			t.Errorf("table lacks %q", w)
		}
	}
	res = runGCCmd(t, gcOpts(t, kubeletStart), append([]string{"--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir(), "-o", "yaml"}, gcAlwaysRuns...)...)
	if res.code != ExitOK || !strings.Contains(res.out, "verdict: reaches-target") {
		t.Errorf("yaml: exit %d", res.code)
	}
	if n := r.Calls("RemoveImage"); n != 0 {
		t.Errorf("dry runs made %d RemoveImage calls", n)
	}
}

func TestGCTargetNotReachable(t *testing.T) {
	t.Parallel()
	r := startGCRuntime(t, [3]uint64{gcTiny, gcTiny, gcTiny})
	res := runGCCmd(t, gcOpts(t, time.Now().Add(-time.Hour)), append([]string{"--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir()}, gcAlwaysRuns...)...)
	skipIfGCUnresolvable(t, res)
	if res.code != ExitGCTargetNotReachable {
		t.Errorf("exit %d, want %d", res.code, ExitGCTargetNotReachable)
	}
	if !strings.Contains(res.out, "verdict: FreeDiskSpaceFailed: would free only 3 of") || !strings.Contains(res.out, "kubelet: Insufficient free disk space") {
		t.Errorf("table lacks the FreeDiskSpaceFailed verdict")
	}
	if !strings.HasPrefix(res.errOut, "imagefs: FreeDiskSpaceFailed: the kubelet would free only 3 of ") || strings.Count(res.errOut, "\n") != 1 {
		t.Errorf("stderr %q", res.errOut)
	}
}

func TestGCApply(t *testing.T) {
	t.Parallel()
	r := startGCRuntime(t, [3]uint64{gcTiny, gcHuge, gcHuge})
	res := runGCCmd(t, gcOpts(t, time.Now().Add(-time.Hour)), append([]string{"--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir(), "-o", "json", "--apply", "--yes"}, gcAlwaysRuns...)...)
	skipIfGCUnresolvable(t, res)
	if res.code != ExitOK {
		t.Fatalf("exit %d", res.code)
	}
	// old-a (1 byte) does not reach the target, old-b (gcHuge) does; old-c stays.
	if got, want := r.Removed(), []string{"sha256:old-a", "sha256:old-b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("removed %v, want %v", got, want)
	}
	rep := decodeGC(t, res.out)
	if a := rep.Applied; a == nil || len(a.Removals) != 2 || !a.ReachedTarget || a.FreedBytes != gcTiny+gcHuge {
		t.Errorf("applied %+v", rep.Applied)
	}
	lines := strings.Split(strings.TrimSpace(res.errOut), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "imagefs: removed example.com/old-a:v1 (sha256:old-a, 1 bytes, space): 1 bytes freed so far") ||
		!strings.Contains(lines[1], fmt.Sprintf("%d bytes freed so far", gcTiny+gcHuge)) {
		t.Errorf("progress lines %q", lines)
	}
}

func TestGCApplyRemovalFails(t *testing.T) {
	t.Parallel()
	r := startGCRuntime(t, [3]uint64{gcHuge, gcHuge, gcHuge})
	r.failRemove = map[string]bool{"sha256:old-a": true}
	res := runGCCmd(t, gcOpts(t, time.Now().Add(-time.Hour)), append([]string{"--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir(), "--apply", "--yes"}, gcAlwaysRuns...)...)
	skipIfGCUnresolvable(t, res)
	// As the kubelet: the failure is recorded, the next candidate frees the space.
	if got := r.Removed(); !reflect.DeepEqual(got, []string{"sha256:old-b"}) {
		t.Errorf("removed %v, want old-b after old-a failed", got)
	}
	if res.code != ExitError || !strings.Contains(res.errOut, "imagefs: image removal failed: wanted to free") || !strings.Contains(res.errOut, "injected failure") {
		t.Errorf("exit %d, stderr %q", res.code, res.errOut)
	}
	if !strings.Contains(res.out, "failed to remove example.com/old-a:v1") {
		t.Errorf("table lacks the failed removal")
	}
}

// TestGCForceAndMaxAge: usage below a 100% high threshold (not disabled:
// max age is set), kubelet up 3h, max age 1h: the never-used images go for
// age; --force additionally plans the space removals.
func TestGCForceAndMaxAge(t *testing.T) {
	t.Parallel()
	r := startGCRuntime(t, [3]uint64{gcHuge, gcHuge, gcHuge})
	args := []string{"--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir(), "-o", "json",
		"--image-gc-high-threshold", "100", "--image-gc-low-threshold", "0", "--image-maximum-gc-age", "1h"}
	res := runGCCmd(t, gcOpts(t, time.Now().Add(-30*time.Minute)), append(args, "--force")...)
	skipIfGCUnresolvable(t, res)
	if res.code != ExitOK {
		t.Fatalf("exit %d", res.code)
	}
	p := decodeGC(t, res.out).Plan
	if p.HighCrossed {
		t.Skipf("the temp filesystem is over 99%% full here")
	}
	if !p.Forced || !p.GCRuns || p.MaxAgeApplies || len(p.MaxAgeRemovals) != 0 || !reflect.DeepEqual(gcCandidateIDs(p, true), []string{"sha256:old-a"}) {
		t.Errorf("forced plan: forced %v runs %v maxAge %v %v removed %v", p.Forced, p.GCRuns, p.MaxAgeApplies, p.MaxAgeRemovals, gcCandidateIDs(p, true))
	}

	res = runGCCmd(t, gcOpts(t, time.Now().Add(-3*time.Hour)), args...)
	p = decodeGC(t, res.out).Plan
	var aged []string
	for _, c := range p.MaxAgeRemovals {
		aged = append(aged, c.ID)
	}
	if res.code != ExitOK || p.Verdict != gc.VerdictBelowThreshold || !p.MaxAgeApplies ||
		!reflect.DeepEqual(aged, []string{"sha256:old-a", "sha256:old-b", "sha256:old-c"}) || len(p.Candidates) != 0 {
		t.Errorf("max-age plan: exit %d verdict %s applies %v aged %v candidates %v", res.code, p.Verdict, p.MaxAgeApplies, aged, gcCandidateIDs(p, false))
	}
	res = runGCCmd(t, gcOpts(t, time.Now().Add(-3*time.Hour)), append(args, "--apply", "--yes")...)
	if got := r.Removed(); res.code != ExitOK || !reflect.DeepEqual(got, aged) {
		t.Errorf("apply: exit %d removed %v, want %v", res.code, got, aged)
	}
}

func TestGCTimesAssumed(t *testing.T) {
	t.Parallel()
	r := startGCRuntime(t, [3]uint64{gcHuge, gcHuge, gcHuge})
	// No kubelet here: boot time stands in; --assume-first-detected 1m makes
	// every image younger than the default 2m minimum age.
	opts := gcOpts(t, time.Time{})
	res := runGCCmd(t, opts, "--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir(), "-o", "json",
		"--image-gc-high-threshold", "1", "--image-gc-low-threshold", "0", "--assume-first-detected", "1m")
	skipIfGCUnresolvable(t, res)
	rep := decodeGC(t, res.out)
	if !strings.Contains(rep.Times.KubeletStartSource, "no kubelet process") || !strings.Contains(rep.Times.FirstDetectedSource, "--assume-first-detected 1m") {
		t.Errorf("times %+v", rep.Times)
	}
	if len(rep.Plan.Candidates) != 0 || res.code != ExitGCTargetNotReachable {
		t.Errorf("exit %d, candidates %v: every image should be too young", res.code, gcCandidateIDs(rep.Plan, false))
	}
	for _, s := range rep.Plan.Skipped {
		if strings.HasPrefix(s.ID, "sha256:old-") && s.Reason != gc.SkipTooYoung {
			t.Errorf("%s skipped as %s", s.ID, s.Reason)
		}
	}
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	res = runGCCmd(t, opts, "--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir(), "-o", "json", "--assume-first-detected", at.Format(time.RFC3339))
	if rep := decodeGC(t, res.out); !rep.Times.FirstDetected.Equal(at) {
		t.Errorf("firstDetected %s, want %s", rep.Times.FirstDetected, at)
	}
}

func TestGCInvalidCapacity(t *testing.T) {
	t.Parallel()
	r := startGCRuntime(t, [3]uint64{gcHuge, gcHuge, gcHuge})
	r.noFsID = true // the kubelet omits capacity: "invalid capacity 0 on image filesystem"
	res := runGCCmd(t, gcOpts(t, time.Now().Add(-time.Hour)), "--runtime-endpoint", r.endpoint, "--root-dir", t.TempDir())
	if res.code != ExitError || !strings.Contains(res.errOut, `imagefs: the kubelet's image GC fails on this node with "invalid capacity 0 on image filesystem"`) {
		t.Errorf("exit %d stderr %q", res.code, res.errOut)
	}
	if !strings.Contains(res.out, "verdict: InvalidDiskCapacity") || !strings.Contains(res.out, "fsID is nil") {
		t.Errorf("table lacks the verdict or the reason")
	}
}
