package kubelettest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func clusterNodes() []NodeSpec {
	return []NodeSpec{
		{Name: "b-node", Labels: map[string]string{"pool": "gpu"}, ExporterPod: "imagefs-b", Doctor: map[string]string{"worst": "warn"}},
		{Name: "a-node", Labels: map[string]string{"pool": "general"}, ExporterPod: "imagefs-a"},
		{Name: "c-node", Labels: map[string]string{"pool": "gpu"}, DiskPressure: true, ServerError: "boom"},
		{Name: "d-node", Gone: true, ExporterPod: "imagefs-d", ExporterPhase: corev1.PodPending},
		{Name: "e-node", KubeletUnreachable: true},
		{Name: "f-node", NoSummary: true},
		{Name: "g-node", Body: []byte("<html>")},
	}
}

func TestClusterLists(t *testing.T) {
	s := Start(t, Options{Nodes: clusterNodes()})
	c := client(t, s, false)
	list := func(path string) (names []string, cont string) {
		t.Helper()
		code, _, body := get(t, c, s.URL+path, "")
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		var l struct {
			Kind     string
			Metadata metav1.ListMeta
			Items    []struct{ Metadata metav1.ObjectMeta }
		}
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		for _, it := range l.Items {
			names = append(names, it.Metadata.Name)
		}
		return names, l.Metadata.Continue
	}
	for _, tt := range []struct{ path, want, cont string }{
		{"/api/v1/nodes", "a-node b-node c-node d-node e-node f-node g-node", ""},
		{"/api/v1/nodes?labelSelector=pool%3Dgpu", "b-node c-node", ""},
		{"/api/v1/nodes?labelSelector=pool%20notin%20(gpu)&limit=2", "a-node d-node", "kubelettest-2"},
		{"/api/v1/nodes?labelSelector=pool%20notin%20(gpu)&limit=2&continue=kubelettest-2", "e-node f-node", "kubelettest-4"},
		{"/api/v1/nodes?labelSelector=pool%20notin%20(gpu)&limit=2&continue=kubelettest-4", "g-node", ""},
		{"/api/v1/namespaces/imagefs/pods?labelSelector=app.kubernetes.io%2Fname%3Dimagefs", "imagefs-a imagefs-b imagefs-d", ""},
		{"/api/v1/namespaces/default/pods", "", ""},
	} {
		names, cont := list(tt.path)
		if strings.Join(names, " ") != tt.want || cont != tt.cont {
			t.Errorf("%s: %q continue %q, want %q continue %q", tt.path, names, cont, tt.want, tt.cont)
		}
	}
	if code, _, body := get(t, c, s.URL+"/api/v1/nodes?labelSelector=a%20in%20(b", ""); code != 400 || !strings.Contains(string(body), "unable to parse requirement") {
		t.Errorf("bad selector: %d %s", code, body)
	}
}

func TestClusterProxies(t *testing.T) {
	s := Start(t, Options{Nodes: clusterNodes()})
	c := client(t, s, false)
	for _, tt := range []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/api/v1/nodes/a-node/proxy/stats/summary", 200, `"nodeName": "a-node"`},
		{"/api/v1/nodes/c-node/proxy/stats/summary", 500, "Internal Error: boom"},
		{"/api/v1/nodes/d-node/proxy/stats/summary", 404, `nodes \"d-node\" not found`},
		{"/api/v1/nodes/d-node", 404, `nodes \"d-node\" not found`},
		{"/api/v1/nodes/c-node", 200, `"reason": "KubeletHasDiskPressure"`},
		{"/api/v1/nodes/e-node/proxy/stats/summary", 503, "error trying to reach service"},
		{"/api/v1/nodes/f-node/proxy/stats/summary", 404, "404 page not found"},
		{"/api/v1/nodes/g-node/proxy/stats/summary", 200, "<html>"},
		{"/api/v1/nodes/zz/proxy/stats/summary", 404, `nodes \"zz\" not found`},
		{"/api/v1/namespaces/imagefs/pods/imagefs-b:9847/proxy/doctor", 200, `"worst": "warn"`},
		{"/api/v1/namespaces/imagefs/pods/http:imagefs-a:9847/proxy/stats/summary", 200, `"nodeName": "a-node"`},
		{"/api/v1/namespaces/imagefs/pods/imagefs-a/proxy/doctor", 200, `"worst": "ok"`},
		{"/api/v1/namespaces/imagefs/pods/imagefs-a:9847/proxy/metrics", 404, "404 page not found"},
		{"/api/v1/namespaces/imagefs/pods/imagefs-a:1234/proxy/doctor", 503, "dial tcp 10.244.0.3:1234: connect: connection refused"},
		{"/api/v1/namespaces/imagefs/pods/imagefs-d:9847/proxy/doctor", 503, "connection refused"},
		{"/api/v1/namespaces/imagefs/pods/imagefs-zz:9847/proxy/doctor", 404, `pods \"imagefs-zz\" not found`},
	} {
		code, _, body := get(t, c, s.URL+tt.path, "")
		if code != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s: %d %.200s, want %d with %q", tt.path, code, body, tt.wantCode, tt.wantBody)
		}
	}
	var got statsapi.Summary
	_, _, body := get(t, c, s.URL+"/api/v1/nodes/b-node/proxy/stats/summary", "")
	if err := json.Unmarshal(body, &got); err != nil || got.Node.NodeName != "b-node" || s.NodeSummary("b-node").Node.NodeName != "b-node" || s.NodeSummary("zz") != nil {
		t.Errorf("summary of b-node: %v %+v", err, got.Node)
	}
}

func TestClusterInFlightAndHang(t *testing.T) {
	var nodes []NodeSpec
	for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
		nodes = append(nodes, NodeSpec{Name: n})
	}
	nodes = append(nodes, NodeSpec{Name: "hang", Hang: true}, NodeSpec{Name: "fast", Delay: -1})
	s := Start(t, Options{Nodes: nodes, Latency: 400 * time.Millisecond, HTTP2: true})
	c := client(t, s, false)
	var wg sync.WaitGroup
	for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
		wg.Go(func() {
			if code, _, _ := get(t, c, s.URL+"/api/v1/nodes/"+n+"/proxy/stats/summary", ""); code != 200 {
				t.Errorf("%s: %d", n, code)
			}
		})
	}
	wg.Wait()
	// Five requests that each take 400 ms overlap; on a loaded 2-core
	// machine one may start late, so require real overlap, not all five.
	if got := s.MaxInFlight(); got < 3 || got > 5 {
		t.Errorf("MaxInFlight %d, want 3 to 5", got)
	}
	start := time.Now()
	get(t, c, s.URL+"/api/v1/nodes/fast/proxy/stats/summary", "")
	// Without the override it would take the 400 ms latency.
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("Delay -1 took %s", d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/nodes/hang/proxy/stats/summary", nil)
	if _, err := c.Do(req); err == nil {
		t.Error("a hanging node answered")
	}
	s.ResetStats()
	if s.MaxInFlight() > 1 || len(s.Requests()) != 0 {
		t.Errorf("after reset: %d in flight, %d requests", s.MaxInFlight(), len(s.Requests()))
	}
}

func TestNewWithoutTest(t *testing.T) {
	s, err := New(Options{Nodes: []NodeSpec{{Name: "x", Hang: true}}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, s, false)
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(s.URL + "/api/v1/nodes/x/proxy/stats/summary")
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.Close() // releases the hanging request
	select {
	case err := <-done:
		if err == nil {
			t.Error("hanging request succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a hanging request")
	}
	s.Close() // twice is fine
	if _, err := New(Options{Nodes: []NodeSpec{{Name: "x"}, {Name: "x"}}}, t.TempDir()); err == nil {
		t.Error("duplicate node: want an error")
	}
}
