// Command cluster measures `kubectl imagefs` (pkg/cluster) at scale: a
// kubelettest API server in a child process serves --nodes simulated
// nodes, each proxied Summary held --latency, some failing with the
// kubelet's 500 and some never answering; this process runs the cluster
// view against it at the default concurrency and reports wall time and
// its own peak memory (VmHWM, Go heap), apart from the server's.
//
//	go run ./bench/cluster --nodes 1000 --latency 50ms
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/rest"

	"github.com/imagefs/imagefs/internal/kubelettest"
	"github.com/imagefs/imagefs/pkg/cluster"
	"github.com/imagefs/imagefs/pkg/kubelet"
)

type config struct {
	nodes       int
	latency     time.Duration
	errors      float64
	timeouts    float64
	missing     float64
	notReady    float64
	source      string
	target      time.Duration
	concurrency int
	timeout     time.Duration
	http2       bool
	runs        int
	inProcess   bool
	seed        uint64
}

func main() {
	var c config
	serve := flag.Bool("serve", false, "internal: be the API server (child process)")
	flag.IntVar(&c.nodes, "nodes", 1000, "simulated nodes")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "latency of every proxied Summary")
	flag.Float64Var(&c.errors, "errors", 0.02, "share of nodes whose kubelet answers 500")
	flag.Float64Var(&c.timeouts, "timeouts", 0.01, "share of nodes that never answer (each costs --request-timeout)")
	flag.Float64Var(&c.notReady, "not-ready", 0, "share of nodes that never answer and whose Node is NotReady (fetched first)")
	flag.Float64Var(&c.missing, "missing", 0.01, "share of nodes whose imageFs has no capacityBytes")
	flag.StringVar(&c.source, "source", cluster.SourceSummary, "summary, or exporter (an exporter pod on every node: two pod-proxy requests per node)")
	flag.IntVar(&c.concurrency, "concurrency", cluster.DefaultConcurrency, "fetches in flight")
	flag.DurationVar(&c.timeout, "request-timeout", cluster.DefaultTimeout, "per-node timeout")
	flag.BoolVar(&c.http2, "http2", true, "serve HTTP/2 as an API server does")
	flag.IntVar(&c.runs, "runs", 3, "measured runs (after one warm-up)")
	flag.BoolVar(&c.inProcess, "in-process", false, "run the server in this process (peak RSS then includes it)")
	flag.DurationVar(&c.target, "target", 10*time.Second, "fail when the worst run is slower (0: never)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed for which nodes fail and how full they are")
	flag.Parse()
	var err error
	if *serve {
		err = child(c)
	} else {
		err = parent(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/cluster:", err)
		os.Exit(1)
	}
}

// Nodes builds the simulated cluster: image filesystems between 10% and
// 90% full, a share of kubelets failing the Summary, a share hanging.
func Nodes(c config) []kubelettest.NodeSpec {
	r := rand.New(rand.NewPCG(c.seed, 2))
	now := time.Now()
	out := make([]kubelettest.NodeSpec, c.nodes)
	for i := range out {
		name := fmt.Sprintf("node-%05d", i)
		const capacity = 200 << 30
		free := 0.10 + 0.80*r.Float64()
		n := kubelettest.NodeSpec{Name: name, Labels: map[string]string{"pool": []string{"general", "gpu", "batch"}[i%3]},
			Summary: kubelettest.SummaryWithImageFs(name, now, capacity, uint64(capacity*free))}
		switch x := r.Float64(); {
		case x < c.errors:
			n.ServerError = "failed to get imageFs stats: imageFs information is unavailable"
		case x < c.errors+c.timeouts:
			n.Hang = true
		case x < c.errors+c.timeouts+c.missing:
			n.Summary = kubelettest.SummaryWithImageFs(name, now, 0, 0)
		case x < c.errors+c.timeouts+c.missing+c.notReady:
			n.Hang, n.NotReady = true, true
		}
		if c.source == cluster.SourceExporter {
			n.ExporterPod = fmt.Sprintf("imagefs-%05d", i)
		}
		out[i] = n
	}
	return out
}

func serverOptions(c config) kubelettest.Options {
	return kubelettest.Options{Nodes: Nodes(c), Latency: c.latency, HTTP2: c.http2}
}

// serverStats is what the child reports.
type serverStats struct {
	MaxInFlight int   `json:"maxInFlight"`
	Conns       int   `json:"conns"`
	Requests    int   `json:"requests"`
	VmHWMKiB    int64 `json:"vmHWMKiB"`
}

func statsOf(s *kubelettest.Server) serverStats {
	return serverStats{MaxInFlight: s.MaxInFlight(), Conns: s.Conns(), Requests: len(s.Requests()), VmHWMKiB: vmHWM()}
}

// child serves until stdin closes: it prints the kubeconfig path, then
// answers "stats" and "reset" lines.
func child(c config) error {
	dir, err := os.MkdirTemp("", "bench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := kubelettest.New(serverOptions(c), dir)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println(s.Kubeconfig)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "stats":
			b, _ := json.Marshal(statsOf(s))
			fmt.Println(string(b))
		case "reset":
			s.ResetStats()
			fmt.Println("ok")
		}
	}
	return in.Err()
}

// server is the API server as the parent sees it.
type server struct {
	kubeconfig string
	stats      func() (serverStats, error)
	reset      func() error
	close      func()
}

func startChild(c config) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"--serve", "--nodes", strconv.Itoa(c.nodes), "--latency", c.latency.String(),
		"--errors", fmt.Sprint(c.errors), "--timeouts", fmt.Sprint(c.timeouts), "--missing", fmt.Sprint(c.missing), "--not-ready", fmt.Sprint(c.notReady), "--source", c.source, "--http2=" + strconv.FormatBool(c.http2), "--seed", fmt.Sprint(c.seed)}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	out := bufio.NewScanner(stdout)
	line := func() (string, error) {
		if !out.Scan() {
			if err := out.Err(); err != nil {
				return "", err
			}
			return "", io.ErrUnexpectedEOF
		}
		return out.Text(), nil
	}
	kc, err := line()
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("server process: %w", err)
	}
	ask := func(q string) (string, error) {
		if _, err := fmt.Fprintln(stdin, q); err != nil {
			return "", err
		}
		return line()
	}
	return &server{
		kubeconfig: kc,
		stats: func() (serverStats, error) {
			var st serverStats
			l, err := ask("stats")
			if err == nil {
				err = json.Unmarshal([]byte(l), &st)
			}
			return st, err
		},
		reset: func() error { _, err := ask("reset"); return err },
		close: func() { stdin.Close(); cmd.Wait() },
	}, nil
}

func startInProcess(c config) (*server, error) {
	dir, err := os.MkdirTemp("", "bench-cluster-")
	if err != nil {
		return nil, err
	}
	s, err := kubelettest.New(serverOptions(c), dir)
	if err != nil {
		return nil, err
	}
	return &server{
		kubeconfig: s.Kubeconfig,
		stats:      func() (serverStats, error) { return statsOf(s), nil },
		reset:      func() error { s.ResetStats(); return nil },
		close:      func() { s.Close(); os.RemoveAll(dir) },
	}, nil
}

// result is one measured run.
type result struct {
	wall      time.Duration
	report    *cluster.Report
	server    serverStats
	peakHeap  uint64
	allocated uint64
	gcs       uint32
}

func parent(c config) error {
	start := startChild
	if c.inProcess {
		start = startInProcess
	}
	t0 := time.Now()
	srv, err := start(c)
	if err != nil {
		return err
	}
	defer srv.close()
	setup := time.Since(t0)
	cfg, err := kubelet.RESTConfig(kubelet.KubeconfigOptions{Kubeconfig: srv.kubeconfig})
	if err != nil {
		return err
	}
	opts := cluster.Options{Concurrency: c.concurrency, Timeout: c.timeout, Source: c.source}

	fmt.Printf("bench/cluster: %d nodes, latency %s, %.1f%% kubelet 500s, %.1f%% hanging (Ready), %.1f%% hanging (NotReady), %.1f%% without imageFs capacity, source %s, concurrency %d, request timeout %s, HTTP/2 %v, server %s\n",
		c.nodes, c.latency, c.errors*100, c.timeouts*100, c.notReady*100, c.missing*100, c.source, c.concurrency, c.timeout, c.http2, map[bool]string{true: "in process", false: "in a child process"}[c.inProcess])
	fmt.Printf("machine: %s/%s, %d CPUs (GOMAXPROCS %d), %s, %s; server ready in %s\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), cpuModel(), setup.Round(time.Millisecond))
	fmt.Printf("ideal: %s (every node's latency and every hanging node's timeout, spread over the workers)\n\n", ideal(c).Round(10*time.Millisecond))

	if _, err := measure(cfg, opts, srv); err != nil { // warm-up: TLS, connection, code paths
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\twall\tnodes/s\tok\tnear\tmissing\tpressure\tunreachable\tmax in flight (server)\tconnections\tpeak heap\tallocated\tGCs\t")
	var walls []time.Duration
	for i := range c.runs {
		r, err := measure(cfg, opts, srv)
		if err != nil {
			return err
		}
		walls = append(walls, r.wall)
		t := r.report.Totals
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t\n", i+1, r.wall.Round(time.Millisecond), float64(t.Nodes)/r.wall.Seconds(),
			t.OK, t.NearThreshold, t.MissingCapacity, t.Pressure, t.Unreachable, r.server.MaxInFlight, r.server.Conns, mib(r.peakHeap), mib(r.allocated), r.gcs)
	}
	tw.Flush()
	st, err := srv.stats()
	if err != nil {
		return err
	}
	fmt.Printf("\nwall: best %s, worst %s; peak RSS (VmHWM) of this process: %s; of the server process: %s\n",
		minOf(walls).Round(time.Millisecond), maxOf(walls).Round(time.Millisecond), kib(vmHWM()), kib(st.VmHWMKiB))
	if c.inProcess {
		fmt.Println("(server in this process: RSS and heap include it)")
	}
	if worst := maxOf(walls); c.target > 0 && worst > c.target {
		return fmt.Errorf("worst wall time %s is over the %s target", worst, c.target)
	}
	return nil
}

func measure(cfg *rest.Config, opts cluster.Options, srv *server) (*result, error) {
	if err := srv.reset(); err != nil {
		return nil, err
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	start := time.Now()
	r, err := cluster.Collect(context.Background(), cfg, opts)
	wall := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	st, err := srv.stats()
	if err != nil {
		return nil, err
	}
	return &result{wall: wall, report: r, server: st, peakHeap: peak.Load(), allocated: after.TotalAlloc - before.TotalAlloc, gcs: after.NumGC - before.NumGC}, nil
}

// ideal is the lower bound the fan-out allows: every node's requests one
// after the other (two with the exporter: /stats/summary and /doctor; a
// hanging exporter costs its timeout and then the node proxy's).
func ideal(c config) time.Duration {
	perNode := time.Duration(1)
	if c.source == cluster.SourceExporter {
		perNode = 2
	}
	hang := int(float64(c.nodes) * (c.timeouts + c.notReady))
	work := time.Duration(c.nodes-hang)*c.latency*perNode + time.Duration(hang)*c.timeout*perNode
	return work / time.Duration(c.concurrency)
}

// vmHWM is this process's peak resident set, KiB (0 off Linux).
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func kib(n int64) string  { return fmt.Sprintf("%.1f MiB", float64(n)/1024) }

func minOf(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d {
		m = min(m, x)
	}
	return m
}

func maxOf(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d {
		m = max(m, x)
	}
	return m
}
