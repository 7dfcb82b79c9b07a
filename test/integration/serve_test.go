//go:build integration && linux

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/internal/testutil"
)

// serveProc is an `imagefs serve` process started by a test.
type serveProc struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	exit chan error
}

func (p *serveProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

var servingOn = regexp.MustCompile(`^imagefs: serving on (http://\S+) `)

// startServe starts imagefs serve on a free loopback port and reads the
// bound address from its stderr. The process is stopped (SIGTERM, then
// SIGKILL by PID) when the test ends.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	if out, _, code := runImagefs(t, "serve", "--help"); code != 0 || !strings.Contains(out, "Prometheus") {
		t.Fatalf("imagefs has no serve command (exit %d): wire it with root.AddCommand(newServeCommand(g, streams))", code)
	}
	p := &serveProc{cmd: exec.Command(imagefsBin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...), exit: make(chan error, 1)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingOn.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		p.exit <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState != nil {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exit:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exit
			t.Errorf("imagefs serve (pid %d) ignored SIGTERM", p.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("imagefs serve stderr:\n%s", p.stderr())
		}
	})
	select {
	case p.url = <-addr:
	case err := <-p.exit:
		p.exit <- err
		t.Fatalf("imagefs serve exited: %v\n%s", err, p.stderr())
	case <-time.After(20 * time.Second):
		t.Fatalf("imagefs serve printed no address:\n%s", p.stderr())
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := httpGet(t, p.url+"/readyz")
		if code == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("imagefs serve never ready: %d %s\n%s", code, body, p.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// withoutTimes is a copy of s without the sample times, which differ
// between two runs.
func withoutTimes(in summary) summary {
	var s summary
	b, _ := json.Marshal(in)
	_ = json.Unmarshal(b, &s)
	for _, fs := range []*statsapi.FsStats{s.Node.Fs, runtimeFs(s, "image"), runtimeFs(s, "container")} {
		if fs != nil {
			fs.Time = metav1.Time{}
		}
	}
	return s
}

func runtimeFs(s summary, role string) *statsapi.FsStats {
	if s.Node.Runtime == nil {
		return nil
	}
	if role == "image" {
		return s.Node.Runtime.ImageFs
	}
	return s.Node.Runtime.ContainerFs
}

func jsonOf(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// metricFamilies parses the text exposition format.
func metricFamilies(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// gaugeValue returns the value of name with the given labels (a subset).
func gaugeValue(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		if m.Gauge != nil {
			return m.GetGauge().GetValue(), true
		}
		return m.GetCounter().GetValue(), true
	}
	return 0, false
}

// procStatus reads VmHWM and VmRSS (bytes) of pid.
func procStatus(t *testing.T, pid int) (hwm, rss uint64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			v, _ := strconv.ParseUint(f[1], 10, 64)
			switch f[0] {
			case "VmHWM:":
				hwm = v << 10
			case "VmRSS:":
				rss = v << 10
			}
		}
	}
	return hwm, rss
}

// cpuTime is utime+stime of pid (USER_HZ = 100 on Linux).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// imagefs serve against a real containerd: /stats/summary is what
// imagefs stats -o json prints at the same moment, /metrics carries the
// same numbers and passes promtool, a load test measures latency, RSS and
// CPU, and SIGTERM exits 0.
func TestServeAgainstContainerd(t *testing.T) {
	m := testutil.MountFS(t, "ext4", 512<<20)
	c, rootDir := newRuntime(t, m.Dir)
	cfg := filepath.Join(t.TempDir(), "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--runtime-endpoint", c.Endpoint, "--root-dir", rootDir, "--node-name", "it-node"}
	p := startServe(t, append(common, "--interval", "1s", "--kubelet-config", cfg)...)
	pid := p.cmd.Process.Pid

	// The same moment: the loop filesystem is quiet and the runtime's
	// usage settled, so a served snapshot (at most 1 s old) and a fresh
	// imagefs stats agree; retry if containerd refreshed in between.
	var served, direct summary
	for attempt := 1; ; attempt++ {
		code, body := httpGet(t, p.url+"/stats/summary")
		if code != http.StatusOK {
			t.Fatalf("/stats/summary HTTP %d: %s", code, body)
		}
		served = summary{}
		if err := json.Unmarshal([]byte(body), &served); err != nil {
			t.Fatalf("/stats/summary is not the Summary JSON: %v\n%s", err, body)
		}
		direct = statsJSON(t, common...)
		if jsonOf(withoutTimes(served)) == jsonOf(withoutTimes(direct)) || attempt == 5 {
			break
		}
		time.Sleep(time.Second)
	}
	if a, b := jsonOf(withoutTimes(served)), jsonOf(withoutTimes(direct)); a != b {
		t.Errorf("/stats/summary differs from imagefs stats -o json:\n%s\nimagefs stats:\n%s", a, b)
	}
	if served.Node.NodeName != "it-node" || served.Node.Runtime == nil || served.Node.Runtime.ImageFs.CapacityBytes == nil {
		t.Fatalf("incomplete Summary: %s", jsonOf(served))
	}

	_, text := httpGet(t, p.url+"/metrics")
	mfs := metricFamilies(t, text)
	for _, role := range []string{"node", "image", "container"} {
		fs := direct.Node.Fs
		if role != "node" {
			fs = runtimeFs(direct, role)
		}
		for name, want := range map[string]*uint64{
			"imagefs_filesystem_capacity_bytes":  fs.CapacityBytes,
			"imagefs_filesystem_available_bytes": fs.AvailableBytes,
			"imagefs_filesystem_inodes":          fs.Inodes,
			"imagefs_filesystem_inodes_free":     fs.InodesFree,
		} {
			got, ok := gaugeValue(mfs, name, map[string]string{"role": role})
			if !ok || want == nil || got != float64(*want) {
				t.Errorf("%s{role=%q} = %v (present %v), imagefs stats says %s", name, role, got, ok, show(want))
			}
		}
		if role != "node" {
			got, ok := gaugeValue(mfs, "imagefs_filesystem_used_bytes", map[string]string{"role": role, "source": "runtime"})
			if !ok || got != float64(*fs.UsedBytes) {
				t.Errorf("used_bytes{role=%q,source=runtime} = %v, imagefs stats says %d", role, got, *fs.UsedBytes)
			}
		}
	}
	// Every series of these has this value on a healthy, empty node.
	for name, want := range map[string]float64{
		"imagefs_runtime_up":                    1,
		"imagefs_collection_success":            1,
		"imagefs_collection_errors_total":       0,
		"imagefs_disk_pressure":                 0,
		"imagefs_eviction_threshold_met":        0,
		"imagefs_filesystem_capacity_missing":   0,
		"imagefs_filesystem_stats_failure":      0,
		"imagefs_image_gc_amount_to_free_bytes": 0,
		"imagefs_image_gc_high_threshold_ratio": 0.85,
		"imagefs_image_gc_low_threshold_ratio":  0.8,
		"imagefs_mount_stuck":                   0,
		"imagefs_kubelet_config_info":           1,
		"imagefs_filesystem_info":               1,
		"imagefs_runtime_info":                  1,
	} {
		mf := mfs[name]
		if mf == nil {
			t.Errorf("/metrics lacks %s", name)
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			if v != want {
				t.Errorf("%s%v = %v, want %v", name, m.GetLabel(), v, want)
			}
		}
	}
	for _, name := range []string{
		"imagefs_collection_duration_seconds", "imagefs_collection_timestamp_seconds", "imagefs_collections_total",
		"imagefs_doctor_findings", "imagefs_eviction_headroom_bytes", "imagefs_eviction_headroom_inodes",
		"imagefs_eviction_threshold_bytes", "imagefs_eviction_threshold_inodes", "imagefs_filesystem_inodes_used",
		"imagefs_image_gc_usage_ratio", "imagefs_runtime_usage_timestamp_seconds",
		"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines",
	} {
		if mfs[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if v, _ := gaugeValue(mfs, "imagefs_runtime_usage_timestamp_seconds", map[string]string{"role": "image"}); int64(v) != runtimeFs(direct, "image").Time.Unix() {
		t.Errorf("runtime_usage_timestamp_seconds{image} = %v, the Summary's imageFs time is %s", v, runtimeFs(direct, "image").Time)
	}
	if v, _ := gaugeValue(mfs, "imagefs_runtime_info", map[string]string{"endpoint": c.Endpoint, "name": "containerd"}); v != 1 {
		t.Errorf("imagefs_runtime_info lacks endpoint %s", c.Endpoint)
	}
	promtoolCheck(t, text)

	// Idle cost: CPU per collection at --interval 1s.
	cpu0, t0 := cpuTime(t, pid), time.Now()
	time.Sleep(5 * time.Second)
	idleCPU, idleWall := cpuTime(t, pid)-cpu0, time.Since(t0)
	_, idleRSS := procStatus(t, pid)
	t.Logf("idle: %s CPU in %s at --interval 1s (%.1f ms per collection), RSS %.1f MiB", idleCPU, idleWall.Round(time.Millisecond), float64(idleCPU.Milliseconds())/idleWall.Seconds(), float64(idleRSS)/(1<<20))

	// Load: 2000 scrapes of /metrics from 8 goroutines, capped at 10 s.
	const total, workers = 2000, 8
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  int
	)
	jobs := make(chan struct{}, total)
	for range total {
		jobs <- struct{}{}
	}
	close(jobs)
	stop := time.Now().Add(10 * time.Second)
	cpu0, t0 = cpuTime(t, pid), time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for range jobs {
				if time.Now().After(stop) {
					return
				}
				start := time.Now()
				resp, err := hc.Get(p.url + "/metrics")
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(start)
				mu.Lock()
				latencies = append(latencies, d)
				if !ok {
					failures++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	wall, loadCPU := time.Since(t0), cpuTime(t, pid)-cpu0
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(q float64) time.Duration { return latencies[min(len(latencies)-1, int(q*float64(len(latencies))))] }
	hwm, rss := procStatus(t, pid)
	t.Logf("load: %d scrapes of /metrics (%d bytes) from %d goroutines in %s (%.0f/s): p50 %s, p99 %s, max %s, %d failed; server CPU %s (%.0f%% of one core); RSS %.1f MiB, VmHWM %.1f MiB",
		len(latencies), len(text), workers, wall.Round(time.Millisecond), float64(len(latencies))/wall.Seconds(),
		pct(0.50), pct(0.99), latencies[len(latencies)-1], failures, loadCPU, 100*loadCPU.Seconds()/wall.Seconds(), float64(rss)/(1<<20), float64(hwm)/(1<<20))
	if failures > 0 {
		t.Errorf("%d scrapes failed", failures)
	}
	if len(latencies) < total/4 {
		t.Errorf("only %d scrapes in 10 s", len(latencies))
	}
	if p99 := pct(0.99); p99 > time.Second {
		t.Errorf("p99 %s > 1s", p99)
	}
	if hwm > 128<<20 {
		t.Errorf("VmHWM %d MiB: above the DaemonSet's 128Mi limit", hwm>>20)
	}

	// SIGTERM: graceful shutdown, exit 0.
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exit:
		if err != nil {
			t.Errorf("imagefs serve exited with %v on SIGTERM, want 0\n%s", err, p.stderr())
		}
		t.Logf("SIGTERM to exit: %s", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("imagefs serve did not exit on SIGTERM")
	}
}

// The runtime stops: serve keeps serving the last good collection with
// runtime_up 0, then reports not ready with the reason.
func TestServeRuntimeStops(t *testing.T) {
	m := testutil.MountFS(t, "ext4", 256<<20)
	c, rootDir := newRuntime(t, m.Dir)
	p := startServe(t, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir, "--interval", "200ms", "--timeout", "500ms", "--kubelet-config", writeKubeletConfig(t))
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := httpGet(t, p.url+"/readyz")
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(body, c.Endpoint) {
				t.Errorf("/readyz does not name the runtime: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still ready 20 s after the runtime stopped: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, text := httpGet(t, p.url+"/metrics")
	mfs := metricFamilies(t, text)
	if v, _ := gaugeValue(mfs, "imagefs_runtime_up", nil); v != 0 {
		t.Errorf("runtime_up %v after the runtime stopped", v)
	}
	if _, ok := gaugeValue(mfs, "imagefs_filesystem_capacity_bytes", map[string]string{"role": "image"}); !ok {
		t.Error("the last good collection is no longer served")
	}
	if code, _ := httpGet(t, p.url+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz HTTP %d: the process is alive", code)
	}
}

func writeKubeletConfig(t *testing.T) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// promtoolCheck lints exposition text with promtool; without promtool it
// skips the lint, except under CI=true (Debian package prometheus).
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found: install the Debian package prometheus")
		}
		t.Log("promtool not found (Debian package prometheus): /metrics not linted")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
