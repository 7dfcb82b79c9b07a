// Package kubeletconfig finds the node's effective kubelet settings that
// matter for disk pressure and image GC, and says where each came from: a
// KubeletConfiguration file (decoded with the upstream v1beta1 types, upstream
// defaults applied), the running kubelet's command line (its --config and the
// deprecated eviction/GC flags, which override the file), or /configz.
package kubeletconfig

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Source of a value.
const (
	SourceDefault = "default"
)

// DefaultEvictionHard is kubernetes v1.37's Linux default
// (pkg/kubelet/eviction/defaults_linux.go), filesystem and memory signals.
var DefaultEvictionHard = map[string]string{
	"memory.available":   "100Mi",
	"nodefs.available":   "10%",
	"nodefs.inodesFree":  "5%",
	"imagefs.available":  "15%",
	"imagefs.inodesFree": "5%",
}

// Settings are the kubelet settings imagefs uses, each with its source.
type Settings struct {
	EvictionHard            map[string]string `json:"evictionHard"`
	EvictionSoft            map[string]string `json:"evictionSoft,omitempty"`
	EvictionSoftGracePeriod map[string]string `json:"evictionSoftGracePeriod,omitempty"`
	EvictionMinimumReclaim  map[string]string `json:"evictionMinimumReclaim,omitempty"`
	MergeDefaultEviction    bool              `json:"mergeDefaultEvictionSettings"`

	ImageGCHighThresholdPercent int32         `json:"imageGCHighThresholdPercent"`
	ImageGCLowThresholdPercent  int32         `json:"imageGCLowThresholdPercent"`
	ImageMinimumGCAge           time.Duration `json:"imageMinimumGCAge"`
	ImageMaximumGCAge           time.Duration `json:"imageMaximumGCAge"`

	// KubeletSeparateDiskGC is the feature gate (beta, on by default).
	KubeletSeparateDiskGC bool   `json:"kubeletSeparateDiskGC"`
	RootDir               string `json:"rootDir,omitempty"`

	// Sources maps a setting (JSON name; map entries as name[key]) to
	// where its value came from.
	Sources map[string]string `json:"sources"`
	// UnknownFields lists fields of a config file the v1beta1 type lacks.
	UnknownFields []string `json:"unknownFields,omitempty"`
}

// Defaults returns the kubelet v1.37 defaults.
func Defaults() *Settings {
	s := &Settings{
		EvictionHard:                clone(DefaultEvictionHard),
		ImageGCHighThresholdPercent: 85,
		ImageGCLowThresholdPercent:  80,
		ImageMinimumGCAge:           2 * time.Minute,
		KubeletSeparateDiskGC:       true,
		Sources:                     map[string]string{},
	}
	for k := range s.EvictionHard {
		s.Sources["evictionHard["+k+"]"] = SourceDefault
	}
	for _, f := range []string{"imageGCHighThresholdPercent", "imageGCLowThresholdPercent", "imageMinimumGCAge", "imageMaximumGCAge", "featureGates[KubeletSeparateDiskGC]"} {
		s.Sources[f] = SourceDefault
	}
	return s
}

// Source returns where a setting came from ("default" if not recorded).
func (s *Settings) Source(field string) string {
	if src, ok := s.Sources[field]; ok {
		return src
	}
	return SourceDefault
}

// ErrNotKubeletConfiguration means a file decoded but is another kind.
var ErrNotKubeletConfiguration = errors.New("not a KubeletConfiguration (kubelet.config.k8s.io/v1beta1)")

// LoadFile reads a KubeletConfiguration file over the defaults.
func LoadFile(path string) (*Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubelet config: %w", err)
	}
	s := Defaults()
	if err := s.applyFile(data, "file "+path); err != nil {
		return nil, fmt.Errorf("kubelet config %s: %w", path, err)
	}
	return s, nil
}

// Parse decodes KubeletConfiguration bytes (YAML or JSON) over the
// defaults; source names them in Sources.
func Parse(data []byte, source string) (*Settings, error) {
	s := Defaults()
	if err := s.applyFile(data, source); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Settings) applyFile(data []byte, source string) error {
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	// Case-sensitive, like the kubelet's own codec: "evictionhard" is not
	// evictionHard. The strict pass names fields the type does not know,
	// which the kubelet only warns about.
	var kc kubeletv1beta1.KubeletConfiguration
	strictErrs, err := kjson.UnmarshalStrict(jsonData, &kc, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if kc.Kind != "KubeletConfiguration" || kc.APIVersion != kubeletv1beta1.SchemeGroupVersion.String() {
		return fmt.Errorf("%w: kind %q, apiVersion %q", ErrNotKubeletConfiguration, kc.Kind, kc.APIVersion)
	}
	for _, e := range strictErrs {
		s.UnknownFields = append(s.UnknownFields, strings.TrimPrefix(e.Error(), "unknown field "))
	}
	sort.Strings(s.UnknownFields)
	s.apply(&kc, source)
	return s.Validate()
}

// apply copies set fields of a decoded configuration, then applies the
// kubelet's own post-load rule for evictionHard (cmd/kubelet/app/server.go):
// unset → the whole default map; set → only what is listed, unless
// mergeDefaultEvictionSettings fills the missing keys from the defaults.
func (s *Settings) apply(kc *kubeletv1beta1.KubeletConfiguration, source string) {
	if kc.MergeDefaultEvictionSettings != nil {
		s.MergeDefaultEviction = *kc.MergeDefaultEvictionSettings
		s.Sources["mergeDefaultEvictionSettings"] = source
	}
	if kc.EvictionHard != nil {
		s.setEvictionHard(kc.EvictionHard, source)
	}
	if kc.EvictionSoft != nil {
		s.EvictionSoft = clone(kc.EvictionSoft)
		mark(s.Sources, "evictionSoft", kc.EvictionSoft, source)
	}
	if kc.EvictionSoftGracePeriod != nil {
		s.EvictionSoftGracePeriod = clone(kc.EvictionSoftGracePeriod)
		mark(s.Sources, "evictionSoftGracePeriod", kc.EvictionSoftGracePeriod, source)
	}
	if kc.EvictionMinimumReclaim != nil {
		s.EvictionMinimumReclaim = clone(kc.EvictionMinimumReclaim)
		mark(s.Sources, "evictionMinimumReclaim", kc.EvictionMinimumReclaim, source)
	}
	if kc.ImageGCHighThresholdPercent != nil {
		s.ImageGCHighThresholdPercent = *kc.ImageGCHighThresholdPercent
		s.Sources["imageGCHighThresholdPercent"] = source
	}
	if kc.ImageGCLowThresholdPercent != nil {
		s.ImageGCLowThresholdPercent = *kc.ImageGCLowThresholdPercent
		s.Sources["imageGCLowThresholdPercent"] = source
	}
	// Upstream defaulting treats a zero duration as unset.
	if kc.ImageMinimumGCAge != (metav1.Duration{}) {
		s.ImageMinimumGCAge = kc.ImageMinimumGCAge.Duration
		s.Sources["imageMinimumGCAge"] = source
	}
	if kc.ImageMaximumGCAge != (metav1.Duration{}) {
		s.ImageMaximumGCAge = kc.ImageMaximumGCAge.Duration
		s.Sources["imageMaximumGCAge"] = source
	}
	if v, ok := kc.FeatureGates["KubeletSeparateDiskGC"]; ok {
		s.KubeletSeparateDiskGC = v
		s.Sources["featureGates[KubeletSeparateDiskGC]"] = source
	}
}

// setEvictionHard replaces evictionHard as the kubelet does after loading.
func (s *Settings) setEvictionHard(m map[string]string, source string) {
	for k := range s.EvictionHard {
		delete(s.Sources, "evictionHard["+k+"]")
	}
	s.EvictionHard = clone(m)
	mark(s.Sources, "evictionHard", m, source)
	if s.MergeDefaultEviction {
		for k, v := range DefaultEvictionHard {
			if _, ok := s.EvictionHard[k]; !ok {
				s.EvictionHard[k] = v
				s.Sources["evictionHard["+k+"]"] = SourceDefault + " (mergeDefaultEvictionSettings)"
			}
		}
	}
}

// Validate applies the checks the kubelet makes at start: image GC
// thresholds in [0,100] with low ≤ high, and parseable eviction statements.
func (s *Settings) Validate() error {
	var errs []error
	if s.ImageGCHighThresholdPercent < 0 || s.ImageGCHighThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("imageGCHighThresholdPercent %d must be in [0, 100]", s.ImageGCHighThresholdPercent))
	}
	if s.ImageGCLowThresholdPercent < 0 || s.ImageGCLowThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("imageGCLowThresholdPercent %d must be in [0, 100]", s.ImageGCLowThresholdPercent))
	}
	if s.ImageGCLowThresholdPercent > s.ImageGCHighThresholdPercent {
		errs = append(errs, fmt.Errorf("imageGCLowThresholdPercent %d must not exceed imageGCHighThresholdPercent %d", s.ImageGCLowThresholdPercent, s.ImageGCHighThresholdPercent))
	}
	if _, err := s.Thresholds(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func mark(sources map[string]string, name string, m map[string]string, source string) {
	for k := range m {
		sources[name+"["+k+"]"] = source
	}
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
