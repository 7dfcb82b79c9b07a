package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/internal/kubelettest"
	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/cluster"
	"github.com/imagefs/imagefs/pkg/kubelet"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const gib = 1 << 30

// withImageFs is a node whose imageFs has capacity and the given free
// share (containerFs the same object).
func withImageFs(name string, capacity uint64, freePct float64) *statsapi.Summary {
	return kubelettest.SummaryWithImageFs(name, now, capacity, uint64(float64(capacity)*freePct/100))
}

// mixed is a cluster with one node of every kind.
func mixed() []kubelettest.NodeSpec {
	split := kubelettest.NewSummary("node-split", now)
	cf := *split.Node.Runtime.ImageFs
	cf.CapacityBytes, cf.AvailableBytes = ptr(uint64(200*gib)), ptr(uint64(150*gib))
	split.Node.Runtime.ContainerFs = &cf
	noNodeCap := kubelettest.NewSummary("node-nodefs-missing", now)
	noNodeCap.Node.Fs.CapacityBytes = nil
	return []kubelettest.NodeSpec{
		{Name: "node-healthy", Labels: map[string]string{"pool": "general"}},
		{Name: "node-near-gc", Summary: withImageFs("node-near-gc", 100*gib, 18.5), Labels: map[string]string{"pool": "general"}},
		{Name: "node-gc-runs", Summary: withImageFs("node-gc-runs", 100*gib, 15.5), Labels: map[string]string{"pool": "gpu"}},
		{Name: "node-pressure", Summary: withImageFs("node-pressure", 100*gib, 9), Labels: map[string]string{"pool": "gpu"}},
		{Name: "node-missing-capacity", Summary: kubelettest.SummaryWithImageFs("node-missing-capacity", now, 0, 0), Labels: map[string]string{"pool": "gpu"}},
		{Name: "node-nodefs-missing", Summary: noNodeCap},
		{Name: "node-split", Summary: split},
		{Name: "node-condition", DiskPressure: true},
		{Name: "node-500", ServerError: "failed to get imageFs stats: get filesystem info: Failed to get the info of the filesystem with mountpoint: failed to get device for dir \"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs\": could not find device in cached partitions map"},
		{Name: "node-timeout", Hang: true},
		{Name: "node-gone", Gone: true},
		{Name: "node-kubelet-down", KubeletUnreachable: true},
		{Name: "node-no-summary", NoSummary: true},
	}
}

func ptr[T any](v T) *T { return &v }

func start(t *testing.T, opts kubelettest.Options) (*kubelettest.Server, *rest.Config) {
	t.Helper()
	s := kubelettest.Start(t, opts)
	cfg, err := kubelet.RESTConfig(kubelet.KubeconfigOptions{Kubeconfig: s.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

func collect(t *testing.T, cfg *rest.Config, o cluster.Options) *cluster.Report {
	t.Helper()
	r, err := cluster.Collect(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCollectMixed(t *testing.T) {
	s, cfg := start(t, kubelettest.Options{Nodes: mixed(), HTTP2: true})
	r := collect(t, cfg, cluster.Options{Timeout: 500 * time.Millisecond})

	want := map[string]struct {
		status cluster.Status
		reason string // in Reasons[0]
		kind   error  // the FetchError's sentinel
	}{
		"node-healthy":          {cluster.StatusOK, "", nil},
		"node-near-gc":          {cluster.StatusNear, "imagefs.available<15%: 3.5 points of headroom", nil},
		"node-gc-runs":          {cluster.StatusNear, "image GC runs: usage 85% >= high 85%", nil},
		"node-pressure":         {cluster.StatusPressure, "imagefs.available<15% met: 9.0 GiB available, threshold 15.0 GiB (DiskPressure)", nil},
		"node-missing-capacity": {cluster.StatusMissingCapacity, `imageFs.capacityBytes missing: image GC fails "invalid capacity 0 on image filesystem"`, nil},
		"node-nodefs-missing":   {cluster.StatusMissingCapacity, "node.fs.capacityBytes missing", nil},
		"node-split":            {cluster.StatusOK, "", nil},
		"node-condition":        {cluster.StatusPressure, "Node condition DiskPressure=True", nil},
		"node-500":              {cluster.StatusUnreachable, "server error: HTTP 500: Internal Error: failed to get imageFs stats", kubelet.ErrServer},
		"node-timeout":          {cluster.StatusUnreachable, "timed out: no answer within 500ms", kubelet.ErrTimeout},
		"node-gone":             {cluster.StatusUnreachable, `node not found: HTTP 404: nodes "node-gone" not found`, kubelet.ErrNodeNotFound},
		"node-kubelet-down":     {cluster.StatusUnreachable, "server error: HTTP 503: error trying to reach service", kubelet.ErrServer},
		"node-no-summary":       {cluster.StatusUnreachable, "unexpected response: HTTP 404: 404 page not found", kubelet.ErrBadResponse},
	}
	if len(r.Nodes) != len(want) {
		t.Fatalf("%d nodes, want %d", len(r.Nodes), len(want))
	}
	for _, n := range r.Nodes {
		w, ok := want[n.Name]
		if !ok {
			t.Errorf("unexpected node %s", n.Name)
			continue
		}
		if n.Status != w.status {
			t.Errorf("%s: status %s, want %s (reasons %q)", n.Name, n.Status, w.status, n.Reasons)
		}
		if w.reason == "" && len(n.Reasons) > 0 {
			t.Errorf("%s: reasons %q, want none", n.Name, n.Reasons)
		}
		if w.reason != "" && (len(n.Reasons) == 0 || !strings.Contains(n.Reasons[0], w.reason)) {
			t.Errorf("%s: reasons %q, want the first to contain %q", n.Name, n.Reasons, w.reason)
		}
		if w.kind != nil && (n.Error == nil || !errors.Is(n.Error.Err, w.kind)) {
			t.Errorf("%s: error %+v, want %v", n.Name, n.Error, w.kind)
		}
	}
	// Sorted by imagefs use% descending, unknown last by name.
	var order []string
	for _, n := range r.Nodes {
		order = append(order, n.Name)
	}
	wantOrder := "node-pressure node-gc-runs node-near-gc node-condition node-healthy node-nodefs-missing node-split node-500 node-gone node-kubelet-down node-missing-capacity node-no-summary node-timeout"
	if got := strings.Join(order, " "); got != wantOrder {
		t.Errorf("order\n got %s\nwant %s", got, wantOrder)
	}
	if want := (cluster.Totals{Nodes: 13, OK: 2, NearThreshold: 2, MissingCapacity: 2, Pressure: 2, Unreachable: 5}); r.Totals != want {
		t.Errorf("totals %+v, want %+v", r.Totals, want)
	}
	if r.Totals.AllOK() {
		t.Error("AllOK with failing nodes")
	}

	split := find(r, "node-split")
	if split.ContainerFs == nil || *split.ContainerFs.UsePercent != 25 {
		t.Errorf("split containerFs %+v, want 25%% used", split.ContainerFs)
	}
	if !split.Eviction.SplitContainerFs || len(split.Eviction.Signals) != 6 {
		t.Errorf("split: %d signals, want 6 with containerfs copies", len(split.Eviction.Signals))
	}
	if h := find(r, "node-healthy"); h.ContainerFs != nil || len(h.Missing) != 0 || *h.ImageFs.UsePercent != 29 || *h.ImageGC.PointsToHigh != 56 {
		t.Errorf("healthy: containerFs %v, missing %v, use %d, to GC %d", h.ContainerFs, h.Missing, *h.ImageFs.UsePercent, *h.ImageGC.PointsToHigh)
	}
	mc := find(r, "node-missing-capacity")
	if mc.ImageGC.Error != "invalid capacity 0 on image filesystem" || strings.Join(mc.Missing, ",") != "node.runtime.imageFs.capacityBytes,node.runtime.imageFs.availableBytes,node.runtime.imageFs.inodes,node.runtime.imageFs.inodesFree" {
		t.Errorf("missing capacity: gc %+v, missing %v", mc.ImageGC, mc.Missing)
	}
	if gc := find(r, "node-gc-runs").ImageGC; !gc.Runs || *gc.UsagePercent != 85 {
		t.Errorf("gc-runs: %+v", gc)
	}
	if c := find(r, "node-condition"); c.DiskPressureCondition != "True" {
		t.Errorf("condition %q", c.DiskPressureCondition)
	}

	var b bytes.Buffer
	if err := cluster.Render(&b, r, cluster.FormatTable); err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, b.Bytes())
	t.Run("wide", func(t *testing.T) {
		var b bytes.Buffer
		if err := cluster.Render(&b, r, cluster.FormatWide); err != nil {
			t.Fatal(err)
		}
		testutil.Golden(t, []byte(strings.ReplaceAll(b.String(), s.URL, "https://API-SERVER")))
	})
	t.Run("json", func(t *testing.T) {
		var b bytes.Buffer
		if err := cluster.Render(&b, r, cluster.FormatJSON); err != nil {
			t.Fatal(err)
		}
		var back cluster.Report
		if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Nodes) != 13 || back.Totals != r.Totals {
			t.Fatalf("JSON does not round-trip: %v", err)
		}
		testutil.Golden(t, []byte(strings.ReplaceAll(b.String(), s.URL, "https://API-SERVER")))
	})
}

func find(r *cluster.Report, name string) cluster.Node {
	for _, n := range r.Nodes {
		if n.Name == name {
			return n
		}
	}
	return cluster.Node{}
}

func TestSelector(t *testing.T) {
	_, cfg := start(t, kubelettest.Options{Nodes: mixed()})
	for _, tt := range []struct {
		selector string
		want     string
	}{
		{"pool=gpu", "node-pressure node-gc-runs node-missing-capacity"},
		{"pool in (general),kubernetes.io/os=linux", "node-near-gc node-healthy"},
		{"pool=none", ""},
		{"kubernetes.io/hostname=node-healthy", "node-healthy"},
	} {
		t.Run(tt.selector, func(t *testing.T) {
			r := collect(t, cfg, cluster.Options{Selector: tt.selector})
			var got []string
			for _, n := range r.Nodes {
				got = append(got, n.Name)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("nodes %q, want %q", got, tt.want)
			}
		})
	}
	_, err := cluster.Collect(context.Background(), cfg, cluster.Options{Selector: "a in (b"})
	if !errors.Is(err, cluster.ErrBadOptions) {
		t.Errorf("bad selector: %v, want ErrBadOptions", err)
	}
}

func TestNamedNodes(t *testing.T) {
	s, cfg := start(t, kubelettest.Options{Nodes: mixed()})
	r := collect(t, cfg, cluster.Options{Nodes: []string{"node-healthy", "ghost"}})
	if len(r.Nodes) != 2 || find(r, "node-healthy").Status != cluster.StatusOK || !errors.Is(find(r, "ghost").Error.Err, kubelet.ErrNodeNotFound) {
		t.Errorf("named nodes: %+v", r.Nodes)
	}
	for _, p := range s.Requests() {
		if p == "/api/v1/nodes" {
			t.Error("named nodes must not list")
		}
	}
}

func TestNotReadyFirst(t *testing.T) {
	s, cfg := start(t, kubelettest.Options{Nodes: []kubelettest.NodeSpec{
		{Name: "a"}, {Name: "b", NotReady: true, ServerError: "x"}, {Name: "c"}, {Name: "d", NotReady: true},
	}})
	r := collect(t, cfg, cluster.Options{Concurrency: 1})
	var proxied []string
	for _, p := range s.Requests() {
		if strings.HasSuffix(p, "/proxy/stats/summary") {
			proxied = append(proxied, strings.Split(p, "/")[4])
		}
	}
	if got := strings.Join(proxied, " "); got != "b d a c" {
		t.Errorf("fetched %s, want the NotReady nodes first: b d a c", got)
	}
	if n := find(r, "d"); n.Ready != "Unknown" || n.Status != cluster.StatusOK {
		t.Errorf("d: ready %q status %s", n.Ready, n.Status)
	}
}

func TestConcurrencyBound(t *testing.T) {
	var nodes []kubelettest.NodeSpec
	for i := range 48 {
		nodes = append(nodes, kubelettest.NodeSpec{Name: fmt.Sprintf("node-%02d", i)})
	}
	s, cfg := start(t, kubelettest.Options{Nodes: nodes, Latency: 40 * time.Millisecond, HTTP2: true})
	for _, c := range []int{1, 4, 16} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			s.ResetStats()
			var (
				mu    sync.Mutex
				calls []int
			)
			r := collect(t, cfg, cluster.Options{Concurrency: c, Progress: func(done, total int) {
				mu.Lock()
				calls = append(calls, done)
				mu.Unlock()
				if total != 48 {
					t.Errorf("progress total %d", total)
				}
			}})
			if r.Totals.OK != 48 {
				t.Fatalf("totals %+v", r.Totals)
			}
			// The bound must hold; reaching it exactly depends on scheduling
			// on a loaded machine, so require at least half of it.
			if got := s.MaxInFlight(); got > c || got < (c+1)/2 {
				t.Errorf("%d in flight at most on the server, want between %d and %d", got, (c+1)/2, c)
			}
			if len(calls) != 49 || calls[0] != 0 || calls[48] != 48 {
				t.Errorf("progress calls %v", calls)
			}
		})
	}
}

func TestPagedList(t *testing.T) {
	var nodes []kubelettest.NodeSpec
	for i := range 1001 {
		nodes = append(nodes, kubelettest.NodeSpec{Name: fmt.Sprintf("node-%04d", i)})
	}
	s, cfg := start(t, kubelettest.Options{Nodes: nodes, HTTP2: true})
	r := collect(t, cfg, cluster.Options{Concurrency: 32})
	if r.Totals.Nodes != 1001 || r.Totals.OK != 1001 {
		t.Fatalf("totals %+v", r.Totals)
	}
	lists := 0
	for _, p := range s.Requests() {
		if p == "/api/v1/nodes" {
			lists++
		}
	}
	if lists != 3 {
		t.Errorf("%d list requests, want 3 chunks of 500", lists)
	}
	if s.Conns() > 2 {
		t.Errorf("%d connections for 1001 nodes over HTTP/2, want them shared", s.Conns())
	}
}

func TestExporter(t *testing.T) {
	warn := &doctor.Report{NodeName: "node-a", Worst: doctor.Warn, Findings: []doctor.Finding{
		{Check: "capacity", Severity: doctor.OK, Summary: "capacity reported"},
		{Check: "split", Severity: doctor.Warn, Summary: "the runtime's snapshots are on another filesystem than the one the kubelet measures"},
	}}
	nodes := []kubelettest.NodeSpec{
		{Name: "node-a", ExporterPod: "imagefs-aaaaa", Doctor: warn, Summary: withImageFs("node-a", 100*gib, 50)},
		{Name: "node-b", ExporterPod: "imagefs-bbbbb"},
		{Name: "node-c"}, // no exporter pod yet
		{Name: "node-d", ExporterPod: "imagefs-ddddd", ExporterDown: true},
		{Name: "node-e", ExporterPod: "imagefs-eeeee", ExporterPhase: corev1.PodPending},
	}
	_, cfg := start(t, kubelettest.Options{Nodes: nodes})
	r := collect(t, cfg, cluster.Options{Source: cluster.SourceExporter})
	if r.Totals.OK != 5 {
		t.Errorf("totals %+v (%+v)", r.Totals, r.Nodes)
	}
	a := find(r, "node-a")
	if a.Source != cluster.SourceExporter || a.Doctor == nil || a.Doctor.Worst != doctor.Warn || len(a.Reasons) != 1 || !strings.HasPrefix(a.Reasons[0], "doctor warn split:") {
		t.Errorf("node-a: source %s doctor %+v reasons %q", a.Source, a.Doctor, a.Reasons)
	}
	if b := find(r, "node-b"); b.Source != cluster.SourceExporter || b.Doctor == nil || b.Doctor.Worst != doctor.OK {
		t.Errorf("node-b: %+v", b)
	}
	for name, why := range map[string]string{
		"node-c": "no running exporter pod, kubelet Summary used",
		"node-d": "exporter pod imagefs-ddddd failed, kubelet Summary used: server error: HTTP 503: error trying to reach service: dial tcp 10.244.0.5:9847",
		"node-e": "no running exporter pod, kubelet Summary used",
	} {
		n := find(r, name)
		if n.Source != cluster.SourceSummary || len(n.Reasons) != 1 || !strings.Contains(n.Reasons[0], why) {
			t.Errorf("%s: source %s reasons %q, want %q", name, n.Source, n.Reasons, why)
		}
	}
	var b bytes.Buffer
	if err := cluster.Render(&b, r, cluster.FormatTable); err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, b.Bytes())
}

func TestThresholdSettings(t *testing.T) {
	_, cfg := start(t, kubelettest.Options{Nodes: []kubelettest.NodeSpec{{Name: "n", Summary: withImageFs("n", 100*gib, 25)}}})
	for _, tt := range []struct {
		name   string
		args   []string
		status cluster.Status
	}{
		{"defaults", nil, cluster.StatusOK},
		{"lower GC high", []string{"--image-gc-high-threshold=78", "--image-gc-low-threshold=70"}, cluster.StatusNear},
		{"stricter eviction", []string{"--eviction-hard=imagefs.available<26%"}, cluster.StatusPressure},
		{"near margin", []string{"--eviction-hard=imagefs.available<21%"}, cluster.StatusNear},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := kubeletconfig.FromCmdline(tt.args, "test")
			if err != nil {
				t.Fatal(err)
			}
			r := collect(t, cfg, cluster.Options{Settings: st})
			if got := r.Nodes[0].Status; got != tt.status {
				t.Errorf("status %s, want %s (%q)", got, tt.status, r.Nodes[0].Reasons)
			}
		})
	}
}

func TestClusterUnreachable(t *testing.T) {
	s, cfg := start(t, kubelettest.Options{Nodes: mixed(), RequireToken: true})
	bad := rest.CopyConfig(cfg)
	bad.BearerToken = "expired"
	_, err := cluster.Collect(context.Background(), bad, cluster.Options{})
	if !errors.Is(err, cluster.ErrClusterUnreachable) || !errors.Is(err, kubelet.ErrUnauthorized) || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("wrong token: %v", err)
	}
	s.Close()
	_, err = cluster.Collect(context.Background(), cfg, cluster.Options{ListTimeout: 2 * time.Second})
	if !errors.Is(err, cluster.ErrClusterUnreachable) || !errors.Is(err, kubelet.ErrUnreachable) {
		t.Errorf("server down: %v", err)
	}
}

func TestCancel(t *testing.T) {
	var nodes []kubelettest.NodeSpec
	for i := range 20 {
		nodes = append(nodes, kubelettest.NodeSpec{Name: fmt.Sprintf("node-%02d", i), Hang: true})
	}
	_, cfg := start(t, kubelettest.Options{Nodes: nodes})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	r, err := cluster.Collect(ctx, cfg, cluster.Options{Concurrency: 2, Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) || r == nil || r.Totals.Unreachable != 20 {
		t.Errorf("cancelled: %v, %+v", err, r)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("took %s after cancel", d)
	}
}
