package kubeletconfig

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Filesystem eviction signals, as the kubelet names them.
const (
	NodeFsAvailable       = "nodefs.available"
	NodeFsInodesFree      = "nodefs.inodesFree"
	ImageFsAvailable      = "imagefs.available"
	ImageFsInodesFree     = "imagefs.inodesFree"
	ContainerFsAvailable  = "containerfs.available"
	ContainerFsInodesFree = "containerfs.inodesFree"
)

// validSignals are the signals the kubelet accepts (pkg/kubelet/eviction/api).
var validSignals = map[string]bool{
	"memory.available": true, "allocatableMemory.available": true, "pid.available": true,
	NodeFsAvailable: true, NodeFsInodesFree: true, ImageFsAvailable: true, ImageFsInodesFree: true,
	ContainerFsAvailable: true, ContainerFsInodesFree: true,
}

// Value is a threshold as the kubelet holds it: a quantity, or a
// percentage kept as float32 (the kubelet's own precision).
type Value struct {
	Quantity   *resource.Quantity `json:"quantity,omitempty"`
	Percentage float32            `json:"percentage,omitempty"`
}

// Resolve turns the value into bytes or inodes for a capacity, as
// GetThresholdQuantity does: int64(float64(capacity) * float64(pct)).
func (v Value) Resolve(capacity int64) int64 {
	if v.Quantity != nil {
		return v.Quantity.Value()
	}
	return int64(float64(capacity) * float64(v.Percentage))
}

// String is the value as configured.
func (v Value) String() string {
	if v.Quantity != nil {
		return v.Quantity.String()
	}
	return strconv.FormatFloat(float64(v.Percentage)*100, 'g', -1, 32) + "%"
}

// Threshold is one parsed eviction threshold.
type Threshold struct {
	Signal      string        `json:"signal"`
	Hard        bool          `json:"hard"`
	Configured  string        `json:"configured"`
	Value       Value         `json:"-"`
	GracePeriod time.Duration `json:"gracePeriod,omitempty"`
	MinReclaim  *Value        `json:"-"`
	// MinReclaimConfigured is evictionMinimumReclaim as written.
	MinReclaimConfigured string `json:"minReclaim,omitempty"`
	Source               string `json:"source"`
}

// Thresholds parses evictionHard/Soft/SoftGracePeriod/MinimumReclaim with the
// kubelet's rules (ParseThresholdConfig): "0%" and "100%" are dropped,
// percentages outside [0,100] and non-positive quantities are errors, a soft
// threshold needs a grace period. Errors name the field and key.
func (s *Settings) Thresholds() ([]Threshold, error) {
	var out []Threshold
	parse := func(field string, m map[string]string, hard bool) error {
		for _, sig := range sortedKeys(m) {
			v, keep, err := parseStatement(sig, m[sig])
			if err != nil {
				return fmt.Errorf("%s[%s]: %w", field, sig, err)
			}
			if !keep {
				continue
			}
			out = append(out, Threshold{Signal: sig, Hard: hard, Configured: m[sig], Value: v, Source: s.Source(field + "[" + sig + "]")})
		}
		return nil
	}
	if err := parse("evictionHard", s.EvictionHard, true); err != nil {
		return nil, err
	}
	if err := parse("evictionSoft", s.EvictionSoft, false); err != nil {
		return nil, err
	}
	for _, sig := range sortedKeys(s.EvictionSoftGracePeriod) {
		if !validSignals[sig] {
			return nil, fmt.Errorf("evictionSoftGracePeriod[%s]: unsupported eviction signal %s", sig, sig)
		}
		d, err := time.ParseDuration(s.EvictionSoftGracePeriod[sig])
		if err != nil {
			return nil, fmt.Errorf("evictionSoftGracePeriod[%s]: %w", sig, err)
		}
		if d < 0 {
			return nil, fmt.Errorf("evictionSoftGracePeriod[%s]: invalid eviction grace period specified: %s, must be a positive value", sig, s.EvictionSoftGracePeriod[sig])
		}
		for i := range out {
			if !out[i].Hard && out[i].Signal == sig {
				out[i].GracePeriod = d
			}
		}
	}
	for _, t := range out {
		if t.Hard {
			continue
		}
		if _, ok := s.EvictionSoftGracePeriod[t.Signal]; !ok {
			return nil, fmt.Errorf("evictionSoft[%s]: grace period must be specified for the soft eviction threshold %s", t.Signal, t.Signal)
		}
	}
	for _, sig := range sortedKeys(s.EvictionMinimumReclaim) {
		raw := s.EvictionMinimumReclaim[sig]
		if !validSignals[sig] {
			return nil, fmt.Errorf("evictionMinimumReclaim[%s]: unsupported eviction signal %s", sig, sig)
		}
		var v Value
		if strings.HasSuffix(raw, "%") {
			p, err := parsePercentage(raw)
			if err != nil {
				return nil, fmt.Errorf("evictionMinimumReclaim[%s]: %w", sig, err)
			}
			if p <= 0 {
				return nil, fmt.Errorf("evictionMinimumReclaim[%s]: eviction percentage minimum reclaim %s must be positive: %s", sig, sig, raw)
			}
			v.Percentage = p
		} else {
			q, err := resource.ParseQuantity(raw)
			if err != nil {
				return nil, fmt.Errorf("evictionMinimumReclaim[%s]: %w", sig, err)
			}
			if q.Sign() < 0 {
				return nil, fmt.Errorf("evictionMinimumReclaim[%s]: negative reclaim specified for signal %s: %s", sig, sig, raw)
			}
			v.Quantity = &q
		}
		for i := range out {
			if out[i].Signal == sig {
				vv := v
				out[i].MinReclaim, out[i].MinReclaimConfigured = &vv, raw
			}
		}
	}
	return out, nil
}

// parseStatement is parseThresholdStatement; keep is false for the
// ignored "0%" and "100%".
func parseStatement(signal, val string) (Value, bool, error) {
	if !validSignals[signal] {
		return Value{}, false, fmt.Errorf("unsupported eviction signal %s", signal)
	}
	if strings.HasSuffix(val, "%") {
		if val == "0%" || val == "100%" {
			return Value{}, false, nil
		}
		p, err := parsePercentage(val)
		if err != nil {
			return Value{}, false, err
		}
		if p < 0 {
			return Value{}, false, fmt.Errorf("eviction percentage threshold %s must be >= 0%%: %s", signal, val)
		}
		if p > 1 {
			return Value{}, false, fmt.Errorf("eviction percentage threshold %s must be <= 100%%: %s", signal, val)
		}
		return Value{Percentage: p}, true, nil
	}
	q, err := resource.ParseQuantity(val)
	if err != nil {
		return Value{}, false, err
	}
	if q.Sign() <= 0 {
		return Value{}, false, fmt.Errorf("eviction threshold %s must be positive: %s", signal, q.String())
	}
	return Value{Quantity: &q}, true, nil
}

// parsePercentage is the kubelet's: ParseFloat at 32 bits, then float32/100.
func parsePercentage(input string) (float32, error) {
	v, err := strconv.ParseFloat(strings.TrimRight(input, "%"), 32)
	if err != nil {
		return 0, err
	}
	return float32(v) / 100, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
