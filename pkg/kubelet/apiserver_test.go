package kubelet_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/imagefs/imagefs/internal/kubelettest"
	"github.com/imagefs/imagefs/pkg/kubelet"
)

func TestRESTConfig(t *testing.T) {
	s := kubelettest.Start(t, kubelettest.Options{})
	// clientcmd resolves ~/.kube/config once, at init, so $HOME cannot
	// redirect it; "nothing to load" needs a machine without one.
	_, statErr := os.Stat(clientcmd.RecommendedHomeFile)
	noEnv := func(t *testing.T) {
		t.Setenv("KUBECONFIG", "")
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		t.Setenv("KUBERNETES_SERVICE_PORT", "")
	}
	tests := []struct {
		name     string
		env      func(t *testing.T)
		opts     kubelet.KubeconfigOptions
		wantCert bool
		wantErr  string
		wantIs   error
	}{
		{name: "--kubeconfig", env: noEnv, opts: kubelet.KubeconfigOptions{Kubeconfig: s.Kubeconfig}},
		{name: "$KUBECONFIG", env: func(t *testing.T) { noEnv(t); t.Setenv("KUBECONFIG", s.Kubeconfig) }},
		{name: "--context", env: noEnv, opts: kubelet.KubeconfigOptions{Kubeconfig: s.Kubeconfig, Context: "kubelettest-cert"}, wantCert: true},
		{name: "unknown context", env: noEnv, opts: kubelet.KubeconfigOptions{Kubeconfig: s.Kubeconfig, Context: "nope"}, wantErr: `context nope: context "nope" does not exist`},
		{name: "missing file", env: noEnv, opts: kubelet.KubeconfigOptions{Kubeconfig: "/nonexistent/kubeconfig"}, wantErr: "kubeconfig /nonexistent/kubeconfig"},
		{
			name: "nothing to load",
			env: func(t *testing.T) {
				if statErr == nil {
					t.Skipf("%s exists", clientcmd.RecommendedHomeFile)
				}
				noEnv(t)
			},
			wantIs:  kubelet.ErrNoKubeconfig,
			wantErr: "pass --kubeconfig, set $KUBECONFIG",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env(t)
			cfg, err := kubelet.RESTConfig(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != s.URL {
				t.Errorf("Host = %q, want %q", cfg.Host, s.URL)
			}
			if tt.wantCert {
				if cfg.CertFile != s.ClientCertFile || cfg.BearerToken != "" {
					t.Errorf("cert context: CertFile %q, token %q", cfg.CertFile, cfg.BearerToken)
				}
			} else if cfg.BearerToken != s.Token {
				t.Errorf("BearerToken = %q, want the server's", cfg.BearerToken)
			}
		})
	}
}

func TestFromAPIServer(t *testing.T) {
	tests := []struct {
		name    string
		server  kubelettest.Options
		context string
		node    string // "" is the server's node
		edit    func(c *rest.Config)
		wantErr []error
		wantMsg []string
		check   func(t *testing.T, err error, raw []byte)
	}{
		{name: "token", server: kubelettest.Options{RequireToken: true}},
		{name: "client certificate", server: kubelettest.Options{RequireToken: true}, context: "kubelettest-cert"},
		{
			// The API server checks RBAC before it looks the node up, and
			// answers a missing node with a 404 Status, not a plain 404.
			name:    "unknown node",
			server:  kubelettest.Options{RequireToken: true},
			node:    "ghost-node",
			wantErr: []error{kubelet.ErrNodeNotFound},
			wantMsg: []string{"/api/v1/nodes/ghost-node/proxy/stats/summary: node not found (HTTP 404): nodes \"ghost-node\" not found"},
			check: func(t *testing.T, err error, raw []byte) {
				var ke *kubelet.Error
				if errors.As(err, &ke) && ke.Node != "ghost-node" {
					t.Errorf("Node = %q", ke.Node)
				}
				if !strings.Contains(string(raw), `"kind":"Status"`) {
					t.Errorf("raw = %q, want the Status body", raw)
				}
			},
		},
		{
			name:    "no nodes/proxy permission",
			server:  kubelettest.Options{RequireToken: true, ForbidProxy: true},
			wantErr: []error{kubelet.ErrForbidden},
			wantMsg: []string{`(HTTP 403): nodes "kubelettest-node" is forbidden: User "system:serviceaccount:default:imagefs" cannot get resource "nodes/proxy"`, "needs get on nodes/proxy", "kubectl auth can-i get nodes/proxy"},
		},
		{
			name:    "wrong token",
			server:  kubelettest.Options{RequireToken: true},
			edit:    func(c *rest.Config) { c.BearerToken = "expired" },
			wantErr: []error{kubelet.ErrUnauthorized},
			wantMsg: []string{"(HTTP 401): Unauthorized", "rejected the kubeconfig's credentials"},
		},
		{
			name:    "unknown CA",
			server:  kubelettest.Options{},
			edit:    func(c *rest.Config) { c.TLSClientConfig.CAFile, c.TLSClientConfig.CAData = "", nil },
			wantErr: []error{kubelet.ErrTLS},
			wantMsg: []string{"unknown authority", "certificate-authority"},
		},
		{
			name:    "insecure",
			server:  kubelettest.Options{},
			edit:    func(c *rest.Config) { c.TLSClientConfig.CAFile, c.TLSClientConfig.CAData, c.Insecure = "", nil, true },
			wantErr: nil,
		},
		{
			// The proxy passes the kubelet's text/plain 500 through; client-go
			// files it as an "unexpected server response" with the body as
			// the cause, which is where the diagnosis is.
			name:    "kubelet fails the Summary",
			server:  kubelettest.Options{ServerError: "failed to get imageFs stats: imageFs information is unavailable"},
			wantErr: []error{kubelet.ErrServer},
			wantMsg: []string{"(HTTP 500): Internal Error: failed to get imageFs stats: imageFs information is unavailable"},
		},
		{
			name:    "API server cannot reach the kubelet",
			server:  kubelettest.Options{KubeletUnreachable: true},
			wantErr: []error{kubelet.ErrServer},
			wantMsg: []string{"(HTTP 503): error trying to reach service: dial tcp 127.0.0.1:10250: connect: connection refused", "could not reach the kubelet on kubelettest-node"},
		},
		{
			name:    "API server demands a client certificate",
			server:  kubelettest.Options{RequireClientCert: true},
			wantErr: []error{kubelet.ErrTLS},
			wantMsg: []string{"certificate required", "client-certificate"},
		},
		{
			name:    "garbage",
			server:  kubelettest.Options{Body: []byte("\x00\x01garbage")},
			wantErr: []error{kubelet.ErrBadResponse},
			wantMsg: []string{`"\x00\x01garbage"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := kubelettest.Start(t, tt.server)
			cfg, err := kubelet.RESTConfig(kubelet.KubeconfigOptions{Kubeconfig: s.Kubeconfig, Context: tt.context})
			if err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(cfg)
			}
			node := tt.node
			if node == "" {
				node = s.Node
			}
			got, raw, err := kubelet.FromAPIServer(context.Background(), cfg, node)
			checkErr(t, err, tt.wantErr, tt.wantMsg)
			if tt.check != nil {
				tt.check(t, err, raw)
			}
			if tt.wantErr == nil {
				checkSummary(t, got, raw, s.Summary)
				want := "/api/v1/nodes/" + s.Node + "/proxy/stats/summary"
				if r := s.Requests(); len(r) != 1 || r[0] != want {
					t.Errorf("requests %q, want [%s]", r, want)
				}
			}
		})
	}
}

func TestFromAPIServerTimeout(t *testing.T) {
	s := kubelettest.Start(t, kubelettest.Options{Delay: 30 * time.Second})
	cfg, err := kubelet.RESTConfig(kubelet.KubeconfigOptions{Kubeconfig: s.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	cfg.Timeout = timeout
	start := time.Now()
	_, _, err = kubelet.FromAPIServer(context.Background(), cfg, s.Node)
	elapsed := time.Since(start)
	checkErr(t, err, []error{kubelet.ErrTimeout}, []string{"no answer within 300ms"})
	if elapsed > timeout+time.Second {
		t.Errorf("returned after %s, want about %s", elapsed, timeout)
	}
}

func TestFromAPIServerBadNode(t *testing.T) {
	for _, node := range []string{"", "a/b", "..", "x%2f"} {
		_, _, err := kubelet.FromAPIServer(context.Background(), &rest.Config{Host: "https://127.0.0.1:1"}, node)
		var ke *kubelet.Error
		if !errors.As(err, &ke) || ke.Kind != nil {
			t.Errorf("node %q: err = %v, want an *Error without Kind", node, err)
		}
	}
}
