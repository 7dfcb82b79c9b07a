package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/internal/crifake"
	"github.com/imagefs/imagefs/pkg/analyze/images"
)

// imagesMain is Main with the images command present: root.go registers
// it; until then (or if this test runs on a tree where it does not), it is
// added here with its GlobalOptions read from the root's flags.
func imagesMain(args []string, streams IO) int {
	root := NewRootCommand(streams)
	if c, _, err := root.Find([]string{"images"}); err == nil && c.Name() == "images" {
		return Main(args, streams)
	}
	g := &GlobalOptions{}
	cmd := newImagesCommand(g, streams)
	cmd.PreRunE = func(*cobra.Command, []string) error {
		pf := root.PersistentFlags()
		g.RuntimeEndpoint, _ = pf.GetString("runtime-endpoint")
		g.Timeout, _ = pf.GetDuration("timeout")
		g.RootDir, _ = pf.GetString("root-dir")
		g.Output, _ = pf.GetString("output")
		g.Mountinfo, _ = pf.GetString("mountinfo")
		g.NodeName, _ = pf.GetString("node-name")
		g.Verbose, _ = pf.GetBool("verbose")
		return nil
	}
	root.AddCommand(cmd)
	argsAreUsageErrors(root)
	root.SetArgs(args)
	return exitCode(root.ExecuteContext(context.Background()), streams.ErrOut)
}

type imagesRun struct {
	code        int
	out, errOut string
}

func runImagesCmd(t *testing.T, args ...string) imagesRun {
	t.Helper()
	var out, errOut bytes.Buffer
	code := imagesMain(append([]string{"images"}, args...), IO{Out: &out, ErrOut: &errOut})
	t.Logf("imagefs images %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return imagesRun{code, out.String(), errOut.String()}
}

func criRuntime(t *testing.T, name string) *crifake.Server {
	t.Helper()
	v := crifake.DefaultVersion()
	v.RuntimeName, v.RuntimeVersion = name, "1.30.3"
	return crifake.Start(t, crifake.WithVersion(v),
		crifake.WithImages(
			&criapi.Image{Id: "sha256:aaaa1111", RepoTags: []string{"quay.io/shop/app:v2"}, Size: 187_000_000},
			&criapi.Image{Id: "sha256:bbbb2222", RepoTags: []string{"docker.io/library/nginx:1.27"}, Size: 72_000_000},
		),
		crifake.WithContainers(&criapi.Container{Id: "c1", ImageRef: "sha256:aaaa1111"}))
}

func TestImagesUsageErrors(t *testing.T) {
	s := criRuntime(t, "cri-o")
	common := []string{"--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir()}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"bad sort", []string{"--sort", "biggest"}, "unknown --sort"},
		{"negative top", []string{"--top", "-1"}, "--top"},
		{"names without --what-if", []string{"nginx"}, "only taken with --what-if"},
		{"bad output", []string{"-o", "xml"}, "unknown --output"},
		{"unknown image", []string{"--what-if", "nope:1"}, "no image matches \"nope:1\""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runImagesCmd(t, append(append([]string(nil), common...), tt.args...)...)
			if r.code != ExitUsage || !strings.Contains(r.errOut, tt.want) || r.out != "" {
				t.Errorf("exit %d stderr %q stdout %q, want exit 2 with %q", r.code, r.errOut, r.out, tt.want)
			}
		})
	}
}

// A runtime other than containerd: CRI ListImages only, said clearly.
func TestImagesCRIFallback(t *testing.T) {
	s := criRuntime(t, "cri-o")
	r := runImagesCmd(t, "--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir(), "-o", "json", "--what-if", "nginx:1.27")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	var rep images.Report
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Source != images.SourceCRI || rep.CRIOnly == nil || len(rep.CRIOnly.Unavailable) == 0 || rep.Totals != nil {
		t.Errorf("source %s criOnly %+v totals %v", rep.Source, rep.CRIOnly, rep.Totals)
	}
	if len(rep.Images) != 2 || rep.Images[0].ID != "sha256:aaaa1111" || rep.Images[0].Containers != 1 || *rep.Images[0].Size != 187_000_000 {
		t.Errorf("images %+v", rep.Images)
	}
	if rep.WhatIf == nil || !rep.WhatIf.Approximate || rep.WhatIf.Freed.Bytes != 72_000_000 {
		t.Errorf("what-if %+v", rep.WhatIf)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), `"cri-o", not containerd`) {
		t.Errorf("notes %v", rep.Notes)
	}
	if s.Calls("/runtime.v1.ImageService/ListImages") != 1 {
		t.Errorf("ListImages called %d times", s.Calls("/runtime.v1.ImageService/ListImages"))
	}

	tab := runImagesCmd(t, "--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir())
	if tab.code != 0 || !strings.Contains(tab.out, "CRI ListImages only") || !strings.Contains(tab.out, "Not available from CRI") {
		t.Errorf("table:\n%s", tab.out)
	}
}

// containerd on the CRI socket whose own API does not answer: with the
// socket taken from CRI, fall back to CRI and say why; with an explicit
// --containerd-address, fail with one sentence.
func TestImagesContainerdAPIUnusable(t *testing.T) {
	s := criRuntime(t, "containerd")
	r := runImagesCmd(t, "--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir(), "--timeout", "1s")
	if r.code != 0 || !strings.Contains(r.errOut, "falling back to CRI ListImages") || !strings.Contains(r.out, "CRI ListImages only") {
		t.Errorf("fallback: exit %d", r.code)
	}
	missing := filepath.Join(t.TempDir(), "nope.sock")
	r = runImagesCmd(t, "--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir(), "--containerd-address", missing)
	if r.code != ExitError || !strings.Contains(r.errOut, "the containerd socket "+missing+" does not exist") || strings.Count(r.errOut, "\n") != 1 {
		t.Errorf("missing socket: exit %d stderr %q", r.code, r.errOut)
	}
}
