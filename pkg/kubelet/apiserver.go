package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// KubeconfigOptions pick a cluster the way kubectl does.
type KubeconfigOptions struct {
	// Kubeconfig is --kubeconfig; empty means $KUBECONFIG, then
	// ~/.kube/config, then the in-cluster service account.
	Kubeconfig string
	// Context is --context; empty means the current context.
	Context string
}

// ErrNoKubeconfig is RESTConfig finding neither a kubeconfig nor an
// in-cluster service account.
var ErrNoKubeconfig = errors.New("no kubeconfig")

// RESTConfig loads the client configuration with clientcmd's loading rules.
func RESTConfig(o KubeconfigOptions) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		return nil, fmt.Errorf("%w: pass --kubeconfig, set $KUBECONFIG or create ~/.kube/config (in a pod, its service account is used)", ErrNoKubeconfig)
	case err != nil:
		where := strings.Join(rules.GetLoadingPrecedence(), ", ")
		if o.Kubeconfig != "" {
			where = o.Kubeconfig
		}
		if o.Context != "" {
			return nil, fmt.Errorf("kubeconfig %s, context %s: %w", where, o.Context, err)
		}
		return nil, fmt.Errorf("kubeconfig %s: %w", where, err)
	}
	return cfg, nil
}

// FromAPIServer fetches node's Summary through the API server's node proxy,
// GET /api/v1/nodes/NODE/proxy/stats/summary, which needs get on
// nodes/proxy. cfg.Timeout bounds it (DefaultTimeout when 0). raw is the
// response body whenever one was read, also on error.
func FromAPIServer(ctx context.Context, cfg *rest.Config, node string) (*statsapi.Summary, []byte, error) {
	raw, e, err := proxyGet(ctx, cfg, node, "stats", "summary")
	if err != nil {
		return nil, raw, err
	}
	s, err := decode(e, raw)
	return s, raw, err
}

// ConfigzFromAPIServer fetches the kubelet's effective configuration,
// GET /api/v1/nodes/NODE/proxy/configz ({"kubeletconfig": {…}}), with the
// same permissions, bounds and errors as FromAPIServer.
func ConfigzFromAPIServer(ctx context.Context, cfg *rest.Config, node string) ([]byte, error) {
	raw, _, err := proxyGet(ctx, cfg, node, "configz")
	return raw, err
}

// proxyGet GETs a kubelet path through the API server's node proxy and
// returns the 200 body; the *Error carries the URL for the caller's own
// failures.
func proxyGet(ctx context.Context, cfg *rest.Config, node string, path ...string) ([]byte, *Error, error) {
	e := &Error{Node: node, URL: "/api/v1/nodes/" + node + "/proxy/" + strings.Join(path, "/")}
	if cfg != nil {
		e.URL = strings.TrimSuffix(cfg.Host, "/") + e.URL
	}
	if node == "" {
		e.Err = errors.New("no node name")
		return nil, e, e
	}
	if bad := rest.IsValidPathSegmentName(node); len(bad) > 0 {
		e.Err = fmt.Errorf("node name %q: %s", node, strings.Join(bad, ", "))
		return nil, e, e
	}
	if cfg == nil {
		e.Err = errors.New("no client configuration")
		return nil, e, e
	}
	c := rest.CopyConfig(cfg)
	timeout := timeoutOr(c.Timeout)
	// The context bounds the request; a Timeout would also add ?timeout=
	// to the URL, which the proxy would forward to the kubelet.
	c.Timeout = 0
	// Ask for JSON, so an error Status comes back as JSON too (not
	// protobuf or CBOR) and raw stays readable; the kubelet answers JSON
	// whatever we ask.
	c.ContentType = "application/json"
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		e.Err = err
		return nil, e, e
	}
	req := cs.CoreV1().RESTClient().Get().AbsPath(append([]string{"/api/v1/nodes", node, "proxy"}, path...)...)
	e.URL = req.URL().String()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := req.Do(ctx)
	raw, err := res.Raw()
	if err != nil {
		// Raw keeps client-go's guess from the status code; Error decodes
		// the API server's Status from the body when there is one.
		return raw, e, proxyError(e, res.Error(), raw, timeout)
	}
	var code int
	res.StatusCode(&code)
	if code != http.StatusOK {
		// 2xx other than 200: client-go does not call it an error.
		e.Kind, e.StatusCode, e.Message = ErrBadResponse, code, preview(raw)
		return raw, e, e
	}
	return raw, e, nil
}

// proxyError classifies what client-go returned. A Status decoded from the
// body came from the API server itself (authn, RBAC, node lookup, failing
// to reach the kubelet); an "unexpected server response" is the kubelet's
// own answer passed through the proxy (or something that is not an API
// server at all).
func proxyError(e *Error, err error, raw []byte, timeout time.Duration) *Error {
	var as apierrors.APIStatus
	if !errors.As(err, &as) {
		return fromTransport(e, err, timeout, true)
	}
	e.Err = err
	st := as.Status()
	fromAPIServer := !apierrors.IsUnexpectedServerError(err)
	msg := st.Message
	if !fromAPIServer {
		msg = passedThrough(st, raw)
	}
	fromStatus(e, int(st.Code), msg)
	switch {
	case e.StatusCode == http.StatusUnauthorized && fromAPIServer:
		e.Hint = "the API server rejected the kubeconfig's credentials; they may have expired"
	case e.StatusCode == http.StatusUnauthorized:
		e.Hint = "the kubelet rejected the API server's kubelet client credentials (--kubelet-client-certificate)"
	case e.StatusCode == http.StatusForbidden && fromAPIServer:
		e.Hint = `the kubeconfig's user needs get on nodes/proxy (check with "kubectl auth can-i get nodes/proxy"; grant it with a ClusterRole rule apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"])`
	case e.StatusCode == http.StatusForbidden:
		e.Hint = "the kubelet refused the API server's own client identity, which needs get on nodes/stats"
	case e.StatusCode == http.StatusNotFound && fromAPIServer && st.Reason == metav1.StatusReasonNotFound &&
		(st.Details == nil || st.Details.Kind == "nodes"):
		e.Kind = ErrNodeNotFound
		e.Hint = "list the node names with `kubectl get nodes`"
	case e.StatusCode == http.StatusNotFound:
		e.Hint = "no " + SummaryPath + " behind the node proxy"
	case e.StatusCode == http.StatusServiceUnavailable && fromAPIServer,
		e.StatusCode == http.StatusBadGateway && fromAPIServer:
		e.Hint = "the API server could not reach the kubelet on " + e.Node
	}
	return e
}

// passedThrough recovers the text of an answer client-go could not decode
// as a Status: the raw body when client-go kept it, else the cause, which
// holds the body for text responses.
func passedThrough(st metav1.Status, raw []byte) string {
	if len(raw) > 0 {
		return text(raw)
	}
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Type == metav1.CauseTypeUnexpectedServerResponse && c.Message != "" && c.Message != "unknown" {
				return c.Message
			}
		}
	}
	return st.Message
}
