package kubelettest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// client trusts the test CA and, with cert, presents the client pair.
func client(t *testing.T, s *Server, cert bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM) {
		t.Fatal("CAPEM holds no certificate")
	}
	cfg := &tls.Config{RootCAs: pool}
	if cert {
		pair, err := tls.LoadX509KeyPair(s.ClientCertFile, s.ClientKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
}

func get(t *testing.T, c *http.Client, url, token string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestServer(t *testing.T) {
	s := Start(t, Options{RequireToken: true})
	c := client(t, s, false)

	for _, path := range []string{"/stats/summary", "/api/v1/nodes/" + s.Node + "/proxy/stats/summary"} {
		code, ct, body := get(t, c, s.URL+path, s.Token)
		if code != 200 || ct != "application/json" {
			t.Fatalf("%s: %d %s", path, code, ct)
		}
		var got statsapi.Summary
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got.Node.NodeName != s.Node || *got.Node.Runtime.ImageFs.UsedBytes != *s.Summary.Node.Runtime.ImageFs.UsedBytes {
			t.Errorf("%s: served %+v", path, got.Node)
		}
		if !got.Node.Fs.Time.Equal(&s.Summary.Node.Fs.Time) {
			t.Errorf("%s: time %v, want %v (whole seconds survive the round trip)", path, got.Node.Fs.Time, s.Summary.Node.Fs.Time)
		}
	}

	code, _, body := get(t, c, s.URL+"/api/v1/nodes/"+s.Node, s.Token)
	if code != 200 || !strings.Contains(string(body), `"kind": "Node"`) {
		t.Errorf("node: %d %s", code, body)
	}

	code, _, body = get(t, c, s.URL+"/api/v1/nodes/x", s.Token)
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil || code != 404 || st.Kind != "Status" || st.Message != `nodes "x" not found` || st.Reason != metav1.StatusReasonNotFound || st.Code != 404 {
		t.Errorf("missing node: %d %s (%v)", code, body, err)
	}

	if code, _, body := get(t, c, s.URL+"/stats/summary", "wrong"); code != 401 || string(body) != "Unauthorized" {
		t.Errorf("wrong token: %d %q", code, body)
	}
	if code, _, _ := get(t, client(t, s, true), s.URL+"/stats/summary", ""); code != 200 {
		t.Errorf("client certificate instead of a token: %d", code)
	}
	if got := s.Requests(); len(got) != 6 || got[0] != "/stats/summary" {
		t.Errorf("Requests() = %q", got)
	}

	cfg, err := clientcmd.LoadFromFile(s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "kubelettest" || cfg.Clusters["kubelettest"].Server != s.URL || cfg.AuthInfos["kubelettest"].Token != s.Token {
		t.Errorf("kubeconfig: %+v", cfg)
	}
}

func TestServerOptions(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		path     string
		wantCode int
		wantBody string
	}{
		{"server error", Options{ServerError: "failed to get imageFs stats: boom"}, "/stats/summary", 500, "Internal Error: failed to get imageFs stats: boom"},
		{"server error through proxy", Options{ServerError: "x"}, "/api/v1/nodes/" + DefaultNode + "/proxy/stats/summary", 500, "Internal Error: x"},
		{"forbidden proxy", Options{ForbidProxy: true}, "/api/v1/nodes/any/proxy/stats/summary", 403, `cannot get resource \"nodes/proxy\"`},
		{"forbidden stats", Options{ForbidStats: true}, "/stats/summary", 403, "subresource(s)=[stats]"},
		{"body", Options{Body: []byte("<html>")}, "/stats/summary", 200, "<html>"},
		{"unknown path", Options{}, "/metrics", 404, "404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.opts)
			code, _, body := get(t, client(t, s, false), s.URL+tt.path, "")
			if code != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("got %d %q, want %d with %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestRequireClientCert(t *testing.T) {
	s := Start(t, Options{RequireClientCert: true})
	if _, err := client(t, s, false).Get(s.URL + "/stats/summary"); err == nil {
		t.Error("no client certificate: want a TLS error")
	}
	if code, _, _ := get(t, client(t, s, true), s.URL+"/stats/summary", ""); code != 200 {
		t.Errorf("with client certificate: %d", code)
	}
}

func TestPlainHTTPAndDelay(t *testing.T) {
	s := Start(t, Options{PlainHTTP: true, Delay: 200 * time.Millisecond})
	if !strings.HasPrefix(s.URL, "http://") {
		t.Fatalf("URL %s", s.URL)
	}
	start := time.Now()
	if code, _, _ := get(t, http.DefaultClient, s.URL+"/stats/summary", ""); code != 200 {
		t.Errorf("code %d", code)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("answered after %s, want the 200ms delay", d)
	}
}
