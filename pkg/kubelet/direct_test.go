package kubelet_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/internal/kubelettest"
	"github.com/imagefs/imagefs/pkg/kubelet"
)

func TestFromKubelet(t *testing.T) {
	tests := []struct {
		name   string
		server kubelettest.Options
		opts   func(s *kubelettest.Server) kubelet.DirectOptions
		// wantErr is a sentinel, or any of them when several are right.
		wantErr []error
		// wantMsg are substrings of the error.
		wantMsg []string
		// check runs on the error for what errors.Is cannot say.
		check func(t *testing.T, err error, raw []byte)
	}{
		{
			name:   "token",
			server: kubelettest.Options{RequireToken: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, Token: s.Token, CAFile: s.CAFile}
			},
		},
		{
			name:   "token file",
			server: kubelettest.Options{RequireToken: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, TokenFile: s.TokenFile, CAFile: s.CAFile}
			},
		},
		{
			name:   "client certificate",
			server: kubelettest.Options{RequireToken: true, RequireClientCert: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, CertFile: s.ClientCertFile, KeyFile: s.ClientKeyFile, CAFile: s.CAFile}
			},
		},
		{
			name:   "insecure skip verify",
			server: kubelettest.Options{RequireToken: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, Token: s.Token, InsecureSkipVerify: true}
			},
		},
		{
			name:   "read-only port over plain HTTP",
			server: kubelettest.Options{PlainHTTP: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL}
			},
		},
		{
			name:   "URL already ending in /stats/summary",
			server: kubelettest.Options{},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL + "/stats/summary", CAFile: s.CAFile}
			},
		},
		{
			name:   "no token",
			server: kubelettest.Options{RequireToken: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrUnauthorized},
			wantMsg: []string{"/stats/summary: unauthorized (HTTP 401): Unauthorized", "no credentials were sent"},
		},
		{
			name:   "wrong token",
			server: kubelettest.Options{RequireToken: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, Token: "not-" + s.Token, CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrUnauthorized},
			wantMsg: []string{"(HTTP 401)", "TokenReview"},
		},
		{
			// TLS 1.3 finishes the client's side of the handshake before the
			// server judges the (missing) certificate: the alert arrives on
			// the first read, "remote error: tls: certificate required".
			name:   "no client certificate when the kubelet requires one",
			server: kubelettest.Options{RequireClientCert: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, Token: s.Token, CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrTLS, kubelet.ErrUnauthorized},
			wantMsg: []string{"certificate"},
		},
		{
			name:   "unknown CA",
			server: kubelettest.Options{RequireToken: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, Token: s.Token}
			},
			wantErr: []error{kubelet.ErrTLS},
			wantMsg: []string{"unknown authority", "--kubelet-ca", "--insecure-skip-verify"},
			check: func(t *testing.T, err error, _ []byte) {
				var ua x509.UnknownAuthorityError
				if !errors.As(err, &ua) {
					t.Errorf("errors.As(x509.UnknownAuthorityError) = false for %v", err)
				}
			},
		},
		{
			name:   "forbidden",
			server: kubelettest.Options{RequireToken: true, ForbidStats: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, Token: s.Token, CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrForbidden},
			wantMsg: []string{"subresource(s)=[stats]", "get on nodes/stats"},
		},
		{
			name:   "kubelet fails the Summary",
			server: kubelettest.Options{ServerError: "failed to get imageFs stats: get filesystem info: Failed to get the info of the filesystem with mountpoint: cannot find filesystem info for device \"/dev/vdb\""},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrServer},
			wantMsg: []string{`(HTTP 500): Internal Error: failed to get imageFs stats: get filesystem info: Failed to get the info of the filesystem with mountpoint: cannot find filesystem info for device "/dev/vdb"`},
			check: func(t *testing.T, err error, raw []byte) {
				var ke *kubelet.Error
				if !errors.As(err, &ke) || ke.StatusCode != 500 || !strings.HasPrefix(ke.Message, "Internal Error: failed to get imageFs stats") {
					t.Errorf("Error = %#v", ke)
				}
				if !strings.HasPrefix(string(raw), "Internal Error:") {
					t.Errorf("raw = %q, want the body", raw)
				}
			},
		},
		{
			name:   "HTML instead of JSON",
			server: kubelettest.Options{Body: []byte("<html><body>" + strings.Repeat("proxy login ", 40) + "</body></html>"), BodyContentType: "text/html"},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrBadResponse},
			wantMsg: []string{"not a Summary", `"<html><body>proxy login`, "(200 of 506 bytes)"},
			check: func(t *testing.T, err error, raw []byte) {
				if len(raw) != 506 {
					t.Errorf("raw has %d bytes, want the whole body", len(raw))
				}
			},
		},
		{
			name:   "JSON that is not a Summary",
			server: kubelettest.Options{Body: []byte(`{"paths":["/api","/healthz"]}`)},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrBadResponse},
			wantMsg: []string{"without node.nodeName", `/healthz`},
		},
		{
			name:   "truncated JSON",
			server: kubelettest.Options{Body: []byte(`{"node":{"nodeName":"n","fs":{"usedBytes":12`)},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL, CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrBadResponse},
			wantMsg: []string{"unexpected end of JSON input"},
		},
		{
			name:   "not a kubelet",
			server: kubelettest.Options{},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: s.URL + "/metrics", CAFile: s.CAFile}
			},
			wantErr: []error{kubelet.ErrBadResponse},
			wantMsg: []string{"/metrics/stats/summary", "(HTTP 404)", "does not look like a kubelet"},
		},
		{
			name:   "https URL on the plain HTTP port",
			server: kubelettest.Options{PlainHTTP: true},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: strings.Replace(s.URL, "http://", "https://", 1)}
			},
			wantErr: []error{kubelet.ErrTLS},
			wantMsg: []string{"use an http:// URL"},
		},
		{
			name:   "http URL on the HTTPS port",
			server: kubelettest.Options{},
			opts: func(s *kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: strings.Replace(s.URL, "https://", "http://", 1)}
			},
			wantErr: []error{kubelet.ErrBadResponse},
			wantMsg: []string{"(HTTP 400)", "use an https:// URL"},
		},
		{
			name:   "nothing listening",
			server: kubelettest.Options{},
			opts: func(*kubelettest.Server) kubelet.DirectOptions {
				return kubelet.DirectOptions{URL: "https://" + closedAddr(t)}
			},
			wantErr: []error{kubelet.ErrUnreachable},
			wantMsg: []string{"connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := kubelettest.Start(t, tt.server)
			got, raw, err := kubelet.FromKubelet(context.Background(), tt.opts(s))
			checkErr(t, err, tt.wantErr, tt.wantMsg)
			if tt.check != nil {
				tt.check(t, err, raw)
			}
			if tt.wantErr == nil {
				checkSummary(t, got, raw, s.Summary)
			}
		})
	}
}

func TestFromKubeletTimeout(t *testing.T) {
	s := kubelettest.Start(t, kubelettest.Options{Delay: 30 * time.Second})
	const timeout = 300 * time.Millisecond
	start := time.Now()
	_, _, err := kubelet.FromKubelet(context.Background(), kubelet.DirectOptions{URL: s.URL, CAFile: s.CAFile, Timeout: timeout})
	elapsed := time.Since(start)
	checkErr(t, err, []error{kubelet.ErrTimeout}, []string{"timed out: no answer within 300ms"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	if elapsed > timeout+time.Second {
		t.Errorf("returned after %s, want about %s", elapsed, timeout)
	}
}

func TestFromKubeletCancel(t *testing.T) {
	s := kubelettest.Start(t, kubelettest.Options{Delay: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, _, err := kubelet.FromKubelet(ctx, kubelet.DirectOptions{URL: s.URL, CAFile: s.CAFile})
	if !errors.Is(err, context.Canceled) || errors.Is(err, kubelet.ErrTimeout) {
		t.Errorf("err = %v, want context.Canceled and no sentinel", err)
	}
}

func TestFromKubeletOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    kubelet.DirectOptions
		wantMsg string
	}{
		{"no URL", kubelet.DirectOptions{}, "no kubelet URL"},
		{"no scheme", kubelet.DirectOptions{URL: "127.0.0.1:10250"}, "want https://HOST:10250"},
		{"token and token file", kubelet.DirectOptions{URL: "https://127.0.0.1:1", Token: "a", TokenFile: "b"}, "mutually exclusive"},
		{"certificate without key", kubelet.DirectOptions{URL: "https://127.0.0.1:1", CertFile: "c"}, "both the certificate and the key"},
		{"CA and insecure", kubelet.DirectOptions{URL: "https://127.0.0.1:1", CAFile: "c", InsecureSkipVerify: true}, "mutually exclusive"},
		{"missing CA file", kubelet.DirectOptions{URL: "https://127.0.0.1:1", CAFile: "/nonexistent/ca.crt"}, "CA file: open /nonexistent/ca.crt"},
		{"missing token file", kubelet.DirectOptions{URL: "https://127.0.0.1:1", TokenFile: "/nonexistent/token"}, "token file: open /nonexistent/token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := kubelet.FromKubelet(context.Background(), tt.opts)
			var ke *kubelet.Error
			if !errors.As(err, &ke) || ke.Kind != nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want an *Error without Kind containing %q", err, tt.wantMsg)
			}
		})
	}
}

// checkErr wants err to be an *Error that is one of want (nil: no error)
// and contains every msg.
func checkErr(t *testing.T, err error, want []error, msgs []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	var ke *kubelet.Error
	if !errors.As(err, &ke) {
		t.Errorf("%T is not a *kubelet.Error: %v", err, err)
	}
	ok := false
	for _, w := range want {
		ok = ok || errors.Is(err, w)
	}
	if !ok {
		t.Errorf("err = %v, want errors.Is one of %v", err, want)
	}
	for _, m := range msgs {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("err = %v, want it to contain %q", err, m)
		}
	}
	t.Logf("error: %v", err)
}

// checkSummary wants got to be what the server served, the filesystem
// fields one by one and the rest as a whole, and raw to decode to it.
func checkSummary(t *testing.T, got *statsapi.Summary, raw []byte, want *statsapi.Summary) {
	t.Helper()
	if got == nil {
		t.Fatal("nil Summary")
	}
	if got.Node.NodeName != want.Node.NodeName {
		t.Errorf("nodeName %q, want %q", got.Node.NodeName, want.Node.NodeName)
	}
	if got.Node.Runtime == nil {
		t.Fatal("no node.runtime")
	}
	for _, rd := range kubelet.CompareSummaries(want.Node.Fs, want.Node.Runtime.ImageFs, want.Node.Runtime.ContainerFs, got) {
		for _, f := range rd.Fields {
			if !f.Equal || (f.Live == nil && f.LiveTime == nil) {
				t.Errorf("%s.%s: served %s, decoded %s", rd.Role, f.Field, show(f.Ours, f.OursTime), show(f.Live, f.LiveTime))
			}
		}
	}
	if !equality.Semantic.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("decoded Summary differs:\n got %s\nwant %s", g, w)
	}
	var fromRaw statsapi.Summary
	if err := json.Unmarshal(raw, &fromRaw); err != nil || !equality.Semantic.DeepEqual(&fromRaw, got) {
		t.Errorf("raw does not decode to the Summary (%v)", err)
	}
}

func show(v *uint64, tm *time.Time) string {
	switch {
	case v != nil:
		return strconv.FormatUint(*v, 10)
	case tm != nil:
		return tm.Format(time.RFC3339Nano)
	}
	return "(omitted)"
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
