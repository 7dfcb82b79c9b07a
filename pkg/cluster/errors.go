package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/imagefs/imagefs/pkg/kubelet"
)

// classify fills e from an error client-go returned for a request that
// pkg/kubelet does not make (lists, the pod proxy), with the sentinels and
// hints pkg/kubelet uses, so callers branch on one set.
func classify(e *kubelet.Error, err error, timeout time.Duration) *kubelet.Error {
	var as apierrors.APIStatus
	if errors.As(err, &as) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		st := as.Status()
		e.Err = err
		kubelet.ClassifyStatus(e, int(st.Code), st.Message)
		if st.Code == http.StatusUnauthorized {
			e.Hint = "the API server rejected the kubeconfig's credentials; they may have expired"
		}
		return e
	}
	return kubelet.ClassifyTransport(e, err, timeout)
}

// listError is a failed list of resource (a path under the API server).
func listError(cfg *rest.Config, path, selector string, err error, timeout time.Duration) *kubelet.Error {
	u := strings.TrimSuffix(cfg.Host, "/") + path
	if selector != "" {
		u += "?labelSelector=" + url.QueryEscape(selector)
	}
	e := classify(&kubelet.Error{URL: u}, err, timeout)
	switch {
	case errors.Is(e.Kind, kubelet.ErrForbidden) && strings.HasSuffix(path, "/nodes"):
		e.Hint = `the kubeconfig's user needs list on nodes (check with "kubectl auth can-i list nodes")`
	case errors.Is(e.Kind, kubelet.ErrForbidden):
		e.Hint = `the kubeconfig's user needs list on pods there (check with "kubectl auth can-i list pods -n NAMESPACE")`
	case errors.Is(e.Kind, kubelet.ErrBadResponse) && e.StatusCode == http.StatusBadRequest && selector != "":
		e.Hint = "check the label selector"
	case errors.Is(e.Kind, kubelet.ErrTimeout):
		e.Hint = "the API server did not answer the list; check the cluster, or raise --request-timeout"
	}
	return e
}
