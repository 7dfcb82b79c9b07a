package exporter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/imagefs/imagefs/pkg/exporter"
	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/output"
	"github.com/imagefs/imagefs/pkg/stats"
)

// server is an in-process Serve on a loopback port.
type server struct {
	url    string
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, e *exporter.Exporter, o exporter.ServeOptions) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- exporter.Serve(ctx, ln, e, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return s
}

func get(t *testing.T, url string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), time.Since(start)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sample returns the value of the series whose line starts with prefix.
func sample(text, prefix string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimPrefix(line, prefix+" "), true
		}
	}
	return "", false
}

// A statfs that never returns (a dead NFS server) blocks one collection
// for cadvisor's 2 s; scrapes keep answering at once from the last good
// collection meanwhile, the mount is then marked stuck and skipped without
// a second statfs, and it recovers once the call returns.
func TestScrapesAnswerWhileStatfsHangs(t *testing.T) {
	c := loadCapture(t, captures[0])
	mp := statfsPath(t, c)
	blocking := newBlockingSystem(&c.System)
	blocking.statfsOnly = true
	t.Cleanup(blocking.releaseAll)
	guard := exporter.NewStuckGuard(blocking, 0, nil)
	e := exporter.New(exporter.Options{
		Source:   liveSource(t, c, guard),
		Interval: 100 * time.Millisecond,
		Settings: kubeletconfig.Defaults(),
		Guard:    guard,
	})
	s := startServer(t, e, exporter.ServeOptions{})
	capacityLine := `imagefs_filesystem_capacity_bytes{device="/dev/loop1",mountpoint="` + mp + `",role="image"}`

	waitFor(t, "a good collection", func() bool { ok, _ := e.Ready(); return ok })
	_, body, _ := get(t, s.url+"/metrics")
	want, ok := sample(body, capacityLine)
	if !ok {
		t.Fatalf("no %s in\n%s", capacityLine, body)
	}

	// The mount hangs: the collection in flight blocks in statfs.
	blocking.block(mp)
	callsBefore, _ := blocking.count(mp)
	waitFor(t, "a collection blocked in statfs", func() bool { _, hanging := blocking.count(mp); return hanging == 1 })
	var worst time.Duration
	scrapes := 0
	for start := time.Now(); time.Since(start) < 1500*time.Millisecond; scrapes++ {
		if _, hanging := blocking.count(mp); hanging != 1 {
			t.Fatal("the statfs returned early")
		}
		code, body, d := get(t, s.url+"/metrics")
		worst = max(worst, d)
		if code != http.StatusOK {
			t.Fatalf("scrape during the hang: HTTP %d", code)
		}
		if got, _ := sample(body, capacityLine); got != want {
			t.Fatalf("scrape during the hang: capacity %q, want the last good %q", got, want)
		}
		if got, _ := sample(body, "imagefs_collection_success"); got != "1" {
			t.Fatalf("collection_success %q during the hang, want the last attempt's 1", got)
		}
		if code, _, _ := get(t, s.url+"/stats/summary"); code != http.StatusOK {
			t.Fatalf("/stats/summary during the hang: HTTP %d", code)
		}
	}
	t.Logf("%d scrapes while a collection hung in statfs, slowest %s", scrapes, worst)
	if worst > 500*time.Millisecond {
		t.Errorf("a scrape took %s while a collection hung", worst)
	}

	// After cadvisor's 2 s the collection completes without the mount,
	// which is now stuck: later collections skip it at once.
	stuckLine := `imagefs_mount_stuck{mountpoint="` + mp + `"}`
	waitFor(t, "the mount marked stuck", func() bool {
		_, body, _ := get(t, s.url+"/metrics")
		v, _ := sample(body, stuckLine)
		_, hasCapacity := sample(body, capacityLine)
		return v == "1" && !hasCapacity
	})
	collections := func() string {
		_, body, _ := get(t, s.url+"/metrics")
		v, _ := sample(body, "imagefs_collections_total")
		return v
	}
	before := collections()
	waitFor(t, "more collections", func() bool { return collections() != before })
	if calls, hanging := blocking.count(mp); calls != callsBefore+1 || hanging != 1 {
		t.Errorf("%d statfs calls reached the mount since it hung (%d hanging), want 1: the stuck mount must not be asked again", calls-callsBefore, hanging)
	}
	_, body, _ = get(t, s.url+"/metrics")
	if v, _ := sample(body, `imagefs_filesystem_capacity_missing{role="image"}`); v != "1" {
		t.Errorf("capacity_missing{image} = %q while the mount is stuck, want 1", v)
	}
	if v, _ := sample(body, `imagefs_filesystem_stats_failure{role="node"}`); v != "1" {
		t.Errorf("stats_failure{node} = %q while the mount is stuck, want 1", v)
	}
	if code, _, _ := get(t, s.url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz HTTP %d: collections still succeed (the kubelet's view without the mount)", code)
	}

	// The call returns: the mount is collected again.
	blocking.release(mp)
	waitFor(t, "the mount recovered", func() bool {
		_, body, _ := get(t, s.url+"/metrics")
		v, _ := sample(body, stuckLine)
		got, _ := sample(body, capacityLine)
		return v == "0" && got == want
	})
}

// Every endpoint answers from the snapshot; before one exists the data
// endpoints say why with 503.
func TestEndpoints(t *testing.T) {
	c := loadCapture(t, captures[0])
	gate := make(chan struct{})
	var gateOnce sync.Once
	src := liveSource(t, c, &c.System)
	e := exporter.New(exporter.Options{
		Interval: time.Hour,
		Settings: kubeletconfig.Defaults(),
		Source: func(ctx context.Context) (*stats.Result, *fsinfo.MountTable, error) {
			<-gate
			return src(ctx)
		},
	})
	s := startServer(t, e, exporter.ServeOptions{})
	t.Cleanup(func() { gateOnce.Do(func() { close(gate) }) })

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/stats/summary": 503, "/explain": 503, "/doctor": 503, "/metrics": 200, "/": 200, "/nope": 404} {
		if code, body, _ := get(t, s.url+path); code != want {
			t.Errorf("before the first collection: %s HTTP %d, want %d\n%s", path, code, want, body)
		}
	}
	if _, body, _ := get(t, s.url+"/readyz"); !strings.Contains(body, "no collection yet") {
		t.Errorf("/readyz body %q", body)
	}
	resp, err := http.Post(s.url+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: HTTP %d, want 405", resp.StatusCode)
	}

	gateOnce.Do(func() { close(gate) })
	waitFor(t, "a good collection", func() bool { ok, _ := e.Ready(); return ok })
	code, body, _ := get(t, s.url+"/stats/summary")
	if code != 200 {
		t.Fatalf("/stats/summary HTTP %d", code)
	}
	var want bytes.Buffer
	if err := output.Stats(&want, e.Snapshot().Result, output.StatsOptions{Format: output.FormatJSON}); err != nil {
		t.Fatal(err)
	}
	if body != want.String() {
		t.Errorf("/stats/summary is not imagefs stats -o json:\n%s\nwant:\n%s", body, want.String())
	}
	for _, path := range []string{"/explain", "/doctor"} {
		code, body, _ := get(t, s.url+path)
		var v map[string]any
		if code != 200 || json.Unmarshal([]byte(body), &v) != nil {
			t.Errorf("%s: HTTP %d, not JSON:\n%s", path, code, body)
		}
	}
	if code, body, _ := get(t, s.url+"/readyz"); code != 200 || !strings.HasPrefix(body, "ok: ") {
		t.Errorf("/readyz after a collection: HTTP %d %q", code, body)
	}
	_, body, _ = get(t, s.url+"/metrics")
	for _, name := range []string{"imagefs_runtime_up 1", "process_resident_memory_bytes", "go_goroutines"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	promtoolCheckMetrics(t, []byte(body))
}

// blockingGatherer makes a scrape last until released.
type blockingGatherer struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingGatherer) Gather() ([]*dto.MetricFamily, error) {
	close(b.entered)
	<-b.release
	return prometheus.NewRegistry().Gather()
}

// SIGTERM (ctx done) while a scrape is in flight: the scrape completes,
// new connections are refused, collecting stops, Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	var mu sync.Mutex
	n := 0
	e := exporter.New(exporter.Options{
		Interval: 10 * time.Millisecond,
		Source: func(ctx context.Context) (*stats.Result, *fsinfo.MountTable, error) {
			mu.Lock()
			n++
			mu.Unlock()
			return nil, nil, errors.New("no runtime here")
		},
	})
	g := &blockingGatherer{entered: make(chan struct{}), release: make(chan struct{})}
	s := startServer(t, e, exporter.ServeOptions{Gatherer: g, ShutdownTimeout: 5 * time.Second})

	scraped := make(chan int, 1)
	go func() {
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			scraped <- -1
			return
		}
		resp.Body.Close()
		scraped <- resp.StatusCode
	}()
	<-g.entered
	s.cancel()
	// Shutdown closes the listener at once.
	waitFor(t, "the listener closed", func() bool {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), 100*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	select {
	case err := <-s.done:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	if code := <-scraped; code != http.StatusOK {
		t.Errorf("the in-flight scrape got %d, want 200", code)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.done <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	mu.Lock()
	stopped := n
	mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if n != stopped {
		t.Errorf("collections went on after Serve returned: %d -> %d", stopped, n)
	}
}

// A request that outlives the shutdown deadline is cut off and Serve says so.
func TestShutdownDeadline(t *testing.T) {
	e := exporter.New(exporter.Options{Interval: time.Hour, Source: func(context.Context) (*stats.Result, *fsinfo.MountTable, error) {
		return nil, nil, errors.New("no runtime here")
	}})
	g := &blockingGatherer{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(g.release)
	s := startServer(t, e, exporter.ServeOptions{Gatherer: g, ShutdownTimeout: 200 * time.Millisecond})
	go func() {
		if resp, err := http.Get(s.url + "/metrics"); err == nil {
			resp.Body.Close()
		}
	}()
	<-g.entered
	start := time.Now()
	s.cancel()
	err := <-s.done
	s.done <- err
	if !errors.Is(err, exporter.ErrShutdownTimeout) {
		t.Errorf("Serve: %v, want ErrShutdownTimeout", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Errorf("shutdown took %s with a 200ms deadline", d)
	}
}
