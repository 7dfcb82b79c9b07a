package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func layerDigests(t *testing.T, path string) []string {
	t.Helper()
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d.String())
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("config os/arch = %q/%q: ctr import would unpack nothing", cf.OS, cf.Architecture)
	}
	return ds
}

func TestBuildImageDeterministicAndShared(t *testing.T) {
	dir := t.TempDir()
	base := []File{{Path: "/usr/lib/base.bin", Size: 100 << 10}, {Path: "etc/conf", Content: []byte("x=1\n")},
		{Path: "etc/link", Symlink: "conf"}, {Path: "etc/hard", Link: "etc/conf"}, {Path: "var/empty", Dir: true, Mode: 0o700}}
	build := func(name string, layers ...[]File) string {
		p := filepath.Join(dir, name+".tar")
		if err := BuildImage(p, "lab.local/imagefs/"+name+":v1", layers...); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a1 := build("a", base, SmallFiles("a", 3, 10))
	data1, _ := os.ReadFile(a1)
	a2 := build("a", base, SmallFiles("a", 3, 10)) // same name, rebuilt
	data2, _ := os.ReadFile(a2)
	if !bytes.Equal(data1, data2) {
		t.Error("same inputs gave different archives")
	}
	b := build("b", base, RandomLayers(7, 1000)[0])
	da, db := layerDigests(t, a1), layerDigests(t, b)
	if da[0] != db[0] {
		t.Errorf("shared base layer digests differ: %s vs %s", da[0], db[0])
	}
	if da[1] == db[1] {
		t.Error("different top layers have the same digest")
	}
}

func TestContentDiffersByPathAndSeed(t *testing.T) {
	read := func(seed int64, p string) []byte {
		b := make([]byte, 64)
		contentReader(seed, p).Read(b)
		return b
	}
	if bytes.Equal(read(1, "a"), read(1, "b")) || bytes.Equal(read(1, "a"), read(2, "a")) {
		t.Error("generated content does not depend on path and seed")
	}
	if !bytes.Equal(read(1, "a"), read(1, "a")) {
		t.Error("generated content is not deterministic")
	}
}

func TestConfigTOMLStatsPeriodInCRITable(t *testing.T) {
	got := configTOML(Config{Root: "/r", Dir: "/d", StatsCollectPeriod: 1, SandboxImage: "p:1"})
	cri := strings.Index(got, `[plugins."io.containerd.grpc.v1.cri"]`)
	sub := strings.Index(got, `[plugins."io.containerd.grpc.v1.cri".`)
	for _, key := range []string{"stats_collect_period = 1", "restrict_oom_score_adj = true", `sandbox_image = "p:1"`} {
		i := strings.Index(got, key)
		if i < cri || i > sub {
			t.Errorf("%q must sit directly under the cri table (before its first sub-table):\n%s", key, got)
		}
	}
	if tomlString(`a"b\c`) != `"a\"b\\c"` {
		t.Errorf("tomlString escaping: %s", tomlString(`a"b\c`))
	}
}
