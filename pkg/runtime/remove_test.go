package runtime

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rmServer is a CRI server for the GC calls: ContainerStatus from a map,
// RemoveImage recorded; hang blocks both until the test ends.
type rmServer struct {
	criapi.UnimplementedRuntimeServiceServer
	criapi.UnimplementedImageServiceServer
	statuses  map[string]*criapi.ContainerStatus
	removeErr error
	hang      bool
	release   chan struct{}

	mu      sync.Mutex
	removed []*criapi.ImageSpec
	reqs    []*criapi.ContainerStatusRequest
}

func (s *rmServer) ContainerStatus(ctx context.Context, req *criapi.ContainerStatusRequest) (*criapi.ContainerStatusResponse, error) {
	if s.hang {
		<-s.release
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	st, ok := s.statuses[req.GetContainerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find container %q: not found", req.GetContainerId())
	}
	return &criapi.ContainerStatusResponse{Status: st}, nil
}

func (s *rmServer) RemoveImage(ctx context.Context, req *criapi.RemoveImageRequest) (*criapi.RemoveImageResponse, error) {
	if s.hang {
		<-s.release
	}
	s.mu.Lock()
	s.removed = append(s.removed, req.GetImage())
	s.mu.Unlock()
	if s.removeErr != nil {
		return nil, s.removeErr
	}
	return &criapi.RemoveImageResponse{}, nil
}

func startRmServer(t *testing.T, s *rmServer) *Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "rm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "cri.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s.release = make(chan struct{})
	srv := grpc.NewServer()
	criapi.RegisterRuntimeServiceServer(srv, s)
	criapi.RegisterImageServiceServer(srv, s)
	go srv.Serve(lis)
	t.Cleanup(func() { close(s.release); srv.Stop() })
	c, err := Dial(Endpoint{URL: "unix://" + path, Path: path, Source: "test"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRemoveImage(t *testing.T) {
	t.Parallel()
	s := &rmServer{}
	c := startRmServer(t, s)
	var svc GCService = c
	if err := svc.RemoveImage(context.Background(), "sha256:abc"); err != nil {
		t.Fatal(err)
	}
	// The kubelet sends an ImageSpec with only Image set.
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.removed) != 1 || !proto.Equal(s.removed[0], &criapi.ImageSpec{Image: "sha256:abc"}) {
		t.Errorf("server saw %v", s.removed)
	}
}

func TestRemoveImageErrors(t *testing.T) {
	t.Parallel()
	t.Run("runtime error names the call and image", func(t *testing.T) {
		t.Parallel()
		c := startRmServer(t, &rmServer{removeErr: status.Error(codes.Unknown, "failed to delete image reference: image is in use")})
		err := c.RemoveImage(context.Background(), "sha256:abc")
		if err == nil || !strings.Contains(err.Error(), "CRI RemoveImage sha256:abc on unix://") || !strings.Contains(err.Error(), "image is in use") {
			t.Errorf("err = %v", err)
		}
		if status.Code(err) != codes.Unknown {
			t.Errorf("gRPC code lost: %v", status.Code(err))
		}
	})
	t.Run("hung runtime times out", func(t *testing.T) {
		t.Parallel()
		c := startRmServer(t, &rmServer{hang: true})
		start := time.Now()
		err := c.RemoveImage(context.Background(), "sha256:abc")
		if !errors.Is(err, ErrTimeout) || time.Since(start) > 3*time.Second {
			t.Errorf("err = %v after %v, want ErrTimeout after ~1s", err, time.Since(start))
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		c := startRmServer(t, &rmServer{hang: true})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		start := time.Now()
		err := c.RemoveImage(ctx, "sha256:abc")
		if err == nil || status.Code(err) != codes.Canceled || time.Since(start) > 900*time.Millisecond {
			t.Errorf("err = %v (%v) after %v, want Canceled quickly", err, status.Code(err), time.Since(start))
		}
	})
	t.Run("unimplemented", func(t *testing.T) {
		t.Parallel()
		dir, err := os.MkdirTemp("", "rm-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path := filepath.Join(dir, "cri.sock")
		lis, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer() // no services
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		c, err := Dial(Endpoint{URL: "unix://" + path, Path: path}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.RemoveImage(context.Background(), "x"); !errors.Is(err, ErrUnimplemented) {
			t.Errorf("RemoveImage: %v", err)
		}
		if _, err := c.ContainerStatus(context.Background(), "x"); !errors.Is(err, ErrUnimplemented) {
			t.Errorf("ContainerStatus: %v", err)
		}
	})
}

func TestContainerStatus(t *testing.T) {
	t.Parallel()
	want := &criapi.ContainerStatus{Id: "c1", ImageId: "sha256:app", Mounts: []*criapi.Mount{
		{ContainerPath: "/data", Image: &criapi.ImageSpec{Image: "sha256:vol"}},
	}}
	s := &rmServer{statuses: map[string]*criapi.ContainerStatus{"c1": want}}
	c := startRmServer(t, s)
	got, err := c.ContainerStatus(context.Background(), "c1")
	if err != nil || !proto.Equal(got, want) {
		t.Errorf("ContainerStatus = %v, %v", got, err)
	}
	s.mu.Lock()
	if len(s.reqs) != 1 || s.reqs[0].GetVerbose() {
		t.Errorf("requests %v: want one, not verbose (as the kubelet asks)", s.reqs)
	}
	s.mu.Unlock()
	// NotFound keeps its gRPC code so callers can tell a vanished container.
	_, err = c.ContainerStatus(context.Background(), "gone")
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "CRI ContainerStatus gone") {
		t.Errorf("missing container: %v (code %v)", err, status.Code(err))
	}
}
