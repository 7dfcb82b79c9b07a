//go:build integration && linux

package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/internal/lab"
	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/analyze/gc"
)

// TestGC runs imagefs gc against each containerd build on a 512 MiB ext4
// filled past the 85% high threshold, with a running pod: one container
// running (app), one exited (job), both protecting their images; the
// sandbox (pause) image; and five unused images, one sharing its base layer
// with app. It checks the dry run's plan against independent sources
// (statfs, CRI ListImages), applies it, and measures how far the kubelet's
// "freed = sum of CRI image sizes" is from what the runtime and the
// filesystem then report.
func TestGC(t *testing.T) {
	testutil.RequireRoot(t)
	if _, errOut, code := runImagefs(t, "gc", "--help"); code != 0 {
		t.Fatalf("imagefs gc is not available (exit %d: %s): internal/cli/root.go must register it with root.AddCommand(newGCCommand(g, streams))", code, strings.TrimSpace(errOut))
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs the static busybox to build runnable images: %v; %s", err, lab.InstallHint)
	}
	for _, b := range lab.Binaries() {
		t.Run(b.Name, func(t *testing.T) {
			testutil.RequirePods(t, b)
			t.Parallel()
			testGC(t, b, busybox)
		})
	}
}

// gcNode is the state TestGC builds: refs by role.
type gcNode struct {
	c                   *lab.Containerd
	rt                  runtimeapi.RuntimeServiceClient
	img                 runtimeapi.ImageServiceClient
	pause, app, job     string
	unused              []string
	sharedWithApp       string
	appID, jobID, podID string
}

func testGC(t *testing.T, b lab.Binary, busybox []byte) {
	m := testutil.MountFS(t, "ext4", 512<<20)
	n := gcSetup(t, b, m.Dir, busybox)

	// Past the high threshold: available 13% of capacity, usage 87%.
	fillTo(t, m.Dir, 0.13)
	images := gcListImages(t, n)
	byRef := map[string]*runtimeapi.Image{}
	for _, img := range images {
		for _, tag := range img.GetRepoTags() {
			byRef[tag] = img
		}
	}
	for _, ref := range append([]string{n.pause, n.app, n.job}, n.unused...) {
		if byRef[ref] == nil {
			t.Fatalf("image %s not listed by CRI", ref)
		}
	}
	pauseImg := byRef[n.pause]
	t.Logf("%s: sandbox image %s pinned=%v; container image refs: app %q, job %q", b.Name, n.pause, pauseImg.GetPinned(), gcContainerImage(t, n, n.appID), gcContainerImage(t, n, n.jobID))

	common := []string{"--runtime-endpoint", n.c.Endpoint, "--root-dir", t.TempDir(), "--image-minimum-gc-age", "0s"}

	// --apply without --yes: a usage error, and nothing removed.
	out, errOut, code := runImagefs(t, append([]string{"gc", "--apply"}, common...)...)
	if code != 2 || out != "" || !strings.Contains(errOut, "--yes") {
		t.Errorf("--apply without --yes: exit %d, stdout %q, stderr %q; want 2, nothing, a sentence naming --yes", code, out, errOut)
	}
	if after := gcListImages(t, n); len(after) != len(images) {
		t.Fatalf("--apply without --yes changed the images: %d → %d", len(images), len(after))
	}

	// The dry run, between two independent statfs of the filesystem.
	before := gcStatfs(t, m.Dir)
	out, errOut, code = runImagefs(t, append([]string{"gc", "--dry-run", "-o", "json"}, common...)...)
	after := gcStatfs(t, m.Dir)
	if code != 0 {
		t.Fatalf("dry run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var dry gc.Report
	if err := json.Unmarshal([]byte(out), &dry); err != nil || dry.Plan == nil {
		t.Fatalf("dry run JSON: %v\n%s", err, out)
	}
	p := dry.Plan
	capacity, avail := before.capacity, before.available
	if after != before {
		t.Logf("statfs moved during the dry run: %+v → %+v; comparing with whichever matches", before, after)
		if p.AvailableBytes == after.available {
			capacity, avail = after.capacity, after.available
		}
	}
	wantUsage := 100 - int(int64(avail)*100/int64(capacity))
	wantToFree := int64(capacity)*(100-80)/100 - int64(avail)
	if p.CapacityBytes != capacity || p.AvailableBytes != avail || p.UsagePercent != wantUsage || p.AmountToFree != wantToFree {
		t.Errorf("plan capacity %d available %d usage %d%% amountToFree %d; statfs says %d %d → %d%%, %d",
			p.CapacityBytes, p.AvailableBytes, p.UsagePercent, p.AmountToFree, capacity, avail, wantUsage, wantToFree)
	}
	if wantUsage < 85 || !p.HighCrossed || !p.GCRuns {
		t.Fatalf("usage %d%% (plan: crossed %v): the fill did not cross the high threshold", wantUsage, p.HighCrossed)
	}

	// Skips: both containers' images (running and exited) are in use; the
	// sandbox image is protected only if the runtime pins it (the kubelet
	// does not count sandboxes as containers).
	skips := map[string]gc.SkipReason{}
	for _, s := range p.Skipped {
		skips[s.ID] = s.Reason
	}
	if skips[byRef[n.app].GetId()] != gc.SkipInUse || skips[byRef[n.job].GetId()] != gc.SkipInUse {
		t.Errorf("app and job images should be skipped as in use: %v", skips)
	}
	cands := map[string]gc.Candidate{}
	for _, c := range p.Candidates {
		cands[c.ID] = c
	}
	if pauseImg.GetPinned() {
		if skips[pauseImg.GetId()] != gc.SkipPinned {
			t.Errorf("the pinned sandbox image is not skipped as pinned: %v", skips)
		}
	} else if _, ok := cands[pauseImg.GetId()]; !ok {
		t.Errorf("the unpinned sandbox image should be a candidate, as for the kubelet")
	} else {
		t.Logf("%s does not pin the sandbox image: the kubelet's image GC may remove it (sandboxes are not containers in detectImages)", b.Name)
	}
	for _, id := range []string{byRef[n.app].GetId(), byRef[n.job].GetId()} {
		if _, ok := cands[id]; ok {
			t.Errorf("in-use image %s is a candidate", id)
		}
	}

	// Candidates: every unused image, with the CRI size, in the kubelet's
	// order (all lastUsed "never" and firstDetected equal here, so one tie
	// group listed by ID).
	wantIDs := []string{}
	for _, ref := range n.unused {
		wantIDs = append(wantIDs, byRef[ref].GetId())
	}
	if !pauseImg.GetPinned() {
		wantIDs = append(wantIDs, pauseImg.GetId())
	}
	sort.Strings(wantIDs)
	var gotIDs []string
	var predicted int64
	var predictedRefs []string
	for i, c := range p.Candidates {
		gotIDs = append(gotIDs, c.ID)
		if i > 0 {
			prev := p.Candidates[i-1]
			if c.LastUsed.Before(prev.LastUsed) || (c.LastUsed.Equal(prev.LastUsed) && c.FirstDetected.Before(prev.FirstDetected)) {
				t.Errorf("candidate %d (%s) is out of the kubelet's order", i+1, c.ID)
			}
		}
		for _, img := range images {
			if img.GetId() == c.ID && img.GetSize() != c.Size {
				t.Errorf("%s: plan size %d, CRI size %d", c.ID, c.Size, img.GetSize())
			}
		}
		if c.WouldRemove {
			predicted += int64(c.Size)
			predictedRefs = append(predictedRefs, c.ID)
			if c.CumulativeFreedBytes != predicted {
				t.Errorf("%s: cumulative %d, want %d", c.ID, c.CumulativeFreedBytes, predicted)
			}
		}
	}
	if strings.Join(gotIDs, " ") != strings.Join(wantIDs, " ") {
		t.Errorf("candidates %v, want %v", gotIDs, wantIDs)
	}
	if p.Verdict != gc.VerdictReachesTarget || predicted != p.FreedBytes || predicted < p.AmountToFree {
		t.Fatalf("verdict %s, predicted %d (plan %d) for amountToFree %d", p.Verdict, predicted, p.FreedBytes, p.AmountToFree)
	}
	t.Logf("plan: usage %d%%, amountToFree %d, remove %d of %d candidates (%d bytes by CRI size)", p.UsagePercent, p.AmountToFree, len(predictedRefs), len(p.Candidates), predicted)
	tableOut, _, _ := runImagefs(t, append([]string{"gc", "--dry-run"}, common...)...)
	t.Logf("imagefs gc --dry-run --image-minimum-gc-age 0s:\n%s", tableOut)

	// Apply, measuring the runtime's and the filesystem's own accounting
	// before and after.
	used0 := gcSettledUsed(t, n)
	avail0 := gcSettledAvail(t, m.Dir)
	out, errOut, code = runImagefs(t, append([]string{"gc", "--apply", "--yes", "-o", "json"}, common...)...)
	if code != 0 {
		t.Fatalf("apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var applied gc.Report
	if err := json.Unmarshal([]byte(out), &applied); err != nil || applied.Applied == nil {
		t.Fatalf("apply JSON: %v\n%s", err, out)
	}
	if got := strings.Count(errOut, "imagefs: removed "); got != len(predictedRefs) {
		t.Errorf("%d progress lines on stderr, want %d:\n%s", got, len(predictedRefs), errOut)
	}
	var removedIDs []string
	for _, r := range applied.Applied.Removals {
		removedIDs = append(removedIDs, r.ID)
	}
	if strings.Join(removedIDs, " ") != strings.Join(predictedRefs, " ") || !applied.Applied.ReachedTarget {
		t.Errorf("applied %v (reached %v), predicted %v", removedIDs, applied.Applied.ReachedTarget, predictedRefs)
	}
	left := map[string]bool{}
	for _, img := range gcListImages(t, n) {
		left[img.GetId()] = true
	}
	for _, img := range images {
		gone := !left[img.GetId()]
		want := false
		for _, id := range predictedRefs {
			want = want || id == img.GetId()
		}
		if gone != want {
			t.Errorf("%v: gone=%v, predicted gone=%v", img.GetRepoTags(), gone, want)
		}
	}
	for _, ref := range []string{n.app, n.job} {
		if !left[byRef[ref].GetId()] {
			t.Errorf("in-use image %s was removed", ref)
		}
	}
	if pauseImg.GetPinned() && !left[pauseImg.GetId()] {
		t.Errorf("pinned sandbox image was removed")
	}

	used1 := gcSettledUsed(t, n)
	avail1 := gcSettledAvail(t, m.Dir)
	runtimeFreed := int64(used0) - int64(used1)
	statfsFreed := int64(avail1) - int64(avail0)
	pct := func(v int64) float64 { return 100 * float64(v-predicted) / float64(predicted) }
	t.Logf("%s prediction error: predicted (sum of CRI sizes of %d removed images) %d bytes;"+
		" runtime ImageFsInfo usedBytes %d → %d: freed %d (%+.1f%%);"+
		" statfs available %d → %d: freed %d (%+.1f%%); statfs - runtime = %d (content store, metadata)",
		b.Name, len(predictedRefs), predicted, used0, used1, runtimeFreed, pct(runtimeFreed),
		avail0, avail1, statfsFreed, pct(statfsFreed), statfsFreed-runtimeFreed)

	// Bounds. Images here are docker-archives with uncompressed layers, so
	// each layer is on disk twice: the blob in the content store (what the
	// CRI size counts, plus manifest and config) and the unpacked snapshot
	// (what usedBytes counts). Removing an image frees its blobs and the
	// snapshots no remaining image shares, each rounded up to 4 KiB blocks.
	//  - usedBytes: at most the removed layers' unpacked size ≈ predicted
	//    (+ block rounding, 5% + 1 MiB), at least predicted minus layers
	//    still shared with kept images (the busybox base of app:v0, ≤ 2 MiB
	//    each) and manifest/config bytes: > 80% of predicted.
	//  - statfs: blobs + snapshots ≈ 2 × predicted; at least predicted, at
	//    most 2 × predicted + 5% + 4 MiB (ext4 metadata and journal noise).
	if lo, hi := predicted*8/10, predicted*105/100+1<<20; runtimeFreed < lo || runtimeFreed > hi {
		t.Errorf("runtime freed %d, outside [%d, %d] around the prediction %d", runtimeFreed, lo, hi, predicted)
	}
	if lo, hi := predicted, 2*predicted*105/100+4<<20; statfsFreed < lo || statfsFreed > hi {
		t.Errorf("statfs freed %d, outside [%d, %d] for prediction %d", statfsFreed, lo, hi, predicted)
	}

	// Afterwards the node is below the high threshold: nothing to do.
	out, errOut, code = runImagefs(t, append([]string{"gc", "-o", "json"}, common...)...)
	var again gc.Report
	if err := json.Unmarshal([]byte(out), &again); code != 0 || err != nil || again.Plan.Verdict != gc.VerdictBelowThreshold {
		t.Errorf("after apply: exit %d, %v, stderr %q:\n%s", code, err, errOut, out)
	}
}

// gcSetup starts containerd b on dir with a busybox sandbox image, imports
// the images and runs the pod: app running, job exited.
func gcSetup(t *testing.T, b lab.Binary, dir string, busybox []byte) *gcNode {
	t.Helper()
	base := []lab.File{{Path: "bin/busybox", Content: busybox, Mode: 0o755}}
	sleep := lab.ImageConfig{Entrypoint: []string{"/bin/busybox", "sleep", "100000"}}
	n := &gcNode{
		pause: "lab.local/gc/pause:v1", app: "lab.local/gc/app:v1", job: "lab.local/gc/job:v1",
		sharedWithApp: "lab.local/gc/app:v0",
	}
	type image struct {
		ref    string
		cfg    lab.ImageConfig
		layers [][]lab.File
	}
	all := []image{
		{n.pause, sleep, [][]lab.File{base}},
		{n.app, sleep, append([][]lab.File{base}, lab.RandomLayers(1, 6<<20)...)},
		{n.job, lab.ImageConfig{Entrypoint: []string{"/bin/busybox", "true"}}, append([][]lab.File{base}, lab.RandomLayers(2, 3<<20)...)},
		{n.sharedWithApp, sleep, append([][]lab.File{base}, lab.RandomLayers(3, 10<<20)...)},
		{"lab.local/gc/old-a:v1", lab.ImageConfig{Cmd: []string{"/bin/true"}}, lab.RandomLayers(10, 24<<20)},
		{"lab.local/gc/old-b:v1", lab.ImageConfig{Cmd: []string{"/bin/true"}}, lab.RandomLayers(11, 12<<20, 4<<20)},
		{"lab.local/gc/old-c:v1", lab.ImageConfig{Cmd: []string{"/bin/true"}}, lab.RandomLayers(12, 8<<20)},
		{"lab.local/gc/old-d:v1", lab.ImageConfig{Cmd: []string{"/bin/true"}}, lab.RandomLayers(13, 4<<20)},
	}
	n.unused = []string{n.sharedWithApp, "lab.local/gc/old-a:v1", "lab.local/gc/old-b:v1", "lab.local/gc/old-c:v1", "lab.local/gc/old-d:v1"}

	n.c = testutil.StartContainerd(t, b, filepath.Join(dir, "containerd"), func(cfg *lab.Config) { cfg.SandboxImage = n.pause })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	for i, im := range all {
		tar := filepath.Join(tmp, strings.NewReplacer("/", "_", ":", "_").Replace(im.ref)+".tar")
		if err := lab.BuildImageWithConfig(tar, im.ref, im.cfg, im.layers...); err != nil {
			t.Fatal(err)
		}
		if err := n.c.Import(ctx, tar); err != nil {
			t.Fatalf("import %d %s: %v", i, im.ref, err)
		}
	}

	conn, err := grpc.NewClient(n.c.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n.rt, n.img = runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)

	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "gc-test", Namespace: "default", Uid: "gc-test-uid"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}},
	}
	pod, err := n.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	n.podID = pod.GetPodSandboxId()
	start := func(name, ref string) string {
		resp, err := n.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: n.podID,
			Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: name},
				Image:    &runtimeapi.ImageSpec{Image: ref},
				Labels:   map[string]string{"io.kubernetes.pod.name": "gc-test", "io.kubernetes.pod.namespace": "default"},
				Linux:    &runtimeapi.LinuxContainerConfig{},
			},
			SandboxConfig: podCfg,
		})
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", name, err)
		}
		if _, err := n.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.GetContainerId()}); err != nil {
			t.Fatalf("StartContainer %s: %v", name, err)
		}
		return resp.GetContainerId()
	}
	n.appID = start("app", n.app)
	n.jobID = start("job", n.job)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := n.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: n.jobID})
		if err == nil && st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job container did not exit: %v %v", st, err)
		}
	}
	return n
}

func gcListImages(t *testing.T, n *gcNode) []*runtimeapi.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := n.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	return resp.GetImages()
}

func gcContainerImage(t *testing.T, n *gcNode, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := n.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: id}})
	if err != nil || len(resp.GetContainers()) != 1 {
		t.Fatalf("ListContainers %s: %v %v", id, resp, err)
	}
	c := resp.GetContainers()[0]
	return "image_ref=" + c.GetImageRef() + " image_id=" + c.GetImageId()
}

type gcFsNumbers struct{ capacity, available uint64 }

func gcStatfs(t *testing.T, dir string) gcFsNumbers {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	return gcFsNumbers{uint64(s.Frsize) * s.Blocks, uint64(s.Frsize) * s.Bavail}
}

// gcSettledUsed waits until the runtime's usedBytes (refreshed every
// second in the lab) equals an independent walk of the snapshots, twice in
// a row, and returns it.
func gcSettledUsed(t *testing.T, n *gcNode) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last uint64
	matches := 0
	resp, err := n.c.WaitImageFsInfo(ctx, func(r *runtimeapi.ImageFsInfoResponse) bool {
		walked, _ := snapshotUsage(t, n.c.SnapshotterDir())
		if u := lab.UsedBytes(r); u == walked && u == last {
			matches++
		} else {
			matches, last = 0, u
		}
		return matches >= 2
	})
	if err != nil {
		t.Fatalf("usedBytes did not settle: %v (last %d)", err, last)
	}
	return lab.UsedBytes(resp)
}

// gcSettledAvail waits until statfs available is the same over one second
// (snapshot directories may be removed after RemoveImage returns).
func gcSettledAvail(t *testing.T, dir string) uint64 {
	t.Helper()
	unix.Sync()
	prev := gcStatfs(t, dir).available
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		unix.Sync()
		cur := gcStatfs(t, dir).available
		if cur == prev {
			return cur
		}
		prev = cur
	}
	t.Fatalf("statfs available of %s did not settle", dir)
	return 0
}
