package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/imagefs/imagefs/pkg/kubelet"
)

// classify fills e from an error client-go returned for a request that
// pkg/kubelet does not make (lists, the pod proxy), with the same
// sentinels pkg/kubelet uses, so callers branch on one set.
func classify(e *kubelet.Error, err error, timeout time.Duration) *kubelet.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		e.Err = ue.Err
	} else {
		e.Err = err
	}
	var (
		as         apierrors.APIStatus
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		verify     *tls.CertificateVerificationError
		record     tls.RecordHeaderError
		op         *net.OpError
		dns        *net.DNSError
		netTimeout interface{ Timeout() bool }
	)
	switch {
	case errors.Is(err, context.Canceled):
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netTimeout) && netTimeout.Timeout():
		e.Kind = kubelet.ErrTimeout
		e.Message = fmt.Sprintf("no answer within %s", timeout)
	case errors.As(err, &as):
		st := as.Status()
		e.StatusCode, e.Message = int(st.Code), st.Message
		switch code := int(st.Code); {
		case code == http.StatusUnauthorized:
			e.Kind = kubelet.ErrUnauthorized
			e.Hint = "the API server rejected the kubeconfig's credentials; they may have expired"
		case code == http.StatusForbidden:
			e.Kind = kubelet.ErrForbidden
		case code >= 500:
			e.Kind = kubelet.ErrServer
		default:
			e.Kind = kubelet.ErrBadResponse
		}
	case errors.As(err, &unknownCA):
		e.Kind = kubelet.ErrTLS
		e.Hint = "the kubeconfig's certificate-authority does not trust the API server's certificate"
	case errors.As(err, &hostname), errors.As(err, &verify):
		e.Kind = kubelet.ErrTLS
	case errors.As(err, &record), errors.Is(err, http.ErrSchemeMismatch):
		e.Kind = kubelet.ErrTLS
		e.Hint = "the server speaks plain HTTP; check the kubeconfig cluster's server URL"
	case errors.As(err, &op) && op.Op == "remote error":
		e.Kind = kubelet.ErrTLS
		if strings.Contains(op.Err.Error(), "certificate") {
			e.Hint = "the API server wants a client certificate it trusts; check the kubeconfig user's client-certificate"
		}
	case errors.As(err, &dns), errors.As(err, &op) && op.Op == "dial":
		e.Kind = kubelet.ErrUnreachable
		e.Hint = "check the kubeconfig's server URL (--server, --context) and that the API server is up"
	}
	return e
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
