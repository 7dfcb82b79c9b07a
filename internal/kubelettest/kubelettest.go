// Package kubelettest is a test server that speaks like a kubelet and like
// the API server's node proxy in front of it, so pkg/kubelet is tested over
// real HTTPS, real client-go and real kubeconfig loading.
//
// It serves
//
//	GET /stats/summary                              the kubelet (port 10250 or 10255)
//	GET /api/v1/nodes/{name}/proxy/stats/summary    the API server's node proxy
//	GET /api/v1/nodes/{name}                        the Node object
//	GET /api/v1/nodes                               the NodeList (labelSelector, limit, continue)
//	GET /api/v1/namespaces/{ns}/pods                the imagefs exporter pods (labelSelector)
//	GET /api/v1/namespaces/{ns}/pods/{pod}/proxy/…  the API server's pod proxy to an exporter
//
// With Options.Nodes it is a whole cluster: many nodes, each with its own
// Summary, labels, latency and failure (see NodeSpec), and it counts the
// proxied requests in flight so a client's concurrency bound can be checked.
//
// Summary bodies are json.MarshalIndent of a statsapi.Summary, as the
// kubelet's go-restful writes them; errors copy the wire shape of each side:
// the kubelet answers text/plain ("Unauthorized", "Internal Error: ..."),
// the API server answers metav1.Status JSON.
package kubelettest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// DefaultNode is the node name served unless Options.Node says otherwise.
const DefaultNode = "kubelettest-node"

// DefaultUser is who the API server says is asking, in its 403 message.
const DefaultUser = "system:serviceaccount:default:imagefs"

// Options shape one server. The zero value serves DefaultNode's
// NewSummary over HTTPS without asking for credentials.
type Options struct {
	// Node is the node's name; the proxy answers 404 for any other.
	Node string
	// Summary is what both summary endpoints serve; nil means
	// NewSummary(Node, time.Now()).
	Summary *statsapi.Summary
	// Body, when non-nil, is served verbatim with status 200 and
	// BodyContentType instead of the Summary (garbage, HTML, truncation).
	Body            []byte
	BodyContentType string
	// Configz is what /configz answers through the node proxy (the
	// kubelet's {"kubeletconfig": {…}}); nil answers 404 like a kubelet
	// without the endpoint.
	Configz []byte

	// RequireToken answers 401 unless the request carries
	// "Authorization: Bearer <Server.Token>" or a client certificate signed by
	// the test CA, like the kubelet's x509-then-token authenticator.
	RequireToken bool
	// RequireClientCert makes the TLS handshake demand a certificate signed
	// by the test CA (tls.RequireAndVerifyClientCert). Without it one is
	// verified if given (the kubelet's tls.VerifyClientCertIfGiven).
	RequireClientCert bool
	// PlainHTTP serves without TLS, like the read-only port 10255.
	PlainHTTP bool

	// Delay holds every response this long, or until the client gives up.
	Delay time.Duration
	// ServerError makes both summary endpoints fail with 500 and the body
	// "Internal Error: " + ServerError, as the kubelet's handleError does,
	// e.g. "failed to get imageFs stats: ...".
	ServerError string
	// ForbidProxy answers the proxy path with the API server's 403 Status
	// for a user without get on nodes/proxy.
	ForbidProxy bool
	// KubeletUnreachable answers the proxy path with the API server's 503
	// Status for a kubelet it cannot dial ("error trying to reach service:
	// dial tcp ...: connect: connection refused").
	KubeletUnreachable bool
	// ForbidStats answers /stats/summary with the kubelet's 403 for a user
	// without get on nodes/stats.
	ForbidStats bool
	// User is the user named in 403 messages; DefaultUser if empty.
	User string

	// Nodes, when not empty, makes the server a cluster of these nodes
	// (see cluster.go); Node, Summary, Body, ServerError and
	// KubeletUnreachable then describe nothing, each NodeSpec says what
	// its node does. Options.Delay still holds every request.
	Nodes []NodeSpec
	// Latency holds every node's and exporter pod's proxied answer this
	// long, unless its NodeSpec.Delay says otherwise.
	Latency time.Duration
	// ExporterNamespace and ExporterPort are where the imagefs DaemonSet's
	// pods run and listen; "imagefs" and 9847 if empty.
	ExporterNamespace string
	ExporterPort      int
	// HTTP2 offers h2 in the TLS handshake, as an API server does (one
	// connection carries every concurrent request).
	HTTP2 bool
}

// Server is a started test server. Files live in t.TempDir().
type Server struct {
	// URL is https://127.0.0.1:PORT (http:// with PlainHTTP), no path.
	URL string
	// Node is the node name served.
	Node string
	// Summary is what the summary endpoints serve (unless Options.Body).
	Summary *statsapi.Summary
	// NodeObject is what GET /api/v1/nodes/{Node} serves.
	NodeObject *corev1.Node

	// CAPEM is the test CA that signed the serving and client certificates;
	// CAFile holds the same PEM.
	CAPEM  []byte
	CAFile string
	// ClientCertFile and ClientKeyFile are a client pair signed by the CA.
	ClientCertFile string
	ClientKeyFile  string
	// Token is the accepted bearer token; TokenFile holds it plus a newline.
	Token     string
	TokenFile string
	// Kubeconfig is a kubeconfig file whose current context "kubelettest"
	// points at URL with the CA and Token.
	Kubeconfig string

	opts Options
	mu   sync.Mutex
	reqs []string

	srv       *httptest.Server
	done      chan struct{}
	closeOnce sync.Once
	// cluster is the Options.Nodes mode; see cluster.go.
	cluster  map[string]*clusterNode
	order    []string
	inFlight atomic.Int64
	maxIn    atomic.Int64
	conns    atomic.Int64
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts, t.TempDir())
	if err != nil {
		t.Fatalf("kubelettest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a server outside a test (a benchmark program), writing its
// files into dir; Close stops it.
func New(opts Options, dir string) (*Server, error) {
	if opts.Node == "" {
		opts.Node = DefaultNode
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.BodyContentType == "" {
		opts.BodyContentType = "application/json"
	}
	s := &Server{Node: opts.Node, Summary: opts.Summary, opts: opts, Token: "kubelettest-token-" + strconv.FormatInt(time.Now().UnixNano(), 36), done: make(chan struct{})}
	if s.Summary == nil {
		s.Summary = NewSummary(opts.Node, time.Now())
	}
	if err := s.initCluster(); err != nil {
		return nil, err
	}

	p, err := newPKI("kubelettest-client")
	if err != nil {
		return nil, err
	}
	s.CAPEM = p.caPEM
	for _, f := range []struct {
		dst  *string
		name string
		data []byte
	}{
		{&s.CAFile, "ca.crt", p.caPEM},
		{&s.ClientCertFile, "client.crt", p.clientCert},
		{&s.ClientKeyFile, "client.key", p.clientKey},
		{&s.TokenFile, "token", []byte(s.Token + "\n")},
	} {
		if *f.dst, err = writeFile(dir, f.name, f.data); err != nil {
			return nil, err
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats/summary", s.kubeletSummary)
	mux.HandleFunc("GET /api/v1/nodes/{name}/proxy/stats/summary", s.proxySummary)
	mux.HandleFunc("GET /api/v1/nodes/{name}/proxy/configz", s.proxyConfigz)
	mux.HandleFunc("GET /api/v1/nodes/{name}", s.getNode)
	mux.HandleFunc("GET /api/v1/nodes", s.listNodes)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods", s.listPods)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods/{name}/proxy/{path...}", s.podProxy)

	srv := httptest.NewUnstartedServer(s.wrap(mux))
	// Handshake failures are the point of some tests; keep them off stderr.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if opts.PlainHTTP {
		srv.Start()
	} else {
		srv.EnableHTTP2 = opts.HTTP2
		srv.TLS = &tls.Config{
			Certificates: []tls.Certificate{p.serving},
			ClientCAs:    p.pool,
			ClientAuth:   tls.VerifyClientCertIfGiven,
		}
		if opts.RequireClientCert {
			srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		}
		srv.StartTLS()
	}
	s.srv = srv
	s.URL = srv.URL
	s.NodeObject = newNode(opts.Node, srv.Listener.Addr().String())
	if s.Kubeconfig, err = s.writeKubeconfig(dir); err != nil {
		srv.Close()
		return nil, err
	}
	return s, nil
}

// Close releases requests held by Hang or Delay and stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}

// Requests returns the paths asked for so far, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

// wrap records the request, applies the delay and authenticates.
func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.URL.Path)
		s.mu.Unlock()
		if strings.Contains(r.URL.Path, "/proxy/") {
			s.enter()
			defer s.inFlight.Add(-1)
		}
		if s.opts.Delay > 0 {
			s.wait(r, s.opts.Delay)
		}
		if s.opts.RequireToken && !s.authenticated(r) {
			if isAPIServerPath(r.URL.Path) {
				writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized", nil)
			} else {
				writeText(w, http.StatusUnauthorized, "Unauthorized")
			}
			return
		}
		h.ServeHTTP(w, r)
	})
}

// wait holds a request for d, or until the client gives up or the server
// closes (d < 0 waits for those only).
func (s *Server) wait(r *http.Request, d time.Duration) {
	if d == 0 {
		return
	}
	var after <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		after = tm.C
	}
	select {
	case <-after:
	case <-r.Context().Done():
		// The client gave up. Returning would send an empty 200,
		// which can still reach a client that is mid-close; drop
		// the connection instead, as a stalled kubelet would.
		panic(http.ErrAbortHandler)
	case <-s.done:
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) authenticated(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && tok == s.Token
}

func isAPIServerPath(p string) bool { return strings.HasPrefix(p, "/api/") }

// kubeletSummary is the kubelet's /stats/summary.
func (s *Server) kubeletSummary(w http.ResponseWriter, r *http.Request) {
	if s.opts.ForbidStats {
		// pkg/kubelet/server/server.go, after the authorizer says no.
		writeText(w, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=get, resource=nodes, subresource(s)=[stats])\n", s.opts.User))
		return
	}
	s.summary(w)
}

// proxySummary is the API server's node proxy: RBAC first, then the node
// lookup, then the kubelet's answer passed through unchanged.
func (s *Server) proxySummary(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.opts.ForbidProxy {
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
			fmt.Sprintf("nodes %q is forbidden: User %q cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope", name, s.opts.User),
			&metav1.StatusDetails{Name: name, Kind: "nodes"})
		return
	}
	if s.cluster != nil {
		s.clusterSummary(w, r, name)
		return
	}
	if name != s.Node {
		s.notFound(w, name)
		return
	}
	if s.opts.KubeletUnreachable {
		// k8s.io/apimachinery/pkg/util/proxy/transport.go.
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"error trying to reach service: dial tcp 127.0.0.1:10250: connect: connection refused", nil)
		return
	}
	s.summary(w)
}

// proxyConfigz is the node proxy to the kubelet's /configz.
func (s *Server) proxyConfigz(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	switch {
	case s.opts.ForbidProxy:
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
			fmt.Sprintf("nodes %q is forbidden: User %q cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope", name, s.opts.User),
			&metav1.StatusDetails{Name: name, Kind: "nodes"})
	case name != s.Node:
		s.notFound(w, name)
	case s.opts.Configz == nil:
		writeText(w, http.StatusNotFound, "404 page not found\n")
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(s.opts.Configz)
	}
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.cluster != nil {
		if n := s.cluster[name]; n != nil && !n.spec.Gone {
			writeJSON(w, http.StatusOK, n.obj)
			return
		}
		s.notFound(w, name)
		return
	}
	if name != s.Node {
		s.notFound(w, name)
		return
	}
	writeJSON(w, http.StatusOK, s.NodeObject)
}

func (s *Server) notFound(w http.ResponseWriter, name string) {
	writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("nodes %q not found", name), &metav1.StatusDetails{Name: name, Kind: "nodes"})
}

func (s *Server) summary(w http.ResponseWriter) {
	switch {
	case s.opts.ServerError != "":
		// pkg/kubelet/server/stats/handler.go handleError.
		writeText(w, http.StatusInternalServerError, "Internal Error: "+s.opts.ServerError)
	case s.opts.Body != nil:
		w.Header().Set("Content-Type", s.opts.BodyContentType)
		w.WriteHeader(http.StatusOK)
		w.Write(s.opts.Body)
	default:
		writeJSON(w, http.StatusOK, s.Summary)
	}
}

// writeJSON writes v as go-restful does for the kubelet: indented by one
// space.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// writeText is go-restful's WriteErrorString: the body as is, sniffed to
// text/plain.
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

// writeStatus writes a metav1.Status failure as the API server does.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string, details *metav1.StatusDetails) {
	b, _ := json.Marshal(&metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Details:  details,
		Code:     int32(code),
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

func (s *Server) writeKubeconfig(dir string) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = s.URL
	if !s.opts.PlainHTTP {
		cluster.CertificateAuthority = s.CAFile
	}
	user := clientcmdapi.NewAuthInfo()
	user.Token = s.Token
	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = "kubelettest", "kubelettest"
	cfg.Clusters["kubelettest"] = cluster
	cfg.AuthInfos["kubelettest"] = user
	cfg.Contexts["kubelettest"] = ctx
	// A second context with a client certificate and no token.
	certUser := clientcmdapi.NewAuthInfo()
	certUser.ClientCertificate, certUser.ClientKey = s.ClientCertFile, s.ClientKeyFile
	certCtx := clientcmdapi.NewContext()
	certCtx.Cluster, certCtx.AuthInfo = "kubelettest", "kubelettest-cert"
	cfg.AuthInfos["kubelettest-cert"] = certUser
	cfg.Contexts["kubelettest-cert"] = certCtx
	cfg.CurrentContext = "kubelettest"
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

func writeFile(dir, name string, data []byte) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, data, 0o600)
}

// NewSummary is a plausible Summary for a containerd node: node.fs on the
// root disk, imageFs on a separate disk and containerFs the same object (the
// CRI stats provider), plus one pod, CPU and memory. Times are whole
// seconds: metav1.Time's JSON drops the fraction, so values survive a round
// trip exactly.
func NewSummary(node string, now time.Time) *statsapi.Summary {
	now = now.Truncate(time.Second)
	ts := metav1.NewTime(now)
	start := metav1.NewTime(now.Add(-72 * time.Hour))
	u := func(v uint64) *uint64 { return &v }
	i := func(v int64) *int64 { return &v }
	imageFs := &statsapi.FsStats{
		Time:           metav1.NewTime(now.Add(-3 * time.Second)),
		AvailableBytes: u(38_512_394_240),
		CapacityBytes:  u(53_660_876_800),
		UsedBytes:      u(12_884_901_888),
		InodesFree:     u(3_241_921),
		Inodes:         u(3_276_800),
		InodesUsed:     u(28_412),
	}
	return &statsapi.Summary{
		Node: statsapi.NodeStats{
			NodeName:  node,
			StartTime: start,
			SystemContainers: []statsapi.ContainerStats{{
				Name:      statsapi.SystemContainerKubelet,
				StartTime: start,
				CPU:       &statsapi.CPUStats{Time: ts, UsageNanoCores: u(21_334_117), UsageCoreNanoSeconds: u(4_119_883_221_094)},
				Memory:    &statsapi.MemoryStats{Time: ts, UsageBytes: u(98_762_752), WorkingSetBytes: u(61_136_896), RSSBytes: u(52_449_280)},
			}},
			CPU:    &statsapi.CPUStats{Time: ts, UsageNanoCores: u(187_420_311), UsageCoreNanoSeconds: u(51_806_115_902_551)},
			Memory: &statsapi.MemoryStats{Time: ts, AvailableBytes: u(5_876_412_416), UsageBytes: u(3_041_927_168), WorkingSetBytes: u(2_289_659_904), RSSBytes: u(1_213_046_784), PageFaults: u(0), MajorPageFaults: u(0)},
			Network: &statsapi.NetworkStats{
				Time:           ts,
				InterfaceStats: statsapi.InterfaceStats{Name: "eth0", RxBytes: u(9_129_712_455), RxErrors: u(0), TxBytes: u(2_241_561_031), TxErrors: u(0)},
			},
			Fs: &statsapi.FsStats{
				Time:           ts,
				AvailableBytes: u(71_431_368_704),
				CapacityBytes:  u(104_091_574_272),
				UsedBytes:      u(32_643_428_352),
				InodesFree:     u(6_209_315),
				Inodes:         u(6_422_528),
				InodesUsed:     u(213_213),
			},
			Runtime: &statsapi.RuntimeStats{ImageFs: imageFs, ContainerFs: imageFs},
			Rlimit:  &statsapi.RlimitStats{Time: ts, MaxPID: i(4_194_304), NumOfRunningProcesses: i(412)},
		},
		Pods: []statsapi.PodStats{{
			PodRef:    statsapi.PodReference{Name: "coredns-7db6d8ff4d-x2x9k", Namespace: "kube-system", UID: "5d7d2b5c-8f0e-4a53-9c8e-2f6f0f1b7a11"},
			StartTime: start,
			Containers: []statsapi.ContainerStats{{
				Name:      "coredns",
				StartTime: start,
				CPU:       &statsapi.CPUStats{Time: ts, UsageNanoCores: u(2_104_991), UsageCoreNanoSeconds: u(611_845_231_004)},
				Memory:    &statsapi.MemoryStats{Time: ts, UsageBytes: u(22_016_000), WorkingSetBytes: u(18_960_384)},
				Rootfs:    &statsapi.FsStats{Time: ts, AvailableBytes: u(38_512_394_240), CapacityBytes: u(53_660_876_800), UsedBytes: u(24_576), InodesFree: u(3_241_921), Inodes: u(3_276_800), InodesUsed: u(7)},
				Logs:      &statsapi.FsStats{Time: ts, AvailableBytes: u(71_431_368_704), CapacityBytes: u(104_091_574_272), UsedBytes: u(40_960), InodesFree: u(6_209_315), Inodes: u(6_422_528), InodesUsed: u(2)},
			}},
			EphemeralStorage: &statsapi.FsStats{Time: ts, AvailableBytes: u(71_431_368_704), CapacityBytes: u(104_091_574_272), UsedBytes: u(77_824), InodesFree: u(6_209_315), Inodes: u(6_422_528), InodesUsed: u(12)},
		}},
	}
}

// newNode is the Node object a kubelet on addr registers.
func newNode(name, addr string) *corev1.Node {
	port := 10250
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		if p, err := strconv.Atoi(addr[i+1:]); err == nil {
			port = p
		}
	}
	return &corev1.Node{
		TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
		},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{
				corev1.ResourceEphemeralStorage: *resource.NewQuantity(104_091_574_272, resource.BinarySI),
			},
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
			NodeInfo:        corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", ContainerRuntimeVersion: "containerd://2.2.0", OperatingSystem: "linux", Architecture: "amd64"},
		},
	}
}
