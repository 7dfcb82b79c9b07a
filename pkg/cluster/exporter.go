package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/kubelet"
)

// exporterPods maps node names to the exporter pod to ask there: a running
// pod, a ready one before one that is not, and never one being deleted.
func (c *collector) exporterPods(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.ListTimeout)
	defer cancel()
	best := map[string]*corev1.Pod{}
	opts := metav1.ListOptions{LabelSelector: c.o.ExporterSelector, Limit: listChunk}
	for {
		list, err := c.cs.CoreV1().Pods(c.o.ExporterNamespace).List(ctx, opts)
		if err != nil {
			return nil, listError(c.cfg, "/api/v1/namespaces/"+c.o.ExporterNamespace+"/pods", c.o.ExporterSelector, err, c.o.ListTimeout)
		}
		for i := range list.Items {
			p := &list.Items[i]
			if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			if cur := best[p.Spec.NodeName]; cur == nil || !podReady(cur) && podReady(p) {
				best[p.Spec.NodeName] = p
			}
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	out := make(map[string]string, len(best))
	for node, p := range best {
		out[node] = p.Name
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// fromExporter reads the exporter's Summary and doctor report through the
// pod proxy within one node deadline. A Summary without a doctor report is
// returned with the doctor's error.
func (c *collector) fromExporter(ctx context.Context, pod string) (*statsapi.Summary, *doctor.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	raw, err := c.podGet(ctx, pod, "stats", "summary")
	if err != nil {
		return nil, nil, err
	}
	var s statsapi.Summary
	// imagefs stats -o json: the Summary's node part, nodeName possibly
	// empty when the exporter runs without --node-name.
	if err := json.Unmarshal(raw, &s); err != nil || s.Node.Fs == nil && s.Node.Runtime == nil {
		return nil, nil, &kubelet.Error{Kind: kubelet.ErrBadResponse, URL: c.podPath(pod, "stats", "summary"), Message: fmt.Sprintf("not a Summary: %.80q", raw), Err: err}
	}
	raw, err = c.podGet(ctx, pod, "doctor")
	if err != nil {
		return &s, nil, err
	}
	var d doctor.Report
	if err := json.Unmarshal(raw, &d); err != nil {
		return &s, nil, &kubelet.Error{Kind: kubelet.ErrBadResponse, URL: c.podPath(pod, "doctor"), Message: fmt.Sprintf("not a doctor report: %.80q", raw), Err: err}
	}
	return &s, &d, nil
}

func (c *collector) podPath(pod string, path ...string) string {
	return strings.Join(append([]string{"/api/v1/namespaces", c.o.ExporterNamespace, "pods", pod + ":" + strconv.Itoa(c.o.ExporterPort), "proxy"}, path...), "/")
}

// podGet is GET on the pod proxy; errors are *kubelet.Error.
func (c *collector) podGet(ctx context.Context, pod string, path ...string) ([]byte, error) {
	p := c.podPath(pod, path...)
	res := c.cs.CoreV1().RESTClient().Get().AbsPath(p).Do(ctx)
	raw, err := res.Raw()
	e := &kubelet.Error{URL: strings.TrimSuffix(c.cfg.Host, "/") + p}
	if err != nil {
		classify(e, res.Error(), c.o.Timeout)
		if apierrors.IsUnexpectedServerError(res.Error()) && len(raw) > 0 {
			e.Message = strings.TrimSpace(string(raw)) // the exporter's own words, passed through
		}
		switch {
		case errors.Is(e.Kind, kubelet.ErrForbidden):
			e.Hint = fmt.Sprintf("the kubeconfig's user needs get on pods/proxy in namespace %s", c.o.ExporterNamespace)
		case e.StatusCode == http.StatusServiceUnavailable:
			e.Hint = "the API server could not reach the exporter pod"
		}
		return raw, e
	}
	return raw, nil
}
