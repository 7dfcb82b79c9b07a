//go:build linux

package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/internal/cli"
	"github.com/imagefs/imagefs/internal/crifake"
	"github.com/imagefs/imagefs/pkg/runtime"
)

// result is one run of imagefs.
type result struct {
	code        int
	out, errOut string
	elapsed     time.Duration
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	start := time.Now()
	code := cli.Main(args, cli.IO{Out: &out, ErrOut: &errOut})
	r := result{code: code, out: out.String(), errOut: errOut.String(), elapsed: time.Since(start)}
	t.Logf("imagefs %s → exit %d in %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.elapsed.Round(time.Millisecond), r.out, r.errOut)
	return r
}

// stableRun is run for tests that compare imagefs's statfs numbers with
// their own: the answer depends on the host's mount table, which other
// processes (integration tests, the runtime lab) may change under us, so a
// run during which /proc/self/mountinfo changed is retried.
func stableRun(t *testing.T, args ...string) result {
	t.Helper()
	for attempt := 1; ; attempt++ {
		before := mountinfo(t)
		r := run(t, args...)
		if after := mountinfo(t); after == before || attempt == 3 {
			return r
		}
		t.Logf("the mount table changed during the run; retrying")
	}
}

func mountinfo(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sentence asserts the exit code and that stderr is exactly one
// "imagefs: …" line containing every phrase, and returns that line.
func (r result) sentence(t *testing.T, code int, phrases ...string) string {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d", r.code, code)
	}
	line, ok := strings.CutPrefix(r.errOut, "imagefs: ")
	if !ok || !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("stderr is not one \"imagefs: …\" line:\n%q", r.errOut)
	}
	for _, p := range phrases {
		if !strings.Contains(line, p) {
			t.Errorf("stderr sentence does not contain %q:\n%s", p, line)
		}
	}
	return line
}

// failed asserts a failure with nothing on stdout.
func (r result) failed(t *testing.T, code int, phrases ...string) string {
	t.Helper()
	if r.out != "" {
		t.Errorf("stdout not empty on exit %d:\n%s", r.code, r.out)
	}
	return r.sentence(t, code, phrases...)
}

// summary is the Summary API shape imagefs prints with -o json.
type summary struct {
	Node struct {
		NodeName string                 `json:"nodeName"`
		Fs       *statsapi.FsStats      `json:"fs"`
		Runtime  *statsapi.RuntimeStats `json:"runtime"`
	} `json:"node"`
}

func decode(t *testing.T, out string) (summary, map[string]any) {
	t.Helper()
	var s summary
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stdout is not the Summary JSON: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	return s, raw
}

// path walks a decoded JSON object; ok is false when a key is missing.
func path(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// shortDir is a temp dir whose paths fit in a unix socket address.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

const (
	fakeUsed   = 123456789
	fakeInodes = 4321
)

// fakeTime has nanoseconds, which the Summary API's RFC3339 time drops.
var fakeTime = time.Date(2026, 5, 6, 7, 8, 9, 987654321, time.UTC)

// fakeRuntime starts a runtime whose image filesystem is at mountpoint.
func fakeRuntime(t *testing.T, mountpoint string, opts ...crifake.Option) *crifake.Server {
	t.Helper()
	return crifake.Start(t, append([]crifake.Option{
		crifake.WithVersion(&criapi.VersionResponse{Version: "0.1.0", RuntimeName: "containerd", RuntimeVersion: "v2.4.2", RuntimeApiVersion: "v1"}),
		crifake.WithImageFsInfo(crifake.ImageFs(mountpoint, fakeUsed, fakeInodes, fakeTime)),
	}, opts...)...)
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	s := fakeRuntime(t, t.TempDir())
	for _, tc := range []struct {
		name    string
		args    []string
		phrases []string
	}{
		{"tcp endpoint", []string{"stats", "--runtime-endpoint", "tcp://x"}, []string{"invalid runtime endpoint", `"tcp://x"`, "--runtime-endpoint", "unix:///path/to.sock"}},
		{"relative endpoint", []string{"stats", "--runtime-endpoint", "run/containerd.sock"}, []string{"invalid runtime endpoint", `"run/containerd.sock"`}},
		{"unknown output", []string{"stats", "--runtime-endpoint", s.Endpoint, "-o", "xml"}, []string{`unknown --output "xml"`, "table, json or yaml"}},
		{"zero timeout", []string{"stats", "--runtime-endpoint", s.Endpoint, "--timeout", "0s"}, []string{"--timeout must be positive", "0s"}},
		{"negative timeout", []string{"stats", "--runtime-endpoint", s.Endpoint, "--timeout", "-1s"}, []string{"--timeout must be positive", "-1s"}},
		{"bad timeout", []string{"stats", "--timeout", "soon"}, []string{"--timeout", "soon"}},
		{"unknown flag", []string{"stats", "--runtime-endpoint", s.Endpoint, "--bogus"}, []string{"unknown flag: --bogus"}},
		{"unknown shorthand", []string{"stats", "-Z"}, []string{"unknown shorthand flag: 'Z'"}},
		{"extra argument", []string{"stats", "extra"}, []string{`unknown command "extra" for "imagefs stats"`}},
		{"unknown command", []string{"bogus"}, []string{`unknown command "bogus" for "imagefs"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, tc.args...).failed(t, cli.ExitUsage, tc.phrases...)
		})
	}
	if n := s.TotalCalls(); n != 0 {
		t.Errorf("usage errors made %d calls to the runtime", n)
	}
}

func TestRuntimeErrors(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	regular := filepath.Join(dir, "regular.sock")
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.sock")

	t.Run("missing socket", func(t *testing.T) {
		t.Parallel()
		run(t, "stats", "--runtime-endpoint", "unix://"+missing).failed(t, cli.ExitError,
			"the runtime socket unix://"+missing+" (from --runtime-endpoint) does not exist", "start the container runtime", "--runtime-endpoint")
	})

	t.Run("missing socket given as a path", func(t *testing.T) {
		t.Parallel()
		run(t, "stats", "--runtime-endpoint", missing).failed(t, cli.ExitError,
			"the runtime socket unix://"+missing+" (from --runtime-endpoint) does not exist")
	})

	t.Run("regular file", func(t *testing.T) {
		t.Parallel()
		run(t, "stats", "--runtime-endpoint", "unix://"+regular).failed(t, cli.ExitError,
			"the runtime endpoint unix://"+regular+" (from --runtime-endpoint) is not a unix socket", "pass --runtime-endpoint")
	})

	t.Run("hung runtime", func(t *testing.T) {
		t.Parallel()
		s := fakeRuntime(t, t.TempDir(), crifake.WithHang())
		r := run(t, "stats", "--runtime-endpoint", s.Endpoint, "--timeout", "300ms")
		r.failed(t, cli.ExitError, "the runtime at "+s.Endpoint+" (from --runtime-endpoint) did not answer within 300ms", "hung", "--timeout")
		if r.elapsed > 3*time.Second {
			t.Errorf("imagefs took %s on a hung runtime with --timeout 300ms", r.elapsed)
		}
		if s.Calls("Version") != 1 {
			t.Errorf("runtime saw %d Version calls, want 1", s.Calls("Version"))
		}
	})

	t.Run("no ImageService", func(t *testing.T) {
		t.Parallel()
		s := fakeRuntime(t, t.TempDir(), crifake.WithServices(crifake.RuntimeServiceOnly))
		run(t, "stats", "--runtime-endpoint", s.Endpoint).failed(t, cli.ExitError,
			"the runtime at "+s.Endpoint+" (from --runtime-endpoint) does not implement CRI v1 ImageFsInfo/Version",
			"unknown service runtime.v1.ImageService", "CRI plugin", "io.containerd.grpc.v1.cri")
	})

	t.Run("no CRI services", func(t *testing.T) {
		t.Parallel()
		s := fakeRuntime(t, t.TempDir(), crifake.WithServices(crifake.NoServices))
		run(t, "stats", "--runtime-endpoint", s.Endpoint, "-o", "json").failed(t, cli.ExitError,
			"does not implement CRI v1", "unknown service runtime.v1.RuntimeService", "CRI plugin")
	})

	t.Run("runtime gone", func(t *testing.T) {
		t.Parallel()
		s := fakeRuntime(t, t.TempDir())
		s.Stop() // removes the socket
		run(t, "stats", "--runtime-endpoint", s.Endpoint).failed(t, cli.ExitError, "the runtime socket "+s.Endpoint+" (from --runtime-endpoint) does not exist")
	})

	t.Run("mount table missing", func(t *testing.T) {
		t.Parallel()
		s := fakeRuntime(t, t.TempDir())
		run(t, "stats", "--runtime-endpoint", s.Endpoint, "--mountinfo", "/nonexistent").failed(t, cli.ExitError,
			"cannot use the mount table /nonexistent", "no such file or directory", "--mountinfo")
	})

	t.Run("mount table empty", func(t *testing.T) {
		t.Parallel()
		empty := filepath.Join(t.TempDir(), "mountinfo")
		if err := os.WriteFile(empty, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		s := fakeRuntime(t, t.TempDir())
		run(t, "stats", "--runtime-endpoint", s.Endpoint, "--mountinfo", empty).failed(t, cli.ExitError,
			"cannot use the mount table "+empty)
	})
}

// TestImageFsNotInMountNamespace: the runtime reports a mountpoint that
// does not exist here, as when imagefs runs in a container without the
// runtime's root mounted.
func TestImageFsNotInMountNamespace(t *testing.T) {
	t.Parallel()
	const mp = "/nonexistent/io.containerd.snapshotter.v1.overlayfs"
	s := fakeRuntime(t, mp)
	rootDir := t.TempDir()

	t.Run("table", func(t *testing.T) {
		t.Parallel()
		r := run(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", rootDir)
		r.sentence(t, cli.ExitPartial, "the runtime's image filesystem directory "+mp+" does not exist in this mount namespace", "nsenter")
		for _, want := range []string{"ROLE", "image", mp, rootDir} {
			if !strings.Contains(r.out, want) {
				t.Errorf("table does not contain %q", want)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		r := run(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", rootDir, "-o", "json")
		r.sentence(t, cli.ExitPartial, mp, "mount namespace")
		sum, raw := decode(t, r.out)
		if sum.Node.Runtime == nil || sum.Node.Runtime.ImageFs == nil {
			t.Fatalf("no node.runtime.imageFs")
		}
		if u := sum.Node.Runtime.ImageFs.UsedBytes; u == nil || *u != fakeUsed {
			t.Errorf("imageFs.usedBytes = %v, want %d", u, fakeUsed)
		}
		for _, key := range []string{"capacityBytes", "availableBytes", "inodes", "inodesFree"} {
			if v, ok := path(raw, "node", "runtime", "imageFs", key); ok {
				t.Errorf("imageFs.%s = %v, want it absent", key, v)
			}
		}
		if sum.Node.Fs == nil || sum.Node.Fs.CapacityBytes == nil {
			t.Errorf("node.fs should still be complete: %+v", sum.Node.Fs)
		}
	})
}

func TestRootDirMissing(t *testing.T) {
	t.Parallel()
	s := fakeRuntime(t, t.TempDir())
	r := run(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", "/nonexistent", "-o", "json")
	r.sentence(t, cli.ExitPartial, "the kubelet root dir /nonexistent does not exist here", "--root-dir")
	_, raw := decode(t, r.out)
	if v, ok := path(raw, "node", "fs"); ok {
		t.Errorf("node.fs = %v, want it absent", v)
	}
	if _, ok := path(raw, "node", "runtime", "imageFs", "capacityBytes"); !ok {
		t.Errorf("node.runtime.imageFs.capacityBytes missing: the image fs resolves")
	}
}

func TestNoImageFilesystems(t *testing.T) {
	t.Parallel()
	s := crifake.Start(t, crifake.WithImageFsInfo(&criapi.ImageFsInfoResponse{}))
	r := run(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir(), "-o", "json")
	r.sentence(t, cli.ExitPartial, "image filesystem", "imageFs information is unavailable")
	sum, raw := decode(t, r.out)
	if _, ok := path(raw, "node", "runtime"); ok {
		t.Errorf("node.runtime present: %s", r.out)
	}
	if sum.Node.Fs == nil {
		t.Errorf("node.fs missing")
	}
}

// statfs is the test's own statfs(2) of dir.
func statfs(t *testing.T, dir string) unix.Statfs_t {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// skipIfUnresolvable skips when this machine's temp dir is on a filesystem
// cadvisor cannot resolve: that is fsinfo's business, not the CLI's.
func skipIfUnresolvable(t *testing.T, r result) {
	t.Helper()
	if r.code == cli.ExitPartial && strings.Contains(r.errOut, "cadvisor's partition map") {
		t.Skipf("the temp dir's filesystem is not in cadvisor's partition map here: %s", r.errOut)
	}
}

func TestSuccess(t *testing.T) {
	t.Parallel()
	mp, rootDir := t.TempDir(), t.TempDir()
	s := fakeRuntime(t, mp)
	r := stableRun(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", rootDir, "--node-name", "node-1", "-o", "json")
	skipIfUnresolvable(t, r)
	if r.code != cli.ExitOK || r.errOut != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.errOut)
	}
	sum, raw := decode(t, r.out)
	if sum.Node.NodeName != "node-1" {
		t.Errorf("nodeName %q", sum.Node.NodeName)
	}
	if sum.Node.Fs == nil || sum.Node.Runtime == nil || sum.Node.Runtime.ImageFs == nil || sum.Node.Runtime.ContainerFs == nil {
		t.Fatalf("incomplete summary: %s", r.out)
	}

	// Runtime-reported fields.
	img := sum.Node.Runtime.ImageFs
	if img.UsedBytes == nil || *img.UsedBytes != fakeUsed {
		t.Errorf("imageFs.usedBytes = %v, want %d", img.UsedBytes, fakeUsed)
	}
	if img.InodesUsed == nil || *img.InodesUsed != fakeInodes {
		t.Errorf("imageFs.inodesUsed = %v, want %d", img.InodesUsed, fakeInodes)
	}
	wantTime := fakeTime.Truncate(time.Second).Format(time.RFC3339)
	if got, _ := path(raw, "node", "runtime", "imageFs", "time"); got != wantTime {
		t.Errorf("imageFs.time = %v, want %s", got, wantTime)
	}
	if !img.Time.Time.Equal(fakeTime.Truncate(time.Second)) {
		t.Errorf("imageFs.time decodes to %s", img.Time)
	}

	// statfs-derived fields: capacity and inodes are stable, available is
	// not (the filesystem is busy), so it is only checked for sanity.
	for _, fs := range []struct {
		name  string
		dir   string
		stats *statsapi.FsStats
	}{{"node.fs", rootDir, sum.Node.Fs}, {"imageFs", mp, img}} {
		st := statfs(t, fs.dir)
		if c := fs.stats.CapacityBytes; c == nil || *c != uint64(st.Frsize)*st.Blocks {
			t.Errorf("%s.capacityBytes = %v, want f_frsize*f_blocks = %d", fs.name, c, uint64(st.Frsize)*st.Blocks)
			t.Logf("mount table now:\n%s", mountinfo(t))
			run(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", rootDir, "--bytes") // shows the device
		}
		if i := fs.stats.Inodes; i == nil || *i != st.Files {
			t.Errorf("%s.inodes = %v, want f_files = %d", fs.name, i, st.Files)
		}
		if a, c := fs.stats.AvailableBytes, fs.stats.CapacityBytes; a == nil || c == nil || *a > *c {
			t.Errorf("%s.availableBytes = %v, capacity %v", fs.name, a, c)
		}
		if fs.stats.InodesFree == nil {
			t.Errorf("%s.inodesFree missing", fs.name)
		}
	}

	// The kubelet's CRI stats provider reports imageFs as containerFs.
	if !reflect.DeepEqual(sum.Node.Runtime.ContainerFs, img) {
		t.Errorf("containerFs %+v != imageFs %+v", sum.Node.Runtime.ContainerFs, img)
	}
	cfs, _ := path(raw, "node", "runtime", "containerFs")
	ifs, _ := path(raw, "node", "runtime", "imageFs")
	if !reflect.DeepEqual(cfs, ifs) {
		t.Errorf("containerFs JSON %v != imageFs JSON %v", cfs, ifs)
	}
	if n := s.Calls("ImageFsInfo"); n != 1 {
		t.Errorf("runtime saw %d ImageFsInfo calls, want 1", n)
	}
}

func TestSuccessTableAndYAML(t *testing.T) {
	t.Parallel()
	mp := t.TempDir()
	s := fakeRuntime(t, mp)
	r := run(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir(), "--bytes")
	skipIfUnresolvable(t, r)
	if r.code != cli.ExitOK || r.errOut != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.errOut)
	}
	for _, want := range []string{"ROLE", "node", "image", "container (=image)", mp, "123456789", "runtime: containerd v2.4.2 at " + s.Endpoint + " (--runtime-endpoint)"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("table does not contain %q", want)
		}
	}
	r = run(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir(), "-o", "yaml")
	if r.code != cli.ExitOK || !strings.Contains(r.out, "imageFs:") || !strings.Contains(r.out, "usedBytes: 123456789") {
		t.Errorf("yaml: exit %d\n%s", r.code, r.out)
	}
}

// TestEndpointFromEnv: with no flag, $CONTAINER_RUNTIME_ENDPOINT is used.
// t.Setenv rules out t.Parallel.
func TestEndpointFromEnv(t *testing.T) {
	s := fakeRuntime(t, t.TempDir())
	t.Setenv(runtime.EnvEndpoint, s.Endpoint)
	// Keep a crictl config on this machine out of it (env wins anyway).
	t.Setenv("CRI_CONFIG_FILE", filepath.Join(t.TempDir(), "none.yaml"))
	r := run(t, "stats", "--root-dir", t.TempDir())
	skipIfUnresolvable(t, r)
	if r.code != cli.ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.errOut)
	}
	if want := "at " + s.Endpoint + " ($CONTAINER_RUNTIME_ENDPOINT)"; !strings.Contains(r.out, want) {
		t.Errorf("output does not say %q", want)
	}
	if s.Calls("ImageFsInfo") != 1 {
		t.Errorf("the runtime from the environment was not asked")
	}

	// A bad value in the environment is a usage error naming the variable.
	t.Setenv(runtime.EnvEndpoint, "tcp://x")
	run(t, "stats").failed(t, cli.ExitUsage, "invalid runtime endpoint", `"tcp://x"`, "$CONTAINER_RUNTIME_ENDPOINT")

	// The flag still wins over the environment.
	r = run(t, "stats", "--runtime-endpoint", s.Endpoint, "--root-dir", t.TempDir())
	if r.code != cli.ExitOK {
		t.Errorf("flag did not override a bad $%s: exit %d", runtime.EnvEndpoint, r.code)
	}
}
