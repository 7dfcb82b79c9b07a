package images

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func criFixture() ([]*criapi.Image, []*criapi.Container) {
	imgs := []*criapi.Image{
		{Id: "sha256:aaaa1111", RepoTags: []string{"quay.io/app:v1"}, RepoDigests: []string{"quay.io/app@sha256:d1"}, Size: 300},
		{Id: "sha256:bbbb2222", RepoTags: []string{"docker.io/library/nginx:latest"}, Size: 100},
		{Id: "sha256:cccc3333", RepoTags: []string{"registry.k8s.io/pause:3.10"}, Size: 1, Pinned: true},
	}
	ctrs := []*criapi.Container{
		{Id: "c1", ImageRef: "sha256:aaaa1111"},
		{Id: "c2", Image: &criapi.ImageSpec{Image: "docker.io/library/nginx:latest"}},
	}
	return imgs, ctrs
}

func TestFromCRI(t *testing.T) {
	imgs, ctrs := criFixture()
	rt := Runtime{Name: "cri-o", Version: "1.30.0"}
	r, err := FromCRI(rt, imgs, ctrs, &CRIUsage{UsedBytes: u(999)}, t0, Options{Sort: SortSize, WhatIf: []string{"nginx", "aaaa"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, im := range r.Images {
		names = append(names, im.Name())
		if im.UniqueBytes != nil || im.SharedBytes != nil || im.UnpackedBytes != nil {
			t.Errorf("%s: sharing must be unknown from CRI: %+v", im.Name(), im)
		}
	}
	if !reflect.DeepEqual(names, []string{"quay.io/app:v1", "docker.io/library/nginx:latest", "registry.k8s.io/pause:3.10"}) {
		t.Errorf("order %v", names)
	}
	if r.Images[0].Containers != 1 || r.Images[1].Containers != 1 || r.Images[2].Containers != 0 {
		t.Errorf("containers %d %d %d", r.Images[0].Containers, r.Images[1].Containers, r.Images[2].Containers)
	}
	if r.CRIOnly.SizeSum != 401 || r.Totals != nil || r.Unaccounted != nil {
		t.Errorf("cri only %+v totals %v unaccounted %v", r.CRIOnly, r.Totals, r.Unaccounted)
	}
	if !strings.Contains(r.CRIOnly.Unavailable[0], "cri-o") {
		t.Errorf("unavailable %v", r.CRIOnly.Unavailable)
	}
	w := r.WhatIf
	if !w.Approximate || w.Freed.Bytes != 400 || !reflect.DeepEqual(w.InUse, []string{"docker.io/library/nginx:latest", "quay.io/app:v1"}) {
		t.Errorf("what-if %+v", w)
	}
	if _, err := FromCRI(rt, imgs, ctrs, nil, t0, Options{WhatIf: []string{"nope"}}); !errors.Is(err, ErrNoSuchImage) {
		t.Errorf("unknown image: %v", err)
	}
}
