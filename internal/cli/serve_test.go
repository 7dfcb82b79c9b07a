package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/internal/crifake"
)

// syncBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serving is one imagefs serve run in this process.
type serving struct {
	url    string
	errOut *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

var servingOn = regexp.MustCompile(`imagefs: serving on (http://\S+) `)

// startServe runs the serve command with g and args until the test ends
// (or cancel), and waits for the address it prints.
func startServe(t *testing.T, g *GlobalOptions, args ...string) *serving {
	t.Helper()
	s := &serving{errOut: &syncBuffer{}, done: make(chan error, 1)}
	streams := IO{Out: io.Discard, ErrOut: s.errOut}
	cmd := newServeCommand(g, streams)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(s.errOut)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := servingOn.FindStringSubmatch(s.errOut.String()); m != nil {
			s.url = m[1]
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve exited: %v\nstderr:\n%s", err, s.errOut)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address on stderr:\n%s", s.errOut)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
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

func kubeletConfigFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubelet.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func testGlobals(t *testing.T, endpoint string) *GlobalOptions {
	return &GlobalOptions{RuntimeEndpoint: endpoint, Timeout: 2 * time.Second, RootDir: t.TempDir(), NodeName: "node-a"}
}

func TestServeUsageErrors(t *testing.T) {
	s := crifake.Start(t)
	for _, tc := range []struct {
		args   []string
		phrase string
	}{
		{[]string{"--interval", "0s"}, "--interval must be positive"},
		{[]string{"--shutdown-timeout", "-1s"}, "--shutdown-timeout must be positive"},
		{[]string{"--listen", "9847"}, `--listen "9847"`},
		{[]string{"extra"}, `unknown command "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var errOut bytes.Buffer
			cmd := newServeCommand(testGlobals(t, s.Endpoint), IO{Out: io.Discard, ErrOut: &errOut})
			argsAreUsageErrors(cmd)
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(context.Background())
			if code := exitCode(err, &errOut); code != ExitUsage {
				t.Errorf("exit %d, want %d (%v)", code, ExitUsage, err)
			}
			if !strings.Contains(errOut.String(), tc.phrase) {
				t.Errorf("error %q lacks %q", errOut.String(), tc.phrase)
			}
		})
	}
}

// The command serves what imagefs stats computes, from a fake runtime on a
// real socket and this machine's mount table, and stops on cancel (the
// SIGTERM path: Main's context is cancelled by the signal).
func TestServe(t *testing.T) {
	imageDir := t.TempDir()
	rt := crifake.Start(t,
		crifake.WithVersion(&criapi.VersionResponse{Version: "0.1.0", RuntimeName: "containerd", RuntimeVersion: "v2.4.2", RuntimeApiVersion: "v1"}),
		crifake.WithImageFsInfo(crifake.ImageFs(imageDir, 123456789, 4321, time.Now())),
	)
	g := testGlobals(t, rt.Endpoint)
	cfg := kubeletConfigFile(t, "imageGCHighThresholdPercent: 90\nimageGCLowThresholdPercent: 70\n")
	s := startServe(t, g, "--listen", "127.0.0.1:0", "--interval", "100ms", "--kubelet-config", cfg)

	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := httpGet(t, s.url+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %d %s\nstderr:\n%s", code, body, s.errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, metrics := httpGet(t, s.url+"/metrics")
	for _, want := range []string{
		"imagefs_runtime_up 1\n",
		`imagefs_runtime_info{api_version="v1",endpoint="` + rt.Endpoint + `",name="containerd",version="v2.4.2"} 1`,
		"imagefs_image_gc_high_threshold_ratio 0.9\n",
		"imagefs_image_gc_low_threshold_ratio 0.7\n",
		`imagefs_kubelet_config_info{source="file"} 1`,
		`imagefs_filesystem_used_bytes{`,
		`role="image",source="runtime"} 1.23456789e+08`,
		`imagefs_filesystem_info{`,
		`dir="` + imageDir + `"`,
		`imagefs_mount_stuck{mountpoint=`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	code, body := httpGet(t, s.url+"/stats/summary")
	if code != http.StatusOK {
		t.Fatalf("/stats/summary HTTP %d: %s", code, body)
	}
	res, err := collect(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	var served, direct map[string]any
	if err := json.Unmarshal([]byte(body), &served); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res.Summary)
	if err := json.Unmarshal(b, &direct); err != nil {
		t.Fatal(err)
	}
	// The same computation; the statfs sample (a busy /tmp) and its time
	// may differ by a moment.
	for _, p := range [][]string{
		{"node", "nodeName"},
		{"node", "runtime", "imageFs", "usedBytes"},
		{"node", "runtime", "imageFs", "inodesUsed"},
		{"node", "runtime", "imageFs", "capacityBytes"},
		{"node", "runtime", "imageFs", "inodes"},
		{"node", "fs", "capacityBytes"},
		{"node", "runtime", "containerFs", "usedBytes"},
	} {
		if a, b := dig(served, p...), dig(direct, p...); a == nil || a != b {
			t.Errorf("%s: served %v, imagefs stats %v", strings.Join(p, "."), a, b)
		}
	}

	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Errorf("serve returned %v on cancel, want nil (exit 0 on SIGTERM)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Error("still answering after shutdown")
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// A runtime that goes away: serve stays up, reports runtime_up 0 and
// serves the last good collection; /readyz says why once it is too old.
func TestServeRuntimeGoesAway(t *testing.T) {
	rt := crifake.Start(t, crifake.WithImageFsInfo(crifake.ImageFs(t.TempDir(), 1, 1, time.Now())))
	g := testGlobals(t, rt.Endpoint)
	g.Timeout = 200 * time.Millisecond
	s := startServe(t, g, "--listen", "127.0.0.1:0", "--interval", "50ms", "--kubelet-config", kubeletConfigFile(t, ""))
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nstderr:\n%s", what, s.errOut)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("ready", func() bool { code, _ := httpGet(t, s.url+"/readyz"); return code == 200 })
	rt.Stop()
	waitUntil("runtime_up 0", func() bool {
		_, m := httpGet(t, s.url+"/metrics")
		return strings.Contains(m, "imagefs_runtime_up 0\n")
	})
	_, m := httpGet(t, s.url+"/metrics")
	if !strings.Contains(m, "imagefs_filesystem_capacity_bytes{") {
		t.Error("the last good collection's filesystems are gone")
	}
	waitUntil("not ready", func() bool { code, _ := httpGet(t, s.url+"/readyz"); return code == 503 })
	_, why := httpGet(t, s.url+"/readyz")
	if !strings.Contains(why, "runtime") || !strings.Contains(why, rt.Endpoint) {
		t.Errorf("/readyz does not say the runtime at %s is gone: %q", rt.Endpoint, why)
	}
	if code, _ := httpGet(t, s.url+"/stats/summary"); code != 200 {
		t.Errorf("/stats/summary HTTP %d, want the last good collection", code)
	}
}

// Startup errors: one sentence, exit 1 or 2, nothing served.
func TestServeStartupErrors(t *testing.T) {
	rt := crifake.Start(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name   string
		g      func(*GlobalOptions)
		args   []string
		code   int
		phrase string
	}{
		{"bad endpoint", func(g *GlobalOptions) { g.RuntimeEndpoint = "tcp://x" }, nil, ExitUsage, "invalid runtime endpoint"},
		{"kubelet config", nil, []string{"--kubelet-config", "/nonexistent/kubelet.yaml"}, ExitError, "unusable kubelet configuration"},
		{"host root", nil, []string{"--host-root", "/nonexistent/root"}, ExitError, "--host-root"},
		{"port in use", nil, []string{"--listen", busy.Addr().String()}, ExitError, "cannot listen on " + busy.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testGlobals(t, rt.Endpoint)
			if tc.g != nil {
				tc.g(g)
			}
			var errOut bytes.Buffer
			cmd := newServeCommand(g, IO{Out: io.Discard, ErrOut: &errOut})
			cmd.SetArgs(append([]string{"--kubelet-config", kubeletConfigFile(t, "")}, tc.args...))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := cmd.ExecuteContext(ctx)
			if code := exitCode(err, &errOut); code != tc.code {
				t.Errorf("exit %d, want %d: %v", code, tc.code, err)
			}
			if !strings.Contains(errOut.String(), tc.phrase) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.phrase)
			}
		})
	}
}
