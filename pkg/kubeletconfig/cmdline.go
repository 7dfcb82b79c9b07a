package kubeletconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Process is a running kubelet found in /proc.
type Process struct {
	PID  int      `json:"pid"`
	Args []string `json:"args"`
}

// ErrNoKubelet means no kubelet process was found.
var ErrNoKubelet = errors.New("no running kubelet found")

// FindKubelet scans procRoot ("" = /proc) for a process whose argv[0] is
// named kubelet.
func FindKubelet(procRoot string) (*Process, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", procRoot, err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue // gone, or a kernel thread
		}
		args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
		if filepath.Base(args[0]) == "kubelet" {
			return &Process{PID: pid, Args: args[1:]}, nil
		}
	}
	return nil, ErrNoKubelet
}

// FromCmdline derives the settings of a kubelet started with args: its
// --config file first, then the command-line flags, which take precedence
// over the file as they do in the kubelet.
func FromCmdline(args []string, who string) (*Settings, error) {
	flags, err := parseFlags(args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	s := Defaults()
	if cfg, ok := flags["config"]; ok {
		data, err := os.ReadFile(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s --config: %w", who, err)
		}
		if err := s.applyFile(data, "file "+cfg+" (--config of "+who+")"); err != nil {
			return nil, fmt.Errorf("kubelet config %s (--config of %s): %w", cfg, who, err)
		}
	}
	src := func(flag string) string { return "flag --" + flag + " of " + who }
	if v, ok := flags["root-dir"]; ok {
		s.RootDir = v
		s.Sources["rootDir"] = src("root-dir")
	}
	for _, f := range []struct {
		flag, field string
		sep         string
		set         func(map[string]string)
	}{
		{"eviction-hard", "evictionHard", "<", func(m map[string]string) { s.setEvictionHard(m, src("eviction-hard")) }},
		{"eviction-soft", "evictionSoft", "<", func(m map[string]string) {
			s.EvictionSoft = m
			mark(s.Sources, "evictionSoft", m, src("eviction-soft"))
		}},
		{"eviction-soft-grace-period", "evictionSoftGracePeriod", "=", func(m map[string]string) {
			s.EvictionSoftGracePeriod = m
			mark(s.Sources, "evictionSoftGracePeriod", m, src("eviction-soft-grace-period"))
		}},
		{"eviction-minimum-reclaim", "evictionMinimumReclaim", "=", func(m map[string]string) {
			s.EvictionMinimumReclaim = m
			mark(s.Sources, "evictionMinimumReclaim", m, src("eviction-minimum-reclaim"))
		}},
	} {
		v, ok := flags[f.flag]
		if !ok {
			continue
		}
		m, err := parseMap(v, f.sep)
		if err != nil {
			return nil, fmt.Errorf("%s --%s: %w", who, f.flag, err)
		}
		f.set(m)
	}
	for _, f := range []struct {
		flag, field string
		dst         *int32
	}{
		{"image-gc-high-threshold", "imageGCHighThresholdPercent", &s.ImageGCHighThresholdPercent},
		{"image-gc-low-threshold", "imageGCLowThresholdPercent", &s.ImageGCLowThresholdPercent},
	} {
		if v, ok := flags[f.flag]; ok {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s --%s=%s: %w", who, f.flag, v, err)
			}
			*f.dst = int32(n)
			s.Sources[f.field] = src(f.flag)
		}
	}
	if v, ok := flags["minimum-image-ttl-duration"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%s --minimum-image-ttl-duration=%s: %w", who, v, err)
		}
		s.ImageMinimumGCAge = d
		s.Sources["imageMinimumGCAge"] = src("minimum-image-ttl-duration")
	}
	if v, ok := flags["feature-gates"]; ok {
		gates, err := parseMap(v, "=")
		if err != nil {
			return nil, fmt.Errorf("%s --feature-gates: %w", who, err)
		}
		if g, ok := gates["KubeletSeparateDiskGC"]; ok {
			s.KubeletSeparateDiskGC = g == "true"
			s.Sources["featureGates[KubeletSeparateDiskGC]"] = src("feature-gates")
		}
	}
	return s, s.Validate()
}

// parseFlags reads --name=value and --name value pairs (the kubelet's
// flags all take values except booleans, which imagefs does not need).
func parseFlags(args []string) (map[string]string, error) {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimLeft(a, "-")
		if n, v, ok := strings.Cut(name, "="); ok {
			out[n] = v
			continue
		}
		if wanted[name] {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag --%s has no value", name)
			}
			out[name] = args[i+1]
			i++
		}
	}
	return out, nil
}

var wanted = map[string]bool{"config": true, "root-dir": true, "eviction-hard": true, "eviction-soft": true, "eviction-soft-grace-period": true,
	"eviction-minimum-reclaim": true, "image-gc-high-threshold": true, "image-gc-low-threshold": true, "minimum-image-ttl-duration": true, "feature-gates": true}

// parseMap reads "k<v,k2<v2" (sep "<") or "k=v,k2=v2" (sep "=").
func parseMap(v, sep string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(v) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), sep)
		if !ok {
			return nil, fmt.Errorf("%q is not key%svalue", kv, sep)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return out, nil
}

// ParseConfigz reads the kubelet's /configz body ({"kubeletconfig": {…}}),
// which holds the effective configuration (defaults applied, flags merged,
// but without apiVersion/kind).
func ParseConfigz(body []byte, source string) (*Settings, error) {
	var wrapper struct {
		KubeletConfig map[string]any `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(body, &wrapper); err != nil {
		return nil, fmt.Errorf("%s: decode /configz: %w", source, err)
	}
	if wrapper.KubeletConfig == nil {
		return nil, fmt.Errorf("%s: /configz has no kubeletconfig object", source)
	}
	wrapper.KubeletConfig["kind"] = "KubeletConfiguration"
	wrapper.KubeletConfig["apiVersion"] = "kubelet.config.k8s.io/v1beta1"
	data, err := json.Marshal(wrapper.KubeletConfig)
	if err != nil {
		return nil, err
	}
	s := Defaults()
	if err := s.applyFile(data, source); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	// /configz shows the effective evictionHard, defaults included.
	return s, nil
}

// Keys lists recorded sources in order, for display.
func (s *Settings) Keys() []string {
	keys := make([]string, 0, len(s.Sources))
	for k := range s.Sources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
