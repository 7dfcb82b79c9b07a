package plugin_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagefs/imagefs/internal/kubelettest"
	"github.com/imagefs/imagefs/internal/plugin"
	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/cluster"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const gib = 1 << 30

func nodes() []kubelettest.NodeSpec {
	img := func(name string, freePct float64) []kubelettest.NodeSpec {
		return []kubelettest.NodeSpec{{Name: name, Labels: map[string]string{"pool": "gpu"}, Summary: kubelettest.SummaryWithImageFs(name, now, 200*gib, uint64(200*gib*freePct/100))}}
	}
	var out []kubelettest.NodeSpec
	out = append(out, kubelettest.NodeSpec{Name: "worker-1", Labels: map[string]string{"pool": "general"}})
	out = append(out, kubelettest.NodeSpec{Name: "worker-2", Labels: map[string]string{"pool": "general"}})
	out = append(out, img("gpu-1", 19)...)
	out = append(out, img("gpu-2", 12)...)
	out = append(out, kubelettest.NodeSpec{Name: "gpu-3", Labels: map[string]string{"pool": "gpu"}, Summary: kubelettest.SummaryWithImageFs("gpu-3", now, 0, 0)})
	out = append(out, kubelettest.NodeSpec{Name: "worker-3", Labels: map[string]string{"pool": "general"}, ServerError: "failed to get imageFs stats: imageFs information is unavailable"})
	out = append(out, kubelettest.NodeSpec{Name: "worker-4", Labels: map[string]string{"pool": "general"}, Hang: true})
	return out
}

type result struct {
	code        int
	out, errOut string
}

func run(t *testing.T, tty bool, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := plugin.Main(args, plugin.IO{Out: &out, ErrOut: &errOut, ErrIsTTY: tty})
	return result{code, out.String(), errOut.String()}
}

func TestPlugin(t *testing.T) {
	s := kubelettest.Start(t, kubelettest.Options{Nodes: nodes(), HTTP2: true})
	kc := "--kubeconfig=" + s.Kubeconfig
	tests := []struct {
		name     string
		args     []string
		tty      bool
		wantCode int
		golden   bool
		wantOut  []string
		wantErr  []string
		noErr    bool // stderr must be empty
	}{
		{name: "table", args: []string{kc, "--request-timeout=400ms"}, wantCode: plugin.ExitNotOK, golden: true, noErr: true},
		{name: "wide", args: []string{kc, "--request-timeout=400ms", "-o", "wide", "-l", "pool=gpu"}, wantCode: plugin.ExitNotOK, golden: true, noErr: true},
		{name: "all ok", args: []string{kc, "-l", "pool=general,kubernetes.io/hostname notin (worker-3,worker-4)"}, wantCode: plugin.ExitOK, wantOut: []string{"2 nodes: 2 ok, 0 near threshold"}, noErr: true},
		{name: "named nodes", args: []string{kc, "worker-1", "gpu-2"}, wantCode: plugin.ExitNotOK, wantOut: []string{"gpu-2     pressure", "worker-1  ok", "2 nodes: 1 ok"}},
		{name: "no match", args: []string{kc, "-l", "pool=none"}, wantCode: plugin.ExitOK, wantErr: []string{`No nodes match the selector "pool=none".`}},
		{name: "stricter thresholds", args: []string{kc, "worker-1", "--eviction-hard=imagefs.available<75%"}, wantCode: plugin.ExitNotOK, wantOut: []string{"worker-1  pressure", "imagefs.available<75% met"}},
		{name: "GC high below the low default", args: []string{kc, "worker-1", "--image-gc-high-threshold=30"}, wantCode: plugin.ExitNotOK, wantOut: []string{"worker-1  near-threshold", "+1 "}},
		{name: "no margin", args: []string{kc, "gpu-1", "--near=0"}, wantCode: plugin.ExitOK, wantOut: []string{"gpu-1  ok"}},
		{name: "progress on a terminal", args: []string{kc, "worker-1", "--concurrency=1"}, tty: true, wantCode: plugin.ExitOK, wantErr: []string{"\r\x1b[K[", "1/1 nodes", "\r\x1b[K"}},
		{name: "no progress when asked", args: []string{kc, "worker-1", "--no-progress"}, tty: true, wantCode: plugin.ExitOK, noErr: true},
		{name: "help", args: []string{"--help"}, wantCode: plugin.ExitOK, wantOut: []string{"Usage:\n  kubectl imagefs [NODE...] [flags]", "Exit codes:", "--selector", "Connection options (as kubectl's):", "--kubeconfig"}},

		{name: "bad output", args: []string{kc, "-o", "yaml"}, wantCode: plugin.ExitUsage, wantErr: []string{`-o "yaml": want one of table, wide, json`}},
		{name: "bad source", args: []string{kc, "--source", "kubelet"}, wantCode: plugin.ExitUsage, wantErr: []string{`--source "kubelet"`}},
		{name: "bad selector", args: []string{kc, "-l", "a in (b"}, wantCode: plugin.ExitUsage, wantErr: []string{`selector "a in (b"`}},
		{name: "bad concurrency", args: []string{kc, "--concurrency=0"}, wantCode: plugin.ExitUsage, wantErr: []string{"--concurrency 0"}},
		{name: "bad eviction-hard", args: []string{kc, "--eviction-hard=imagefs.available<150%"}, wantCode: plugin.ExitUsage, wantErr: []string{"must be <= 100%"}},
		{name: "bad GC threshold", args: []string{kc, "--image-gc-high-threshold=101"}, wantCode: plugin.ExitUsage, wantErr: []string{"imageGCHighThresholdPercent 101 must be in [0, 100]"}},
		{name: "names and selector", args: []string{kc, "-l", "a=b", "worker-1"}, wantCode: plugin.ExitUsage, wantErr: []string{"not both"}},
		{name: "unknown flag", args: []string{"--nope"}, wantCode: plugin.ExitUsage, wantErr: []string{"unknown flag: --nope", "See 'kubectl imagefs --help'."}},
		{name: "missing kubeconfig", args: []string{"--kubeconfig=/nonexistent/kubeconfig"}, wantCode: plugin.ExitError, wantErr: []string{"kubeconfig: ", "/nonexistent/kubeconfig"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.tty, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.wantCode, r.out, r.errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(r.out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.out)
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(r.errOut, w) {
					t.Errorf("stderr lacks %q:\n%q", w, r.errOut)
				}
			}
			if tt.noErr && r.errOut != "" {
				t.Errorf("stderr: %q", r.errOut)
			}
			if tt.golden {
				testutil.Golden(t, []byte(r.out))
			}
		})
	}
}

func TestPluginJSON(t *testing.T) {
	s := kubelettest.Start(t, kubelettest.Options{Nodes: nodes()})
	r := run(t, false, "--kubeconfig="+s.Kubeconfig, "--request-timeout=300ms", "-o", "json")
	if r.code != plugin.ExitNotOK {
		t.Fatalf("exit %d: %s", r.code, r.errOut)
	}
	var rep cluster.Report
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatal(err)
	}
	want := cluster.Totals{Nodes: 7, OK: 2, NearThreshold: 1, MissingCapacity: 1, Pressure: 1, Unreachable: 2}
	if rep.Totals != want {
		t.Errorf("totals %+v, want %+v", rep.Totals, want)
	}
	if rep.Nodes[0].Name != "gpu-2" || rep.Nodes[0].Nearest.Signal != "imagefs.available" || !rep.Nodes[0].Nearest.Met {
		t.Errorf("first node %+v", rep.Nodes[0])
	}
	for _, n := range rep.Nodes {
		if n.Name == "worker-4" && (n.Error == nil || n.Error.Kind != "timed out" || n.Error.Message != "no answer within 300ms") {
			t.Errorf("worker-4: %+v", n.Error)
		}
	}
}

func TestPluginClusterUnreachable(t *testing.T) {
	s := kubelettest.Start(t, kubelettest.Options{Nodes: nodes(), RequireToken: true})
	r := run(t, false, "--kubeconfig="+s.Kubeconfig, "--token=expired")
	if r.code != plugin.ExitError || !strings.Contains(r.errOut, "cannot list the cluster's nodes: GET "+s.URL+"/api/v1/nodes: unauthorized (HTTP 401)") || !strings.Contains(r.errOut, "credentials") {
		t.Errorf("wrong token: exit %d, stderr %q", r.code, r.errOut)
	}
	s.Close()
	r = run(t, false, "--kubeconfig="+s.Kubeconfig)
	if r.code != plugin.ExitError || !strings.Contains(r.errOut, "unreachable") || r.out != "" {
		t.Errorf("server down: exit %d, stdout %q, stderr %q", r.code, r.out, r.errOut)
	}
}

func TestPluginExporterAndKubeletConfig(t *testing.T) {
	s := kubelettest.Start(t, kubelettest.Options{Nodes: []kubelettest.NodeSpec{
		{Name: "node-a", ExporterPod: "imagefs-x1", Doctor: map[string]any{"nodeName": "node-a", "worst": "fail", "findings": []map[string]any{
			{"check": "capacity", "title": "capacity", "severity": "fail", "summary": "imageFs has no capacity: cadvisor has no partition for the runtime's device"},
		}}},
		{Name: "node-b"},
	}})
	cfg := filepath.Join(t.TempDir(), "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nimageGCHighThresholdPercent: 72\nimageGCLowThresholdPercent: 50\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, false, "--kubeconfig="+s.Kubeconfig, "--source=exporter", "--kubelet-config="+cfg, "-o", "wide")
	for _, w := range []string{"DOCTOR", "fail (1)", "doctor fail capacity: imageFs has no capacity", "exporter", "no running exporter pod, kubelet Summary used", "+43 "} {
		if !strings.Contains(r.out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, r.out)
		}
	}
	if r.code != plugin.ExitOK {
		t.Errorf("exit %d: %s", r.code, r.errOut)
	}
}
