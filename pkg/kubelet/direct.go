package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// DirectOptions say how to reach one kubelet.
type DirectOptions struct {
	// URL is the kubelet's base URL, e.g. https://127.0.0.1:10250 or the
	// read-only http://127.0.0.1:10255. A URL that already ends in
	// /stats/summary is used as is; any other path gets it appended.
	URL string
	// Token is a bearer token; TokenFile is a file holding one (read at
	// each fetch, surrounding whitespace dropped). Set at most one.
	Token     string
	TokenFile string
	// CertFile and KeyFile are a client certificate and its key (PEM),
	// both or neither.
	CertFile string
	KeyFile  string
	// CAFile is the PEM CA bundle that verifies the kubelet's serving
	// certificate; empty means the system roots. The kubelet's self-signed
	// certificate is /var/lib/kubelet/pki/kubelet.crt.
	CAFile string
	// InsecureSkipVerify accepts any serving certificate. Not with CAFile.
	InsecureSkipVerify bool
	// Timeout bounds the whole fetch; 0 means DefaultTimeout.
	Timeout time.Duration
}

// FromKubelet fetches /stats/summary from the kubelet at o.URL. raw is the
// response body whenever one was read, also on error.
func FromKubelet(ctx context.Context, o DirectOptions) (*statsapi.Summary, []byte, error) {
	timeout := timeoutOr(o.Timeout)
	u, err := summaryURL(o.URL)
	if err != nil {
		return nil, nil, &Error{URL: o.URL, Err: err}
	}
	e := &Error{URL: u.String()}
	tr, token, err := o.transport()
	if err != nil {
		e.Err = err
		return nil, nil, e
	}
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		e.Err = err
		return nil, nil, e
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "imagefs")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, nil, fromTransport(e, err, timeout, false)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		e.StatusCode = resp.StatusCode
		return nil, raw, fromTransport(e, fmt.Errorf("reading the body: %w", err), timeout, false)
	}
	if len(raw) > maxBody {
		e.Kind, e.StatusCode = ErrBadResponse, resp.StatusCode
		e.Message = fmt.Sprintf("body larger than %d MiB", maxBody>>20)
		return nil, raw, e
	}
	if resp.StatusCode != http.StatusOK {
		return nil, raw, directStatus(e, resp, raw, o)
	}
	s, err := decode(e, raw)
	return s, raw, err
}

// directStatus classifies the kubelet's non-200 answers. The kubelet
// writes its errors as plain text.
func directStatus(e *Error, resp *http.Response, raw []byte, o DirectOptions) *Error {
	code := resp.StatusCode
	msg := text(raw)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/") && code < 500 {
		msg = preview(raw)
	}
	fromStatus(e, code, msg)
	switch {
	case code == http.StatusUnauthorized:
		if o.Token == "" && o.TokenFile == "" && o.CertFile == "" {
			e.Hint = "no credentials were sent: pass a bearer token or a client certificate, or use the read-only port http://NODE:10255 if it is enabled"
		} else {
			e.Hint = "the kubelet accepts a bearer token the API server can validate (TokenReview) or a client certificate signed by its --client-ca-file"
		}
	case code == http.StatusForbidden:
		e.Hint = "the credentials need get on nodes/stats (the kubelet authorizes /stats/* as the nodes/stats subresource)"
	case code == http.StatusNotFound:
		e.Hint = "this does not look like a kubelet: it serves " + SummaryPath + " on port 10250 (https) and 10255 (http, read-only)"
	case code == http.StatusBadRequest && strings.Contains(string(raw), "HTTP request to an HTTPS server"):
		e.Hint = "use an https:// URL"
	}
	return e
}

// summaryURL resolves the kubelet URL to its /stats/summary.
func summaryURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no kubelet URL")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("kubelet URL %q: want https://HOST:10250 or http://HOST:10255", raw)
	}
	if !strings.HasSuffix(u.Path, SummaryPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + SummaryPath
		u.RawPath = ""
	}
	return u, nil
}

// transport builds the HTTP transport and reads the token.
func (o DirectOptions) transport() (*http.Transport, string, error) {
	if o.Token != "" && o.TokenFile != "" {
		return nil, "", errors.New("a token and a token file are mutually exclusive")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, "", errors.New("a client certificate needs both the certificate and the key file")
	}
	if o.CAFile != "" && o.InsecureSkipVerify {
		return nil, "", errors.New("a CA file and insecure-skip-verify are mutually exclusive")
	}
	token := o.Token
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("token file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, "", fmt.Errorf("token file %s is empty", o.TokenFile)
		}
	}
	cfg := &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, "", fmt.Errorf("CA file %s: no PEM certificates", o.CAFile)
		}
	}
	if o.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("client certificate %s, key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return tr, token, nil
}
