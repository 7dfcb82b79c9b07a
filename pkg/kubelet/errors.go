package kubelet

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
	"unicode/utf8"
)

// Sentinels for what callers branch on; every error FromKubelet and
// FromAPIServer return is an *Error whose Kind is one of these (or nil for
// a cancelled context or an invalid option).
var (
	// ErrUnauthorized is HTTP 401: no credentials, or ones the server
	// rejected.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is HTTP 403: authenticated but not allowed (RBAC).
	ErrForbidden = errors.New("forbidden")
	// ErrNodeNotFound is the API server's 404 Status for a node that does
	// not exist.
	ErrNodeNotFound = errors.New("node not found")
	// ErrTimeout is no answer within the timeout.
	ErrTimeout = errors.New("timed out")
	// ErrTLS is a failed TLS handshake: an untrusted or mismatched serving
	// certificate, a client certificate the server demands or refuses, or a
	// plain-HTTP server behind an https:// URL.
	ErrTLS = errors.New("TLS handshake failed")
	// ErrUnreachable is a failed dial: connection refused, no route, DNS.
	ErrUnreachable = errors.New("unreachable")
	// ErrBadResponse is an answer that is not a Summary: not JSON, not the
	// expected shape, or a status no other sentinel covers.
	ErrBadResponse = errors.New("unexpected response")
	// ErrServer is HTTP 5xx; Error.Message carries the server's own words,
	// e.g. the kubelet's "Internal Error: failed to get imageFs stats: ...".
	ErrServer = errors.New("server error")
)

const (
	// bodyPreview is how much of an unexpected body an error quotes.
	bodyPreview = 200
	// maxMessage caps a server's error text; the kubelet's is one line.
	maxMessage = 4096
)

// Error is one failed fetch of a Summary.
type Error struct {
	// Kind is one of the sentinels, nil when none applies.
	Kind error
	// URL is the URL asked for.
	URL string
	// Node is the node asked for through the API server, "" when direct.
	Node string
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Message is what the other side said: a Status message, the kubelet's
	// error text, or the start of an unexpected body.
	Message string
	// Hint says what to do about it, "" when there is nothing to suggest.
	Hint string
	// Err is the underlying error (transport, TLS, client-go, JSON), if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s", e.URL)
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	switch {
	case e.Message != "":
		b.WriteString(": ")
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap exposes both the sentinel and the cause, so errors.Is(err,
// ErrTLS) and errors.As(err, &x509.UnknownAuthorityError{}) both work.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// fromTransport classifies an error that came without an HTTP response.
// apiServer selects hints about the kubeconfig rather than kubelet flags.
func fromTransport(e *Error, err error, timeout time.Duration, apiServer bool) *Error {
	// url.Error repeats the method and URL we print ourselves.
	var ue *url.Error
	if errors.As(err, &ue) {
		e.Err = ue.Err
	} else {
		e.Err = err
	}
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verify     *tls.CertificateVerificationError
		record     tls.RecordHeaderError
		op         *net.OpError
		dns        *net.DNSError
		netTimeout interface{ Timeout() bool }
	)
	switch {
	case errors.Is(err, context.Canceled):
		// The caller gave up; no sentinel.
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netTimeout) && netTimeout.Timeout():
		e.Kind = ErrTimeout
		e.Message = fmt.Sprintf("no answer within %s", timeout)
		if apiServer {
			e.Hint = "the API server waits for the kubelet, so a slow or unreachable kubelet looks the same"
		}
	case errors.As(err, &unknownCA):
		e.Kind = ErrTLS
		if apiServer {
			e.Hint = "the kubeconfig's certificate-authority does not trust the API server's certificate"
		} else {
			e.Hint = "pass --kubelet-ca with the CA that signed the kubelet's serving certificate (a self-signed kubelet's is /var/lib/kubelet/pki/kubelet.crt), or --insecure-skip-verify"
		}
	case errors.As(err, &hostname):
		e.Kind = ErrTLS
		e.Hint = "connect by a name or IP the certificate lists, or pass --insecure-skip-verify"
	case errors.As(err, &invalid), errors.As(err, &verify):
		e.Kind = ErrTLS
	case errors.As(err, &record), errors.Is(err, http.ErrSchemeMismatch):
		e.Kind = ErrTLS
		if apiServer {
			e.Hint = "the server speaks plain HTTP; check the kubeconfig cluster's server URL"
		} else {
			e.Hint = "the server speaks plain HTTP; use an http:// URL (the kubelet's read-only port is 10255)"
		}
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the server: with TLS 1.3 a client certificate is
		// judged after our handshake ends, so it surfaces on the first read.
		e.Kind = ErrTLS
		switch msg := op.Err.Error(); {
		case !strings.Contains(msg, "certificate"):
		case apiServer:
			e.Hint = "the API server wants a client certificate it trusts; check the kubeconfig user's client-certificate"
		default:
			e.Hint = "the kubelet wants a client certificate signed by its --client-ca-file; pass a client certificate and key"
		}
	case errors.As(err, &dns), errors.As(err, &op) && op.Op == "dial":
		e.Kind = ErrUnreachable
		if apiServer {
			e.Hint = "check the kubeconfig's server URL (--server, --context) and that the API server is up"
		}
	}
	return e
}

// ClassifyTransport gives an error of a request made to the API server
// without this package (pkg/cluster's lists and pod proxy) the same
// sentinels and hints as FromAPIServer's own failures.
func ClassifyTransport(e *Error, err error, timeout time.Duration) *Error {
	return fromTransport(e, err, timeout, true)
}

// ClassifyStatus is ClassifyTransport for an answer with an HTTP status.
func ClassifyStatus(e *Error, code int, message string) *Error {
	return fromStatus(e, code, message)
}

// fromStatus classifies an HTTP answer that is not 200 by its code alone;
// callers refine Message and Hint.
func fromStatus(e *Error, code int, message string) *Error {
	e.StatusCode = code
	e.Message = message
	switch {
	case code == 401:
		e.Kind = ErrUnauthorized
	case code == 403:
		e.Kind = ErrForbidden
	case code >= 500:
		e.Kind = ErrServer
	default:
		e.Kind = ErrBadResponse
	}
	return e
}

// preview quotes the start of body for an error message.
func preview(body []byte) string {
	if len(body) == 0 {
		return "empty body"
	}
	b := body
	more := ""
	if len(b) > bodyPreview {
		b = cut(b, bodyPreview)
		more = fmt.Sprintf(" (%d of %d bytes)", len(b), len(body))
	}
	return fmt.Sprintf("%q%s", b, more)
}

// text is a server's error message: trimmed, at most maxMessage bytes.
func text(body []byte) string {
	b := body
	if len(b) > maxMessage {
		b = cut(b, maxMessage)
		return strings.TrimSpace(string(b)) + "..."
	}
	return strings.TrimSpace(string(b))
}

// cut shortens b to at most n bytes without splitting a UTF-8 sequence.
func cut(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(b[i]) {
			return b[:i]
		}
	}
	return b[:n]
}
