package kubeletconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	s := Defaults()
	if s.ImageGCHighThresholdPercent != 85 || s.ImageGCLowThresholdPercent != 80 || s.ImageMinimumGCAge != 2*time.Minute || s.ImageMaximumGCAge != 0 || !s.KubeletSeparateDiskGC {
		t.Fatalf("defaults %+v differ from kubelet v1.37", s)
	}
	th, err := s.Thresholds()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, x := range th {
		got[x.Signal] = x.Configured
	}
	for k, v := range map[string]string{"nodefs.available": "10%", "nodefs.inodesFree": "5%", "imagefs.available": "15%", "imagefs.inodesFree": "5%", "memory.available": "100Mi"} {
		if got[k] != v {
			t.Errorf("default %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestLoadFile(t *testing.T) {
	s, err := LoadFile("testdata/kubelet-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// A set evictionHard replaces the defaults entirely (no merge).
	if len(s.EvictionHard) != 2 || s.EvictionHard["imagefs.inodesFree"] != "" {
		t.Errorf("evictionHard = %v, want only the two configured signals", s.EvictionHard)
	}
	if s.ImageGCHighThresholdPercent != 70 || s.ImageGCLowThresholdPercent != 60 || s.ImageMaximumGCAge != 168*time.Hour || s.ImageMinimumGCAge != 2*time.Minute {
		t.Errorf("image GC = %d/%d/%s/%s", s.ImageGCHighThresholdPercent, s.ImageGCLowThresholdPercent, s.ImageMinimumGCAge, s.ImageMaximumGCAge)
	}
	if src := s.Source("imageGCHighThresholdPercent"); src != "file testdata/kubelet-config.yaml" {
		t.Errorf("source = %q", src)
	}
	if src := s.Source("imageMinimumGCAge"); src != SourceDefault {
		t.Errorf("imageMinimumGCAge source = %q, want default", src)
	}
	if len(s.UnknownFields) != 1 || s.UnknownFields[0] != `"evictionhard"` {
		t.Errorf("unknown fields = %q, want [evictionhard]", s.UnknownFields)
	}
	th, err := s.Thresholds()
	if err != nil {
		t.Fatal(err)
	}
	var soft *Threshold
	for i := range th {
		if th[i].Signal == "imagefs.available" && !th[i].Hard {
			soft = &th[i]
		}
	}
	if soft == nil || soft.GracePeriod != 90*time.Second || soft.MinReclaimConfigured != "500Mi" {
		t.Fatalf("soft imagefs threshold = %+v", soft)
	}
}

func TestMergeDefaults(t *testing.T) {
	s, err := LoadFile("testdata/merge-defaults.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.EvictionHard["imagefs.available"] != "20%" || s.EvictionHard["nodefs.available"] != "10%" || s.EvictionHard["imagefs.inodesFree"] != "5%" {
		t.Errorf("evictionHard = %v, want 20%% merged with the defaults", s.EvictionHard)
	}
	if !strings.Contains(s.Source("evictionHard[nodefs.available]"), "mergeDefaultEvictionSettings") {
		t.Errorf("source = %q", s.Source("evictionHard[nodefs.available]"))
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"testdata/bad-percent.yaml", "evictionHard[imagefs.available]: eviction percentage threshold imagefs.available must be <= 100%: 150%"},
		{"testdata/wrong-kind.yaml", "not a KubeletConfiguration"},
		{"testdata/bad-type.yaml", "imageGCHighThresholdPercent"},
		{"testdata/missing.yaml", "no such file"},
	} {
		_, err := LoadFile(tt.file)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), filepath.Base(tt.file)) {
			t.Errorf("%s: err = %v, want it to name the file and contain %q", tt.file, err, tt.want)
		}
	}
}

// Every threshold form, against values derived by hand from the kubelet's
// parseThresholdStatement and GetThresholdQuantity.
func TestThresholdForms(t *testing.T) {
	const capacity = 1_000_000_000_000
	tests := []struct {
		name, signal, value string
		hard                bool
		grace               string
		keep                bool
		resolved            int64
		err                 string
	}{
		{name: "percent, float32 widened", signal: "nodefs.available", value: "10%", hard: true, keep: true, resolved: 100_000_001_490},
		{name: "percent 15", signal: "imagefs.available", value: "15%", hard: true, keep: true, resolved: 150_000_005_960},
		{name: "fractional percent", signal: "imagefs.available", value: "7.5%", hard: true, keep: true, resolved: 75_000_002_980},
		{name: "binary quantity", signal: "imagefs.available", value: "1Gi", hard: true, keep: true, resolved: 1 << 30},
		{name: "inode count", signal: "imagefs.inodesFree", value: "1000", hard: true, keep: true, resolved: 1000},
		{name: "0% ignored", signal: "nodefs.available", value: "0%", hard: true, keep: false},
		{name: "100% ignored", signal: "nodefs.available", value: "100%", hard: true, keep: false},
		{name: "zero quantity", signal: "nodefs.available", value: "0", hard: true, err: "must be positive"},
		{name: "negative percent", signal: "nodefs.available", value: "-5%", hard: true, err: "must be >= 0%"},
		{name: "over 100%", signal: "nodefs.available", value: "101%", hard: true, err: "must be <= 100%"},
		{name: "garbage", signal: "nodefs.available", value: "lots", hard: true, err: "quantities must match"},
		{name: "unknown signal", signal: "disk.available", value: "10%", hard: true, err: "unsupported eviction signal"},
		{name: "soft with grace", signal: "imagefs.available", value: "20%", grace: "2m", keep: true, resolved: 200_000_002_980},
		{name: "soft without grace", signal: "imagefs.available", value: "20%", err: "grace period must be specified"},
		{name: "soft with bad grace", signal: "imagefs.available", value: "20%", grace: "soon", err: "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Defaults()
			s.EvictionHard = map[string]string{}
			if tt.hard {
				s.EvictionHard[tt.signal] = tt.value
			} else {
				s.EvictionSoft = map[string]string{tt.signal: tt.value}
				if tt.grace != "" {
					s.EvictionSoftGracePeriod = map[string]string{tt.signal: tt.grace}
				}
			}
			th, err := s.Thresholds()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.keep {
				if len(th) != 0 {
					t.Fatalf("thresholds = %+v, want the statement ignored", th)
				}
				return
			}
			if len(th) != 1 || th[0].Value.Resolve(capacity) != tt.resolved {
				t.Fatalf("resolved = %+v → %d, want %d", th, th[0].Value.Resolve(capacity), tt.resolved)
			}
		})
	}
}

func TestFromCmdline(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	data, _ := os.ReadFile("testdata/kubelet-config.yaml")
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := FromCmdline([]string{"--config", cfg, "--root-dir=/data/kubelet", "--eviction-hard=imagefs.available<12%,nodefs.inodesFree<3%", "--image-gc-high-threshold=90", "--minimum-image-ttl-duration", "5m", "--feature-gates=KubeletSeparateDiskGC=false,Other=true"}, "kubelet (pid 42)")
	if err != nil {
		t.Fatal(err)
	}
	if s.RootDir != "/data/kubelet" || s.EvictionHard["imagefs.available"] != "12%" || len(s.EvictionHard) != 2 || s.ImageGCHighThresholdPercent != 90 || s.ImageGCLowThresholdPercent != 60 || s.ImageMinimumGCAge != 5*time.Minute || s.KubeletSeparateDiskGC {
		t.Errorf("settings %+v", s)
	}
	if src := s.Source("imageGCHighThresholdPercent"); src != "flag --image-gc-high-threshold of kubelet (pid 42)" {
		t.Errorf("flag source = %q", src)
	}
	if src := s.Source("imageGCLowThresholdPercent"); !strings.HasPrefix(src, "file "+cfg) {
		t.Errorf("file source = %q", src)
	}
	if _, err := FromCmdline([]string{"--eviction-hard=imagefs.available=5%"}, "kubelet"); err == nil {
		t.Error("a malformed --eviction-hard was accepted")
	}
	if _, err := FromCmdline([]string{"--image-gc-high-threshold=50", "--image-gc-low-threshold=60"}, "kubelet"); err == nil || !strings.Contains(err.Error(), "must not exceed") {
		t.Errorf("low > high: err = %v", err)
	}
}

func TestFindKubelet(t *testing.T) {
	proc := t.TempDir()
	for pid, cmd := range map[string]string{"1": "/sbin/init\x00", "77": "/usr/bin/kubelet\x00--config=/etc/k.yaml\x00", "80": ""} {
		os.MkdirAll(filepath.Join(proc, pid), 0o755)
		os.WriteFile(filepath.Join(proc, pid, "cmdline"), []byte(cmd), 0o644)
	}
	p, err := FindKubelet(proc)
	if err != nil || p.PID != 77 || p.Args[0] != "--config=/etc/k.yaml" {
		t.Fatalf("FindKubelet = %+v, %v", p, err)
	}
	os.RemoveAll(filepath.Join(proc, "77"))
	if _, err := FindKubelet(proc); !errors.Is(err, ErrNoKubelet) {
		t.Fatalf("err = %v, want ErrNoKubelet", err)
	}
}

func TestParseConfigz(t *testing.T) {
	s, err := ParseConfigz([]byte(`{"kubeletconfig":{"evictionHard":{"imagefs.available":"18%"},"imageGCHighThresholdPercent":75,"imageGCLowThresholdPercent":70}}`), "/configz of node-a")
	if err != nil {
		t.Fatal(err)
	}
	if s.EvictionHard["imagefs.available"] != "18%" || s.ImageGCHighThresholdPercent != 75 || s.Source("imageGCLowThresholdPercent") != "/configz of node-a" {
		t.Errorf("settings %+v", s)
	}
	if _, err := ParseConfigz([]byte(`{}`), "x"); err == nil {
		t.Error("empty /configz accepted")
	}
}

// Decoding arbitrary bytes never panics and either succeeds with valid
// settings or returns an error.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"kubelet-config.yaml", "merge-defaults.yaml", "bad-percent.yaml", "wrong-kind.yaml", "bad-type.yaml"} {
		data, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(data)
	}
	f.Add([]byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nevictionSoft: {nodefs.available: 5%}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted settings that do not validate: %v", err)
		}
	})
}
