package crifake_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/internal/crifake"
)

func dial(t *testing.T, s *crifake.Server) (criapi.RuntimeServiceClient, criapi.ImageServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient(s.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return criapi.NewRuntimeServiceClient(conn), criapi.NewImageServiceClient(conn)
}

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	s := crifake.Start(t)
	if !strings.HasPrefix(s.Endpoint, "unix://") || s.Endpoint != "unix://"+s.Path || len(s.Path) > 107 {
		t.Fatalf("Endpoint %q, Path %q", s.Endpoint, s.Path)
	}
	if fi, err := os.Stat(s.Path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v %v", s.Path, fi, err)
	}
	rt, img := dial(t, s)
	v, err := rt.Version(ctx(t, 5*time.Second), &criapi.VersionRequest{})
	if err != nil || !proto.Equal(v, crifake.DefaultVersion()) {
		t.Fatalf("Version = %v, %v", v, err)
	}
	fs, err := img.ImageFsInfo(ctx(t, 5*time.Second), &criapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fs.GetImageFilesystems()[0].GetFsId().GetMountpoint(); got != s.Dir {
		t.Errorf("default image fs mountpoint %q, want the server's dir %q", got, s.Dir)
	}
	if _, err := rt.ListContainers(ctx(t, 5*time.Second), &criapi.ListContainersRequest{}); err != nil {
		t.Fatal(err)
	}
	// A method the fake does not implement answers Unimplemented.
	_, err = rt.Status(ctx(t, 5*time.Second), &criapi.StatusRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Status: %v, want Unimplemented", err)
	}
	if s.Calls("Version") != 1 || s.Calls("/runtime.v1.ImageService/ImageFsInfo") != 1 || s.Calls("Status") != 1 || s.TotalCalls() != 4 {
		t.Errorf("calls: Version %d, ImageFsInfo %d, Status %d, total %d", s.Calls("Version"), s.Calls("ImageFsInfo"), s.Calls("Status"), s.TotalCalls())
	}
}

func TestImageFsInfoError(t *testing.T) {
	t.Parallel()
	s := crifake.Start(t, crifake.WithImageFsInfoError(status.Error(codes.Internal, "boom")))
	_, img := dial(t, s)
	_, err := img.ImageFsInfo(ctx(t, 5*time.Second), &criapi.ImageFsInfoRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Internal || st.Message() != "boom" {
		t.Fatalf("ImageFsInfo: %v", err)
	}
}

func TestServices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                   string
		services               crifake.Services
		versionErr, imageFsErr string
	}{
		{"runtime only", crifake.RuntimeServiceOnly, "", "unknown service runtime.v1.ImageService"},
		{"none", crifake.NoServices, "unknown service runtime.v1.RuntimeService", "unknown service runtime.v1.ImageService"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := crifake.Start(t, crifake.WithServices(tc.services))
			rt, img := dial(t, s)
			_, err := rt.Version(ctx(t, 5*time.Second), &criapi.VersionRequest{})
			check := func(call string, err error, want string) {
				t.Helper()
				if want == "" {
					if err != nil {
						t.Errorf("%s: %v", call, err)
					}
					return
				}
				if st, _ := status.FromError(err); st.Code() != codes.Unimplemented || st.Message() != want {
					t.Errorf("%s: %v, want Unimplemented %q", call, err, want)
				}
			}
			check("Version", err, tc.versionErr)
			_, err = img.ImageFsInfo(ctx(t, 5*time.Second), &criapi.ImageFsInfoRequest{})
			check("ImageFsInfo", err, tc.imageFsErr)
			if s.Calls("Version") != 1 || s.Calls("ImageFsInfo") != 1 {
				t.Errorf("unregistered calls not counted: Version %d, ImageFsInfo %d", s.Calls("Version"), s.Calls("ImageFsInfo"))
			}
		})
	}
}

// TestHangStops checks that a hung server counts the call, holds it past
// the client's deadline and still stops at once.
func TestHangStops(t *testing.T) {
	t.Parallel()
	s := crifake.Start(t, crifake.WithHang())
	rt, _ := dial(t, s)
	start := time.Now()
	_, err := rt.Version(ctx(t, 200*time.Millisecond), &criapi.VersionRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Version on a hung server: %v, want DeadlineExceeded", err)
	}
	if s.Calls("Version") != 1 {
		t.Errorf("hung call not counted")
	}
	// A second call hangs too; Stop must not wait for either.
	done := make(chan error, 1)
	go func() {
		_, err := rt.Version(ctx(t, 10*time.Second), &criapi.VersionRequest{})
		done <- err
	}()
	for s.Calls("Version") < 2 && time.Since(start) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	s.Stop()
	if err := <-done; err == nil {
		t.Errorf("call in flight during Stop succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopping a hung server took %s", d)
	}
	if _, err := os.Stat(s.Path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Stop: %v", err)
	}
	s.Stop() // idempotent
}

// TestSetHang checks that hanging can be switched on mid-test.
func TestSetHang(t *testing.T) {
	t.Parallel()
	s := crifake.Start(t)
	rt, _ := dial(t, s)
	if _, err := rt.Version(ctx(t, 5*time.Second), &criapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	s.SetHang(true)
	if _, err := rt.Version(ctx(t, 200*time.Millisecond), &criapi.VersionRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Version after SetHang(true): %v", err)
	}
}
