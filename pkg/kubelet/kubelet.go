// Package kubelet fetches a live kubelet's Summary API (/stats/summary) so
// imagefs can hold its own node.fs, node.runtime.imageFs and
// node.runtime.containerFs against the kubelet's. Two ways in:
//
//   - FromAPIServer goes through the API server's node proxy, like
//     `kubectl get --raw /api/v1/nodes/NODE/proxy/stats/summary`; it needs
//     get on nodes/proxy.
//   - FromKubelet asks the kubelet directly: https://NODE:10250 with a
//     bearer token or client certificate (get on nodes/stats), or the
//     read-only http://NODE:10255 where it is still enabled.
//
// Both decode into the kubelet's own statsapi.Summary, return the raw body
// too, and fail with an *Error whose Kind is one of the sentinels.
// Compare and CompareSummaries line imagefs's FsStats up against the live
// ones, field by field.
package kubelet

import (
	"encoding/json"
	"fmt"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// DefaultTimeout bounds a fetch when no timeout is given.
const DefaultTimeout = 10 * time.Second

// SummaryPath is the kubelet's Summary API endpoint.
const SummaryPath = "/stats/summary"

// maxBody caps a Summary read; a node at 110 pods answers a few MiB.
const maxBody = 64 << 20

// decode parses a Summary body; e names the request for errors.
func decode(e *Error, raw []byte) (*statsapi.Summary, error) {
	var s statsapi.Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		e.Kind, e.Err = ErrBadResponse, err
		e.Message = fmt.Sprintf("not a Summary (%v): %s", err, preview(raw))
		return nil, e
	}
	if s.Node.NodeName == "" {
		e.Kind = ErrBadResponse
		e.Message = fmt.Sprintf("JSON without node.nodeName, not a Summary: %s", preview(raw))
		return nil, e
	}
	return &s, nil
}

func timeoutOr(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return DefaultTimeout
}
