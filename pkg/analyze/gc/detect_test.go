package gc

import (
	"reflect"
	"strings"
	"testing"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestDetect(t *testing.T) {
	images := []*criapi.Image{
		{Id: "sha256:app", RepoTags: []string{"example.com/app:v1"}, Size: 100},
		{Id: "sha256:exited", RepoTags: []string{"example.com/job:v1"}, Size: 200},
		{Id: "sha256:volume", RepoDigests: []string{"example.com/data@sha256:1"}, Size: 300},
		{Id: "sha256:pause", RepoTags: []string{"registry.k8s.io/pause:3.10"}, Size: 400, Pinned: true},
		{Id: "sha256:free", Size: 500},
		{Id: "sha256:nometa", Size: 600},
	}
	labels := func(ns, pod string) map[string]string {
		return map[string]string{"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": pod}
	}
	containers := []*criapi.Container{
		// image_id wins over image_ref (kubelet toKubeContainer).
		{Id: "c1", Metadata: &criapi.ContainerMetadata{Name: "app"}, Image: &criapi.ImageSpec{Image: "example.com/app:v1"},
			ImageRef: "example.com/app@sha256:digest", ImageId: "sha256:app", State: criapi.ContainerState_CONTAINER_RUNNING, Labels: labels("default", "web")},
		// Exited containers count: GetPods(all=true).
		{Id: "c2", Metadata: &criapi.ContainerMetadata{Name: "job"}, Image: &criapi.ImageSpec{Image: "example.com/job:v1"},
			ImageRef: "sha256:exited", State: criapi.ContainerState_CONTAINER_EXITED, Labels: labels("batch", "job-1")},
		// No metadata: getPods skips it, so its image is not protected.
		{Id: "c3", Image: &criapi.ImageSpec{Image: "x"}, ImageRef: "sha256:nometa", State: criapi.ContainerState_CONTAINER_RUNNING},
		// A reference that is no image id protects nothing.
		{Id: "c4abcdefabcdef00", Metadata: &criapi.ContainerMetadata{Name: "odd"}, Image: &criapi.ImageSpec{Image: "y"},
			ImageRef: "example.com/y@sha256:2", State: criapi.ContainerState_CONTAINER_CREATED},
	}
	statuses := map[string]*criapi.ContainerStatus{
		"c1": {Mounts: []*criapi.Mount{{ContainerPath: "/data", Image: &criapi.ImageSpec{Image: "sha256:volume"}}}},
		// c3 is not counted, so its status is never asked; an entry here must not count.
		"c3": {Mounts: []*criapi.Mount{{ContainerPath: "/x", Image: &criapi.ImageSpec{Image: "sha256:free"}}}},
	}
	if got := len(Counted(containers)); got != 3 {
		t.Errorf("Counted = %d containers, want 3", got)
	}
	first := t0
	got, notes := Detect(images, containers, statuses, Times{KubeletStart: first, FirstDetected: first, FirstDetectedSource: "the kubelet's start"}, now)
	want := map[string][]string{
		"sha256:app":    {"default/web/app (running)"},
		"sha256:exited": {"batch/job-1/job (exited)"},
		"sha256:volume": {"default/web/app (image volume at /data)"},
	}
	for _, g := range got {
		if !g.FirstDetected.Equal(first) {
			t.Errorf("%s: firstDetected %s", g.ID, g.FirstDetected)
		}
		if w, ok := want[g.ID]; ok {
			if !g.InUse || !reflect.DeepEqual(g.UsedBy, w) || !g.LastUsed.Equal(now) {
				t.Errorf("%s: inUse %v usedBy %q lastUsed %s; want %q at now", g.ID, g.InUse, g.UsedBy, g.LastUsed, w)
			}
			if g.Assumed != "firstDetected = kubelet start; lastUsed = now (in use)" {
				t.Errorf("%s: assumed %q", g.ID, g.Assumed)
			}
			continue
		}
		if g.InUse || !g.LastUsed.IsZero() || !strings.Contains(g.Assumed, "lastUsed = never") {
			t.Errorf("%s: inUse %v lastUsed %s assumed %q; want unused, never", g.ID, g.InUse, g.LastUsed, g.Assumed)
		}
	}
	if got[3].Pinned != true || got[3].Size != 400 || got[2].Digests[0] != "example.com/data@sha256:1" {
		t.Errorf("CRI fields not carried: %+v", got)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `odd [c4abcdefabcd] references image "example.com/y@sha256:2"`) {
		t.Errorf("notes %q", notes)
	}
	as := Times{FirstDetected: first, FirstDetectedSource: "s", KubeletStartSource: "boot"}.Assumptions(now)
	if len(as) != 4 || !strings.Contains(as[0], "2026-12-04T12:00:00Z") || !strings.Contains(as[2], "unknown (boot)") {
		t.Errorf("assumptions %q", as)
	}
}

func TestImageName(t *testing.T) {
	for _, tc := range []struct {
		i    Image
		want string
	}{
		{Image{ID: "sha256:1", Tags: []string{"a:v1", "b:v2"}, Digests: []string{"a@sha256:2"}}, "a:v1"},
		{Image{ID: "sha256:1", Digests: []string{"a@sha256:2"}}, "a@sha256:2"},
		{Image{ID: "sha256:1"}, "sha256:1"},
	} {
		if got := tc.i.Name(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.i, got, tc.want)
		}
	}
}
