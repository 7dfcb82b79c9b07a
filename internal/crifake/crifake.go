// Package crifake is a fake CRI runtime for tests: a real gRPC server on a
// unix socket that speaks k8s.io/cri-api runtime/v1, so clients exercise the
// same wire format, dialing and error codes as against containerd or CRI-O.
//
// It answers Version, ImageFsInfo, ListImages and ListContainers with canned
// responses, can hang every call (a SIGSTOPped runtime: the socket accepts,
// nothing answers) and can leave out ImageService or both services (calls
// then fail with codes.Unimplemented, as on containerd without its CRI
// plugin). Every other CRI method answers Unimplemented.
package crifake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SocketName is the socket's file name inside the server's directory.
const SocketName = "cri.sock"

// maxSocketPath is sun_path's size minus the terminating NUL.
const maxSocketPath = 107

// Services says which CRI services the server registers.
type Services int

const (
	// AllServices registers RuntimeService and ImageService (the default).
	AllServices Services = iota
	// RuntimeServiceOnly registers RuntimeService: ImageService calls fail
	// with "unknown service runtime.v1.ImageService".
	RuntimeServiceOnly
	// NoServices registers nothing: every call fails with Unimplemented,
	// like a containerd whose CRI plugin did not load.
	NoServices
)

// DefaultVersion is what Version answers unless WithVersion says otherwise.
func DefaultVersion() *criapi.VersionResponse {
	return &criapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       "crifake",
		RuntimeVersion:    "v0.0.0-crifake",
		RuntimeApiVersion: "v1",
	}
}

// ImageFs builds an ImageFsInfoResponse like containerd's: one image
// filesystem and one container filesystem, both at mountpoint, with the
// given usage and timestamp.
func ImageFs(mountpoint string, usedBytes, inodesUsed uint64, ts time.Time) *criapi.ImageFsInfoResponse {
	usage := func() *criapi.FilesystemUsage {
		return &criapi.FilesystemUsage{
			Timestamp:  ts.UnixNano(),
			FsId:       &criapi.FilesystemIdentifier{Mountpoint: mountpoint},
			UsedBytes:  &criapi.UInt64Value{Value: usedBytes},
			InodesUsed: &criapi.UInt64Value{Value: inodesUsed},
		}
	}
	return &criapi.ImageFsInfoResponse{
		ImageFilesystems:     []*criapi.FilesystemUsage{usage()},
		ContainerFilesystems: []*criapi.FilesystemUsage{usage()},
	}
}

// Option configures a Server.
type Option func(*config)

type config struct {
	version    *criapi.VersionResponse
	imageFs    *criapi.ImageFsInfoResponse
	imageFsErr error
	images     []*criapi.Image
	containers []*criapi.Container
	hang       bool
	services   Services
}

// WithVersion sets the Version response (nil: an empty one).
func WithVersion(v *criapi.VersionResponse) Option {
	return func(c *config) { c.version = v }
}

// WithImageFsInfo sets the ImageFsInfo response (nil: an empty one, no
// filesystems). The default is
// ImageFs(<the server's own temp dir>, 1 GiB, 1000, <start time>).
func WithImageFsInfo(r *criapi.ImageFsInfoResponse) Option {
	return func(c *config) { c.imageFs, c.imageFsErr = r, nil }
}

// WithImageFsInfoError makes ImageFsInfo fail with err (use status.Error to
// choose the gRPC code; a plain error arrives as codes.Unknown).
func WithImageFsInfoError(err error) Option {
	return func(c *config) { c.imageFsErr = err }
}

// WithImages sets the ListImages response.
func WithImages(images ...*criapi.Image) Option {
	return func(c *config) { c.images = images }
}

// WithContainers sets the ListContainers response.
func WithContainers(containers ...*criapi.Container) Option {
	return func(c *config) { c.containers = containers }
}

// WithHang starts the server hung: see Server.SetHang.
func WithHang() Option {
	return func(c *config) { c.hang = true }
}

// WithServices chooses which CRI services are registered.
func WithServices(s Services) Option {
	return func(c *config) { c.services = s }
}

// Server is a running fake CRI runtime.
type Server struct {
	// Endpoint is the CRI endpoint URL, "unix://" + Path.
	Endpoint string
	// Path is the unix socket.
	Path string
	// Dir is the server's private temp dir holding the socket; it is
	// removed when the test ends.
	Dir string

	cfg       config
	srv       *grpc.Server
	hang      atomic.Bool
	release   chan struct{}  // closed by Stop: hung calls return
	handlers  sync.WaitGroup // calls in our interceptors
	stopOnce  sync.Once
	stopped   bool  // under mu: no new handlers.Add after Stop
	serveErr  error // Serve's result, set before serveDone closes
	serveDone chan struct{}

	mu    sync.Mutex
	calls map[string]int // full method name → calls received
}

// Start starts a fake runtime on a unix socket in a fresh short temp dir
// and stops it (even when hung) and removes the dir when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "crifake-")
	if err != nil {
		t.Fatalf("crifake: %v", err)
	}
	path := filepath.Join(dir, SocketName)
	if len(path) > maxSocketPath {
		os.RemoveAll(dir)
		// $TMPDIR is too deep for a socket; /tmp always fits.
		if dir, err = os.MkdirTemp("/tmp", "crifake-"); err != nil {
			t.Fatalf("crifake: %v", err)
		}
		path = filepath.Join(dir, SocketName)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	s := &Server{
		Endpoint:  "unix://" + path,
		Path:      path,
		Dir:       dir,
		release:   make(chan struct{}),
		serveDone: make(chan struct{}),
		calls:     make(map[string]int),
	}
	s.cfg = config{
		version: DefaultVersion(),
		imageFs: ImageFs(dir, 1<<30, 1000, time.Now()),
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.hang.Store(s.cfg.hang)

	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("crifake: listen on %s: %v", path, err)
	}
	s.srv = grpc.NewServer(
		grpc.UnaryInterceptor(s.unary),
		grpc.StreamInterceptor(s.stream),
		grpc.UnknownServiceHandler(s.unknownService),
	)
	if s.cfg.services != NoServices {
		criapi.RegisterRuntimeServiceServer(s.srv, &runtimeService{s: s})
	}
	if s.cfg.services == AllServices {
		criapi.RegisterImageServiceServer(s.srv, &imageService{s: s})
	}
	go func() {
		defer close(s.serveDone)
		s.serveErr = s.srv.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		// ErrServerStopped: Stop came before Serve got going.
		if err := s.serveErr; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("crifake: serve: %v", err)
		}
	})
	return s
}

// Stop stops the server at once, closing every connection and releasing
// hung calls, and removes the socket: when it returns nothing listens and
// the socket file is gone. It is idempotent; Start's cleanup calls it, tests
// may call it earlier (e.g. "the runtime went away").
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		// Stop, not GracefulStop: GracefulStop waits for hung calls.
		// Stop does not wait for handlers either, so release them and
		// wait here, leaving no goroutine behind.
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.srv.Stop()
		// Serve closes (and unlinks) the listener on its way out, also
		// when Stop came first; wait for that.
		<-s.serveDone
		close(s.release)
		s.handlers.Wait()
	})
}

// SetHang switches hanging on or off. While on, every call (known or not)
// is counted and then blocks until the server stops, ignoring the client's
// deadline, as a SIGSTOPped runtime does. Calls already hung stay hung.
func (s *Server) SetHang(on bool) { s.hang.Store(on) }

// Calls returns how many calls of method were received, hung or failed
// ones included. method is a full gRPC name
// ("/runtime.v1.ImageService/ImageFsInfo") or just the method
// ("ImageFsInfo").
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasPrefix(method, "/") {
		return s.calls[method]
	}
	n := 0
	for full, c := range s.calls {
		if strings.HasSuffix(full, "/"+method) {
			n += c
		}
	}
	return n
}

// TotalCalls returns how many calls were received in all.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// enter counts a call and blocks while hung. It reports false when the
// server stopped before or while the call hung; otherwise the caller must
// call s.handlers.Done.
func (s *Server) enter(method string) bool {
	s.mu.Lock()
	s.calls[method]++
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	if s.hang.Load() {
		<-s.release
		s.handlers.Done()
		return false
	}
	return true
}

var errStopped = status.Error(codes.Unavailable, "crifake: server stopped")

func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !s.enter(info.FullMethod) {
		return nil, errStopped
	}
	defer s.handlers.Done()
	return handler(ctx, req)
}

// stream covers streaming methods and unknown services/methods, which gRPC
// routes through the stream path.
func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !s.enter(info.FullMethod) {
		return errStopped
	}
	defer s.handlers.Done()
	return handler(srv, ss)
}

// unknownService answers like grpc-go's own server does without an
// UnknownServiceHandler; the handler exists so such calls are counted and
// can hang.
func (s *Server) unknownService(_ any, ss grpc.ServerStream) error {
	full, _ := grpc.MethodFromServerStream(ss)
	full = strings.TrimPrefix(full, "/")
	service, method := full, ""
	if i := strings.LastIndex(full, "/"); i >= 0 {
		service, method = full[:i], full[i+1:]
	}
	if _, known := s.srv.GetServiceInfo()[service]; known {
		return status.Errorf(codes.Unimplemented, "unknown method %v for service %v", method, service)
	}
	return status.Errorf(codes.Unimplemented, "unknown service %v", service)
}

func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }

type runtimeService struct {
	criapi.UnimplementedRuntimeServiceServer
	s *Server
}

func (r *runtimeService) Version(context.Context, *criapi.VersionRequest) (*criapi.VersionResponse, error) {
	if r.s.cfg.version == nil {
		return &criapi.VersionResponse{}, nil
	}
	return clone(r.s.cfg.version), nil
}

func (r *runtimeService) ListContainers(context.Context, *criapi.ListContainersRequest) (*criapi.ListContainersResponse, error) {
	resp := &criapi.ListContainersResponse{}
	for _, c := range r.s.cfg.containers {
		resp.Containers = append(resp.Containers, clone(c))
	}
	return resp, nil
}

type imageService struct {
	criapi.UnimplementedImageServiceServer
	s *Server
}

func (i *imageService) ImageFsInfo(context.Context, *criapi.ImageFsInfoRequest) (*criapi.ImageFsInfoResponse, error) {
	if err := i.s.cfg.imageFsErr; err != nil {
		return nil, err
	}
	if i.s.cfg.imageFs == nil {
		return &criapi.ImageFsInfoResponse{}, nil
	}
	return clone(i.s.cfg.imageFs), nil
}

func (i *imageService) ListImages(context.Context, *criapi.ListImagesRequest) (*criapi.ListImagesResponse, error) {
	resp := &criapi.ListImagesResponse{}
	for _, img := range i.s.cfg.images {
		resp.Images = append(resp.Images, clone(img))
	}
	return resp, nil
}

// String describes the server for test logs.
func (s *Server) String() string {
	return fmt.Sprintf("crifake at %s (hang=%v, services=%d)", s.Endpoint, s.hang.Load(), s.cfg.services)
}
