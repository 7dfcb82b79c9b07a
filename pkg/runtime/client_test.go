package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/internal/crifake"
)

var sentinels = []error{ErrSocketMissing, ErrNotSocket, ErrPermission, ErrUnavailable, ErrTimeout, ErrUnimplemented}

// checkErr asserts err wraps exactly want (nil: no sentinel at all) and
// that its message contains every phrase.
func checkErr(t *testing.T, err, want error, phrases ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	for _, s := range sentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Errorf("errors.Is(%q, %q) = %v, want %v", err, s, got, !got)
		}
	}
	for _, p := range phrases {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func endpointOf(path string) Endpoint {
	return Endpoint{URL: "unix://" + path, Path: path, Source: "test"}
}

func dialFake(t *testing.T, s *crifake.Server, timeout time.Duration) *Client {
	t.Helper()
	c, err := Dial(endpointOf(s.Path), timeout)
	if err != nil {
		t.Fatalf("Dial(%s): %v", s.Endpoint, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC).UnixNano()
	version := &criapi.VersionResponse{Version: "0.1.0", RuntimeName: "containerd", RuntimeVersion: "v2.4.2", RuntimeApiVersion: "v1"}
	fsInfo := &criapi.ImageFsInfoResponse{
		ImageFilesystems: []*criapi.FilesystemUsage{{
			Timestamp: ts,
			FsId:      &criapi.FilesystemIdentifier{Mountpoint: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"},
			// UsedBytes nil: the wrapper must stay nil, not become 0.
			InodesUsed: &criapi.UInt64Value{Value: 0}, // present but zero
		}, {
			Timestamp:  ts + 1,
			FsId:       &criapi.FilesystemIdentifier{Mountpoint: "/second"},
			UsedBytes:  &criapi.UInt64Value{Value: 1<<63 + 5},
			InodesUsed: &criapi.UInt64Value{Value: 7},
		}},
		ContainerFilesystems: []*criapi.FilesystemUsage{{
			Timestamp:  ts + 2,
			FsId:       &criapi.FilesystemIdentifier{Mountpoint: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"},
			UsedBytes:  &criapi.UInt64Value{Value: 12345},
			InodesUsed: &criapi.UInt64Value{Value: 678},
		}},
	}
	images := []*criapi.Image{{Id: "sha256:aaa", RepoTags: []string{"registry.k8s.io/pause:3.10"}, Size: 1 << 20, Pinned: true}}
	containers := []*criapi.Container{{Id: "c1", PodSandboxId: "p1", ImageRef: "sha256:aaa", State: criapi.ContainerState_CONTAINER_EXITED}}
	s := crifake.Start(t, crifake.WithVersion(version), crifake.WithImageFsInfo(fsInfo), crifake.WithImages(images...), crifake.WithContainers(containers...))
	c := dialFake(t, s, 5*time.Second)
	ctx := context.Background()

	if c.Endpoint() != endpointOf(s.Path) || c.Timeout() != 5*time.Second {
		t.Errorf("Endpoint() = %+v, Timeout() = %s", c.Endpoint(), c.Timeout())
	}
	gotV, err := c.Version(ctx)
	if err != nil || !proto.Equal(gotV, version) {
		t.Errorf("Version = %v, %v; want %v", gotV, err, version)
	}
	gotFs, err := c.ImageFsInfo(ctx)
	if err != nil || !proto.Equal(gotFs, fsInfo) {
		t.Errorf("ImageFsInfo = %v, %v; want %v", gotFs, err, fsInfo)
	}
	if gotFs != nil {
		if u := gotFs.ImageFilesystems[0].UsedBytes; u != nil {
			t.Errorf("nil used_bytes arrived as %v", u)
		}
		if i := gotFs.ImageFilesystems[0].InodesUsed; i == nil || i.Value != 0 {
			t.Errorf("zero inodes_used arrived as %v", i)
		}
	}
	gotImages, err := c.ListImages(ctx)
	if err != nil || len(gotImages) != 1 || !proto.Equal(gotImages[0], images[0]) {
		t.Errorf("ListImages = %v, %v", gotImages, err)
	}
	gotContainers, err := c.ListContainers(ctx)
	if err != nil || len(gotContainers) != 1 || !proto.Equal(gotContainers[0], containers[0]) {
		t.Errorf("ListContainers = %v, %v", gotContainers, err)
	}
	for _, m := range []string{"Version", "ImageFsInfo", "ListImages", "ListContainers"} {
		if n := s.Calls(m); n != 1 {
			t.Errorf("server saw %d %s calls, want 1", n, m)
		}
	}
}

func TestDialDefaultTimeout(t *testing.T) {
	t.Parallel()
	s := crifake.Start(t)
	for _, d := range []time.Duration{0, -time.Second} {
		c := dialFake(t, s, d)
		if c.Timeout() != DefaultTimeout {
			t.Errorf("Dial(timeout %s).Timeout() = %s, want %s", d, c.Timeout(), DefaultTimeout)
		}
	}
	if s.TotalCalls() != 0 {
		t.Errorf("Dial made %d calls; it must not talk to the runtime", s.TotalCalls())
	}
}

// Dial's own checks happen before any call, so they name the endpoint only.
func TestDialErrors(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	regular := filepath.Join(dir, "regular.sock")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		want       error
		phrases    []string
	}{
		{"missing socket", filepath.Join(dir, "missing.sock"), ErrSocketMissing, []string{"socket does not exist"}},
		{"missing parent dir", filepath.Join(dir, "nodir", "x.sock"), ErrSocketMissing, nil},
		{"regular file", regular, ErrNotSocket, []string{"not a unix socket"}},
		{"directory", dir, ErrNotSocket, []string{"d---------"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Dial(endpointOf(tc.path), time.Second)
			if c != nil {
				c.Close()
				t.Fatalf("Dial(%s) returned a client", tc.path)
			}
			checkErr(t, err, tc.want, append(tc.phrases, "unix://"+tc.path)...)
		})
	}
}

func TestCallErrors(t *testing.T) {
	t.Parallel()

	t.Run("hung runtime times out", func(t *testing.T) {
		t.Parallel()
		s := crifake.Start(t, crifake.WithHang())
		c := dialFake(t, s, 300*time.Millisecond)
		start := time.Now()
		_, err := c.Version(context.Background())
		elapsed := time.Since(start)
		checkErr(t, err, ErrTimeout, "CRI Version", s.Endpoint, "300ms")
		if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
			t.Errorf("Version on a hung runtime returned after %s, want ~300ms", elapsed)
		}
		if s.Calls("Version") != 1 {
			t.Errorf("the call never reached the server (%d calls): the timeout is not the hang's", s.Calls("Version"))
		}
		// Each call gets its own deadline, not a share of one.
		start = time.Now()
		_, err = c.ImageFsInfo(context.Background())
		checkErr(t, err, ErrTimeout, "CRI ImageFsInfo", s.Endpoint)
		if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
			t.Errorf("second call returned after %s", d)
		}
	})

	t.Run("caller's deadline shorter than the timeout", func(t *testing.T) {
		t.Parallel()
		s := crifake.Start(t, crifake.WithHang())
		c := dialFake(t, s, 10*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Version(ctx)
		checkErr(t, err, ErrTimeout, "CRI Version", s.Endpoint)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the caller's deadline was ignored: %s", d)
		}
	})

	t.Run("no ImageService", func(t *testing.T) {
		t.Parallel()
		s := crifake.Start(t, crifake.WithServices(crifake.RuntimeServiceOnly))
		c := dialFake(t, s, 5*time.Second)
		if _, err := c.Version(context.Background()); err != nil {
			t.Fatalf("Version: %v", err)
		}
		_, err := c.ImageFsInfo(context.Background())
		checkErr(t, err, ErrUnimplemented, "CRI ImageFsInfo", s.Endpoint, "unknown service runtime.v1.ImageService")
		_, err = c.ListImages(context.Background())
		checkErr(t, err, ErrUnimplemented, "CRI ListImages", s.Endpoint)
	})

	t.Run("no CRI services at all", func(t *testing.T) {
		t.Parallel()
		s := crifake.Start(t, crifake.WithServices(crifake.NoServices))
		c := dialFake(t, s, 5*time.Second)
		_, err := c.Version(context.Background())
		checkErr(t, err, ErrUnimplemented, "CRI Version", s.Endpoint, "unknown service runtime.v1.RuntimeService")
		_, err = c.ListContainers(context.Background())
		checkErr(t, err, ErrUnimplemented, "CRI ListContainers", s.Endpoint)
	})

	t.Run("other gRPC errors pass through with their code", func(t *testing.T) {
		t.Parallel()
		s := crifake.Start(t, crifake.WithImageFsInfoError(status.Error(codes.Internal, "snapshotter exploded")))
		c := dialFake(t, s, 5*time.Second)
		_, err := c.ImageFsInfo(context.Background())
		checkErr(t, err, nil, "CRI ImageFsInfo", s.Endpoint, "snapshotter exploded")
		if status.Code(err) != codes.Internal {
			t.Errorf("status.Code(%q) = %s, want Internal", err, status.Code(err))
		}
	})

	t.Run("socket removed after Dial", func(t *testing.T) {
		t.Parallel()
		s := crifake.Start(t)
		c := dialFake(t, s, 5*time.Second)
		s.Stop() // closes the listener, which unlinks the socket
		_, err := c.Version(context.Background())
		checkErr(t, err, ErrSocketMissing, "CRI Version", s.Endpoint, "no such file or directory")
	})

	t.Run("stale socket nobody listens on", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(shortTempDir(t), "stale.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
		c, err := Dial(endpointOf(path), 5*time.Second)
		if err != nil {
			t.Fatalf("Dial of a stale socket: %v", err)
		}
		defer c.Close()
		start := time.Now()
		_, err = c.Version(context.Background())
		checkErr(t, err, ErrUnavailable, "CRI Version", "unix://"+path, "connection refused")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a refused connection took %s to report", d)
		}
	})
}

func TestFromGRPC(t *testing.T) {
	t.Parallel()
	const denied = `connection error: desc = "transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: permission denied"`
	const missing = `connection error: desc = "transport: Error while dialing: dial unix /run/x.sock: connect: no such file or directory"`
	plain := errors.New("plain")
	internal := status.Error(codes.Internal, "internal")
	for _, tc := range []struct {
		name     string
		in       error
		want     error // sentinel, nil for none
		same     bool  // returned unchanged
		contains string
	}{
		{"Unavailable permission denied", status.Error(codes.Unavailable, denied), ErrPermission, false, "connect: permission denied"},
		{"Unavailable no such file", status.Error(codes.Unavailable, missing), ErrSocketMissing, false, "no such file or directory"},
		{"Unavailable other", status.Error(codes.Unavailable, "connection refused"), ErrUnavailable, false, "connection refused"},
		{"DeadlineExceeded", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), ErrTimeout, false, "context deadline exceeded"},
		{"context.DeadlineExceeded", context.DeadlineExceeded, ErrTimeout, false, "context deadline exceeded"},
		{"wrapped context.DeadlineExceeded", fmt.Errorf("x: %w", context.DeadlineExceeded), ErrTimeout, false, "x: context deadline exceeded"},
		{"Unimplemented", status.Error(codes.Unimplemented, "unknown service runtime.v1.ImageService"), ErrUnimplemented, false, "unknown service runtime.v1.ImageService"},
		{"Internal passes through", internal, nil, true, "internal"},
		{"non-status error passes through", plain, nil, true, "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := fromGRPC(tc.in)
			checkErr(t, got, tc.want, tc.contains)
			if tc.same && got != tc.in {
				t.Errorf("fromGRPC(%v) = %v, want it unchanged", tc.in, got)
			}
		})
	}
	if fromGRPC(nil) != nil {
		t.Error("fromGRPC(nil) != nil")
	}
}

// Environment of the permission helper process.
const (
	permHelperEnv   = "IMAGEFS_RUNTIME_TEST_PERM_HELPER"
	permEndpointEnv = "IMAGEFS_RUNTIME_TEST_PERM_ENDPOINT"
)

// TestPermissionHelper is not a test: TestPermissionDenied runs the test
// binary as another user with only this function selected. It dials the
// endpoint, calls Version and prints the outcome.
func TestPermissionHelper(t *testing.T) {
	if os.Getenv(permHelperEnv) != "1" {
		return
	}
	path := os.Getenv(permEndpointEnv)
	err := func() error {
		c, err := Dial(endpointOf(path), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Version(context.Background())
		return err
	}()
	fmt.Printf("\nuid=%d\nerr=%v\nErrPermission=%v\n", os.Getuid(), err, errors.Is(err, ErrPermission))
}

// TestPermissionDenied runs Dial+Version as uid 65534 against a root-owned
// socket: once where the socket's directory cannot be searched (Dial's stat
// fails) and once where the directory can but the socket is 0600 (connect(2)
// fails inside gRPC). It needs root to switch user.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper process as uid 65534")
	}
	// The test binary lives in a 0700 go-build dir: copy it where uid
	// 65534 can execute it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binDir := shortTempDir(t)
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "runtime.test")
	copyFile(t, self, bin, 0o755)

	for _, tc := range []struct {
		name          string
		dirMode       os.FileMode
		sockMode      os.FileMode
		wantInMessage []string
	}{
		{"socket dir not searchable", 0o700, 0o777, []string{"runtime endpoint unix://"}},
		{"socket not writable", 0o755, 0o600, []string{"CRI Version on unix://", "permission denied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := crifake.Start(t)
			if err := os.Chmod(s.Dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(s.Path, tc.sockMode); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-test.run=^TestPermissionHelper$", "-test.count=1")
			cmd.Dir = "/"
			cmd.Env = append(os.Environ(), permHelperEnv+"=1", permEndpointEnv+"="+s.Path)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				var exitErr *exec.ExitError
				if !errors.As(err, &exitErr) {
					t.Skipf("cannot run a process as uid 65534 here: %v", err)
				}
				t.Fatalf("helper failed: %v\n%s", err, out)
			}
			got := string(out)
			if i := strings.Index(got, "\nerr="); i >= 0 {
				t.Logf("helper's error: %s", strings.TrimPrefix(strings.SplitN(got[i:], "\nErrPermission", 2)[0], "\nerr="))
			}
			if !strings.Contains(got, "\nuid=65534\n") {
				t.Fatalf("helper did not run as uid 65534:\n%s", got)
			}
			if !strings.Contains(got, "\nErrPermission=true\n") {
				t.Errorf("helper's error is not ErrPermission:\n%s", got)
			}
			for _, p := range append(tc.wantInMessage, s.Endpoint) {
				if !strings.Contains(got, p) {
					t.Errorf("helper's error does not contain %q:\n%s", p, got)
				}
			}
			if s.TotalCalls() != 0 {
				t.Errorf("the server received %d calls through a socket the user may not use", s.TotalCalls())
			}
		})
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
