package cli_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imagefs/imagefs/internal/cli"
	"github.com/imagefs/imagefs/internal/crifake"
	"github.com/imagefs/imagefs/internal/kubelettest"
)

// explainLive runs imagefs explain -o json against a fake runtime whose
// image directory is a real temp dir, with extra live flags.
func explainLive(t *testing.T, args ...string) (int, map[string]any, string) {
	t.Helper()
	dir := t.TempDir()
	rt := crifake.Start(t, crifake.WithImageFsInfo(crifake.ImageFs(dir, 4096, 3, time.Now())))
	var out, errOut bytes.Buffer
	code := cli.Main(append([]string{"explain", "-o", "json", "--runtime-endpoint", rt.Endpoint, "--root-dir", dir, "--node-name", kubelettest.DefaultNode}, args...), cli.IO{Out: &out, ErrOut: &errOut})
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode (exit %d): %v\n%s\n%s", code, err, out.String(), errOut.String())
	}
	return code, rep, errOut.String()
}

func TestExplainLive(t *testing.T) {
	t.Run("direct kubelet with token and CA", func(t *testing.T) {
		k := kubelettest.Start(t, kubelettest.Options{RequireToken: true})
		code, rep, errOut := explainLive(t, "--kubelet-url", k.URL, "--kubelet-token", k.Token, "--kubelet-ca", k.CAFile)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		live := rep["live"].(map[string]any)
		if live["error"] != nil || len(live["roles"].([]any)) != 3 || !strings.Contains(live["source"].(string), k.URL) {
			t.Fatalf("live = %v", live)
		}
		// The fake kubelet reports other numbers: every difference is explained.
		if reasons := live["reasons"].([]any); len(reasons) == 0 || reasons[0] == "every field agrees" {
			t.Errorf("reasons = %v", reasons)
		}
	})
	t.Run("through the API server", func(t *testing.T) {
		k := kubelettest.Start(t, kubelettest.Options{})
		code, rep, errOut := explainLive(t, "--live", "--kubeconfig", k.Kubeconfig)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if live := rep["live"].(map[string]any); live["error"] != nil || !strings.Contains(live["source"].(string), kubelettest.DefaultNode) {
			t.Fatalf("live = %v", live)
		}
	})
	for _, tt := range []struct {
		name  string
		opts  kubelettest.Options
		args  func(*kubelettest.Server) []string
		words []string
	}{
		{"wrong token", kubelettest.Options{RequireToken: true}, func(k *kubelettest.Server) []string {
			return []string{"--kubelet-url", k.URL, "--kubelet-token", "nope", "--kubelet-ca", k.CAFile}
		}, []string{"could not compare with the live kubelet", "401"}},
		{"unknown CA", kubelettest.Options{}, func(k *kubelettest.Server) []string { return []string{"--kubelet-url", k.URL} }, []string{"could not compare", "certificate"}},
		{"missing node", kubelettest.Options{}, func(k *kubelettest.Server) []string {
			return []string{"--live", "--kubeconfig", k.Kubeconfig, "--node", "no-such-node"}
		}, []string{"no-such-node", "not found"}},
		{"timeout", kubelettest.Options{Delay: 3 * time.Second}, func(k *kubelettest.Server) []string {
			return []string{"--kubelet-url", k.URL, "--kubelet-ca", k.CAFile, "--live-timeout", "300ms"}
		}, []string{"could not compare", "time"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := kubelettest.Start(t, tt.opts)
			start := time.Now()
			code, rep, errOut := explainLive(t, tt.args(k)...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if strings.Count(errOut, "imagefs: ") != 1 {
				t.Errorf("stderr is not one sentence: %q", errOut)
			}
			for _, w := range tt.words {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if live := rep["live"].(map[string]any); live["error"] == nil {
				t.Errorf("the report does not record the failure: %v", live)
			}
		})
	}
}

func TestPressureFromConfigz(t *testing.T) {
	dir := t.TempDir()
	rt := crifake.Start(t, crifake.WithImageFsInfo(crifake.ImageFs(dir, 4096, 3, time.Now())))
	run := func(opts kubelettest.Options, args ...string) (int, string, string) {
		k := kubelettest.Start(t, opts)
		var out, errOut bytes.Buffer
		code := cli.Main(append([]string{"pressure", "-o", "json", "--runtime-endpoint", rt.Endpoint, "--root-dir", dir, "--kubelet-configz", "--kubeconfig", k.Kubeconfig, "--node", kubelettest.DefaultNode}, args...), cli.IO{Out: &out, ErrOut: &errOut})
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run(kubelettest.Options{Configz: []byte(`{"kubeletconfig":{"evictionHard":{"imagefs.available":"99.5%"},"imageGCHighThresholdPercent":90,"imageGCLowThresholdPercent":70}}`)})
	if code != 3 {
		t.Fatalf("exit %d, want 3 (99.5%% imagefs.available is met on any real filesystem): %s", code, errOut)
	}
	if !strings.Contains(out, `"source": "/configz of node `+kubelettest.DefaultNode+`"`) || !strings.Contains(out, `"configured": "99.5%"`) {
		t.Errorf("the thresholds do not come from /configz:\n%s", out)
	}
	code, _, errOut = run(kubelettest.Options{})
	if code != 1 || strings.Count(errOut, "imagefs: ") != 1 || !strings.Contains(errOut, "/configz") || !strings.Contains(errOut, "404") {
		t.Errorf("missing /configz: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(kubelettest.Options{ForbidProxy: true})
	if code != 1 || !strings.Contains(errOut, "nodes/proxy") {
		t.Errorf("forbidden: exit %d, stderr %q", code, errOut)
	}
}
