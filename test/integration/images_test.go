//go:build integration && linux

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/internal/lab"
	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/analyze/images"
)

// TestImages checks imagefs images against measurements made here
// independently, on both containerd builds:
//
//	images   pause (busybox, the sandbox image), A = base+a, B = base+b,
//	         C = c, D = base+d
//	pod      a host-network sandbox and one container created from C
//	removed  D through CRI RemoveImage (containerd deletes its last name
//	         synchronously: GC runs before the call returns, so D leaves
//	         nothing behind)
//	garbage  made afterwards without any deletion, so no GC runs before
//	         imagefs looks: a blob written with no lease and no labels, an
//	         active snapshot prepared on base with no lease (a file written
//	         into it), a lease that expired an hour ago, and a dir
//	         snapshots/999999/fs the snapshotter's metadata does not know
//
// Layers are found on disk by their content (snapshots/*/fs/img/<file>),
// and measured with walkUsage (st_blocks*512, each inode once).
func TestImages(t *testing.T) {
	testutil.RequireRoot(t)
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs the static busybox for a pause image: %v; %s", err, lab.InstallHint)
	}
	if _, errOut, code := runImagefs(t, "images", "--help"); code != 0 {
		t.Fatalf("the imagefs binary has no images command (exit %d: %s): internal/cli/root.go must register newImagesCommand", code, strings.TrimSpace(errOut))
	}
	t.Parallel()
	for _, b := range lab.Binaries() {
		t.Run(b.Name, func(t *testing.T) {
			testutil.RequirePods(t, b)
			t.Parallel()
			imgTest(t, b, busybox)
		})
	}
}

const (
	imgPause = "lab.local/imgs/pause:v1"
	imgA     = "lab.local/imgs/a:v1"
	imgB     = "lab.local/imgs/b:v1"
	imgC     = "lab.local/imgs/c:v1"
	imgD     = "lab.local/imgs/d:v1"
)

func imgTest(t *testing.T, b lab.Binary, busybox []byte) {
	m := testutil.MountFS(t, "ext4", 512<<20)
	c := testutil.StartContainerd(t, b, filepath.Join(m.Dir, "containerd"), func(cfg *lab.Config) { cfg.SandboxImage = imgPause })
	snapDir := c.SnapshotterDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	base := append([]lab.File{{Path: "img/base.bin", Size: 1536 << 10}}, lab.SmallFiles("img/base", 30, 200)...)
	all := []struct {
		ref    string
		cfg    lab.ImageConfig
		layers [][]lab.File
	}{
		{imgPause, lab.ImageConfig{Entrypoint: []string{"/bin/busybox", "sleep", "100000"}}, [][]lab.File{{{Path: "bin/busybox", Content: busybox, Mode: 0o755}}}},
		{imgA, lab.ImageConfig{Cmd: []string{"/bin/true"}}, [][]lab.File{base, {{Path: "img/a.bin", Size: 768 << 10}}}},
		{imgB, lab.ImageConfig{Cmd: []string{"/bin/true"}}, [][]lab.File{base, lab.SmallFiles("img/b", 40, 100)}},
		{imgC, lab.ImageConfig{Cmd: []string{"/bin/true"}}, [][]lab.File{{{Path: "img/c.bin", Size: 2 << 20}}}},
		{imgD, lab.ImageConfig{Cmd: []string{"/bin/true"}}, [][]lab.File{base, {{Path: "img/d.bin", Size: 512 << 10}}}},
	}
	tmp := t.TempDir()
	for _, im := range all {
		tar := filepath.Join(tmp, strings.NewReplacer("/", "_", ":", "_").Replace(im.ref)+".tar")
		if err := lab.BuildImageWithConfig(tar, im.ref, im.cfg, im.layers...); err != nil {
			t.Fatal(err)
		}
		if err := c.Import(ctx, tar); err != nil {
			t.Fatal(err)
		}
	}

	// The pod: sandbox (pause) and a container created from C.
	conn, err := grpc.NewClient(c.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt, is := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "images-test", Namespace: "default", Uid: "images-test-uid"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}},
	}
	pod, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	ctr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.GetPodSandboxId(),
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
			Image:    &runtimeapi.ImageSpec{Image: imgC},
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
		SandboxConfig: podCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}

	// D goes through CRI; wait until its layer dir is gone from disk too.
	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: imgD}}); err != nil {
		t.Fatalf("RemoveImage %s: %v", imgD, err)
	}
	for deadline := time.Now().Add(15 * time.Second); len(imgGlob(snapDir, "img/d.bin")) > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("D's layer dir still on disk 15 s after RemoveImage: %v", imgGlob(snapDir, "img/d.bin"))
		}
	}

	// Garbage, made without any deletion so that no GC runs before imagefs.
	garbage, orphanDir := imgMakeGarbage(t, ctx, c, snapDir)
	leftover := filepath.Join(snapDir, "snapshots", "999999")
	if err := os.MkdirAll(filepath.Join(leftover, "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, "fs", "left.bin"), bytes.Repeat([]byte{7}, 100_000), 0o644); err != nil {
		t.Fatal(err)
	}

	// Independent measurements.
	dirOf := func(file string) string {
		t.Helper()
		hits := imgGlob(snapDir, file)
		if len(hits) != 1 {
			t.Fatalf("%s found in %d snapshot dirs: %v", file, len(hits), hits)
		}
		return hits[0]
	}
	aFS, bFS, cFS, baseFS := dirOf("img/a.bin"), dirOf("img/b/f0000"), dirOf("img/c.bin"), dirOf("img/base.bin")
	type usage struct{ bytes, inodes uint64 }
	walk := func(d string) usage { b, i := walkUsage(d); return usage{b, i} }
	ua, ub, uc, ubase := walk(aFS), walk(bFS), walk(cFS), walk(baseFS)
	uorphan, uleftFS, uleft := walk(filepath.Join(orphanDir, "fs")), walk(filepath.Join(leftover, "fs")), walk(leftover)
	diskBytes, diskInodes := snapshotUsage(t, snapDir) // every snapshots/*/fs, the leftover's included
	want := usage{diskBytes - uleftFS.bytes, diskInodes - uleftFS.inodes}

	// CRI refreshes every second here (stats_collect_period = 1).
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	resp, err := c.WaitImageFsInfo(wctx, func(r *runtimeapi.ImageFsInfoResponse) bool {
		return lab.UsedBytes(r) == want.bytes && r.GetImageFilesystems()[0].GetInodesUsed().GetValue() == want.inodes
	})
	if err != nil {
		t.Fatalf("CRI usedBytes never reached the snapshot walk's %d/%d: %v", want.bytes, want.inodes, err)
	}
	criUsed := lab.UsedBytes(resp)

	args := []string{"--runtime-endpoint", c.Endpoint, "--root-dir", t.TempDir()}
	out, errOut, code := runImagefs(t, append([]string{"images", "-o", "json", "--what-if", imgA, imgB}, args...)...)
	if code != 0 {
		t.Fatalf("imagefs images: exit %d\n%s\n%s", code, errOut, out)
	}
	var rep images.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	table, _, _ := runImagefs(t, append([]string{"images", "--layers"}, args...)...)
	t.Logf("%s: imagefs images --layers:\n%s", b.Name, table)

	byName := map[string]images.Image{}
	for _, im := range rep.Images {
		for _, n := range im.RepoTags {
			byName[n] = im
		}
	}
	if _, ok := byName[imgD]; ok || len(rep.Images) != 4 {
		t.Errorf("%d images, want pause, A, B, C (D removed): %v", len(rep.Images), imgKeys(byName))
	}
	check := func(what string, gotB, gotI *uint64, w usage) {
		t.Helper()
		if gotB == nil || gotI == nil || *gotB != w.bytes || *gotI != w.inodes {
			t.Errorf("%s = %v/%v bytes/inodes, walk %d/%d", what, imgDeref(gotB), imgDeref(gotI), w.bytes, w.inodes)
		}
	}
	zero := usage{}
	a, bb, cc, p := byName[imgA], byName[imgB], byName[imgC], byName[imgPause]
	check("A unique", a.UniqueBytes, a.UniqueInodes, ua)
	check("A shared", a.SharedBytes, a.SharedInodes, ubase)
	check("B unique", bb.UniqueBytes, bb.UniqueInodes, ub)
	check("B shared", bb.SharedBytes, bb.SharedInodes, ubase)
	check("C unique (its container holds it)", cc.UniqueBytes, cc.UniqueInodes, zero)
	check("C shared", cc.SharedBytes, cc.SharedInodes, uc)
	check("pause unique (the sandbox holds it)", p.UniqueBytes, p.UniqueInodes, zero)
	if cc.Containers != 1 || len(cc.ContainerIDs) != 1 || cc.ContainerIDs[0] != ctr.GetContainerId() {
		t.Errorf("C containers %v, want [%s]", cc.ContainerIDs, ctr.GetContainerId())
	}
	if p.Containers != 1 {
		t.Errorf("pause containers %v, want the sandbox", p.ContainerIDs)
	}
	// The snapshot dir imagefs names for A's top layer is the one holding a.bin.
	if l := a.Layers[len(a.Layers)-1]; l.Dir != "snapshots/"+filepath.Base(filepath.Dir(aFS)) || !l.Unique {
		t.Errorf("A's top layer: dir %q unique %v, want snapshots/%s", l.Dir, l.Unique, filepath.Base(filepath.Dir(aFS)))
	}

	tt := rep.Totals
	if tt.Snapshotter.Bytes != criUsed || tt.Snapshotter.Bytes != want.bytes || tt.Snapshotter.Inodes != want.inodes {
		t.Errorf("snapshotter total %d/%d, CRI usedBytes %d, disk walk %d/%d", tt.Snapshotter.Bytes, tt.Snapshotter.Inodes, criUsed, want.bytes, want.inodes)
	}
	if tt.ImageLayers.Bytes != tt.Unique.Bytes+tt.Shared.Bytes ||
		tt.Snapshotter.Bytes != tt.ImageLayers.Bytes+tt.ContainerLayers.Bytes+tt.KeptByContainers.Bytes+tt.Unreferenced.Bytes {
		t.Errorf("totals do not add up: %+v", tt)
	}
	if tt.Unique.Bytes != ua.bytes+ub.bytes {
		t.Errorf("unique total %d, want a+b %d", tt.Unique.Bytes, ua.bytes+ub.bytes)
	}
	if tt.ContainerLayers.Count != 2 {
		t.Errorf("container layers %+v, want the sandbox's and the container's", tt.ContainerLayers)
	}
	if tt.Unreferenced.Count != 1 || tt.Unreferenced.Bytes != uorphan.bytes {
		t.Errorf("unreferenced %+v, want the orphan snapshot %d bytes", tt.Unreferenced, uorphan.bytes)
	}
	if tt.CRI == nil || tt.CRI.DiffBytes == nil || *tt.CRI.DiffBytes != 0 {
		t.Errorf("CRI beside the total: %+v (%v)", tt.CRI, tt.Reconciliation)
	}

	un := rep.Unaccounted
	var blobs []string
	for _, bl := range un.Blobs {
		blobs = append(blobs, bl.Digest)
	}
	if len(blobs) != 1 || blobs[0] != garbage.String() {
		t.Errorf("unreferenced blobs %v, want only the garbage blob %s (D's went with its synchronous GC)", blobs, garbage)
	}
	if len(un.Snapshots) != 1 || un.Snapshots[0].Key != "imagefs-orphan" || !un.Snapshots[0].Collectable ||
		un.Snapshots[0].Dir != "snapshots/"+filepath.Base(orphanDir) {
		t.Errorf("unreferenced snapshots %+v, want imagefs-orphan in snapshots/%s, collectable", un.Snapshots, filepath.Base(orphanDir))
	}
	stale := false
	for _, l := range un.Leases {
		if l.ID == "imagefs-stale" {
			stale = l.Stale
		}
	}
	if !stale {
		t.Errorf("leases %+v: imagefs-stale should be stale", un.Leases)
	}
	ld := un.LeftoverDirs
	if ld == nil || !ld.Checked || len(ld.Dirs) != 1 || ld.Dirs[0].Name != "999999" ||
		imgDeref(ld.Dirs[0].Bytes) != uleft.bytes || imgDeref(ld.Dirs[0].Inodes) != uleft.inodes {
		t.Errorf("leftover dirs %+v, want snapshots/999999 with %d bytes, %d inodes", ld, uleft.bytes, uleft.inodes)
	}

	w := rep.WhatIf
	if w == nil || w.Freed.Bytes != ua.bytes+ub.bytes+ubase.bytes || w.Freed.Count != 3 || w.Kept.Bytes != 0 || len(w.InUse) != 0 {
		t.Errorf("what-if A+B: %+v, want a+b+base = %d bytes in 3 snapshots (base is shared only between them)", w, ua.bytes+ub.bytes+ubase.bytes)
	}

	// CRI alone, on the same node.
	out, errOut, code = runImagefs(t, append([]string{"images", "--cri", "-o", "json"}, args...)...)
	var cri images.Report
	if code != 0 || json.Unmarshal([]byte(out), &cri) != nil || cri.Source != images.SourceCRI || len(cri.Images) != 4 || cri.CRIOnly == nil {
		t.Errorf("--cri: exit %d, %s\n%s", code, errOut, out)
	}
}

// imgGlob is the snapshot fs dirs holding file.
func imgGlob(snapDir, file string) []string {
	hits, _ := filepath.Glob(filepath.Join(snapDir, "snapshots", "*", "fs", file))
	var dirs []string
	for _, h := range hits {
		dirs = append(dirs, strings.TrimSuffix(h, "/"+file))
	}
	return dirs
}

// imgMakeGarbage writes, through containerd's own client and with no lease,
// a blob nothing references and an active snapshot on A's base layer
// nothing uses (with a 64 KiB file in it), and creates a lease that expired
// an hour ago. None of this is a deletion, so containerd's GC scheduler does
// not run. It returns the blob's digest and the orphan snapshot's dir.
func imgMakeGarbage(t *testing.T, ctx context.Context, c *lab.Containerd, snapDir string) (digest.Digest, string) {
	t.Helper()
	cl, err := ctrd.New(c.Socket, ctrd.WithDefaultNamespace("k8s.io"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx = namespaces.WithNamespace(ctx, "k8s.io")

	data := make([]byte, 300<<10)
	rand.Read(data)
	dgst := digest.FromBytes(data)
	if err := content.WriteBlob(ctx, cl.ContentStore(), "imagefs-garbage", bytes.NewReader(data), ocispec.Descriptor{Digest: dgst, Size: int64(len(data))}); err != nil {
		t.Fatalf("write garbage blob: %v", err)
	}

	// base's chain ID: the parent both A's and B's top layers name.
	out, err := c.Ctr(ctx, "snapshots", "ls")
	if err != nil {
		t.Fatal(err)
	}
	parents := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "Committed" {
			parents[f[1]]++
		}
	}
	var baseKey string
	for k, n := range parents {
		if n == 2 {
			baseKey = k
		}
	}
	if baseKey == "" {
		t.Fatalf("no committed snapshot is the parent of two others:\n%s", out)
	}
	before := imgDirs(snapDir)
	if _, err := cl.SnapshotService("overlayfs").Prepare(ctx, "imagefs-orphan", baseKey); err != nil {
		t.Fatalf("prepare orphan snapshot: %v", err)
	}
	var orphan string
	for d := range imgDirs(snapDir) {
		if !before[d] {
			orphan = filepath.Join(snapDir, "snapshots", d)
		}
	}
	if orphan == "" {
		t.Fatal("no new snapshot dir after Prepare")
	}
	if err := os.WriteFile(filepath.Join(orphan, "fs", "orphan.bin"), bytes.Repeat([]byte{1}, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.LeasesService().Create(ctx, leases.WithID("imagefs-stale"), leases.WithExpiration(-time.Hour)); err != nil {
		t.Fatalf("create lease: %v", err)
	}
	return dgst, orphan
}

func imgDirs(snapDir string) map[string]bool {
	ents, _ := os.ReadDir(filepath.Join(snapDir, "snapshots"))
	m := map[string]bool{}
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m
}

func imgDeref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func imgKeys(m map[string]images.Image) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
