package runtime

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultTimeout bounds each CRI call, as crictl's --timeout default does.
const DefaultTimeout = 2 * time.Second

// maxMsgSize matches the kubelet's CRI client limit (16 MiB).
const maxMsgSize = 16 * 1024 * 1024

// Service is the read-only part of CRI imagefs uses. *Client implements it;
// tests may substitute their own.
type Service interface {
	Version(ctx context.Context) (*criapi.VersionResponse, error)
	ImageFsInfo(ctx context.Context) (*criapi.ImageFsInfoResponse, error)
	ListImages(ctx context.Context) ([]*criapi.Image, error)
	ListContainers(ctx context.Context) ([]*criapi.Container, error)
}

// Client is a CRI client on one endpoint. Every call gets its own deadline.
type Client struct {
	endpoint Endpoint
	timeout  time.Duration
	conn     *grpc.ClientConn
	runtime  criapi.RuntimeServiceClient
	images   criapi.ImageServiceClient
}

var _ Service = (*Client)(nil)

// Dial checks that the endpoint's socket exists and prepares a connection;
// the connection itself is made by the first call, under that call's deadline.
func Dial(ep Endpoint, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	fi, err := os.Stat(ep.Path)
	switch {
	case os.IsNotExist(err):
		return nil, fmt.Errorf("runtime endpoint %s: %w", ep.URL, ErrSocketMissing)
	case os.IsPermission(err):
		return nil, fmt.Errorf("runtime endpoint %s: %w", ep.URL, ErrPermission)
	case err != nil:
		return nil, fmt.Errorf("runtime endpoint %s: %w", ep.URL, err)
	case fi.Mode()&fs.ModeSocket == 0:
		return nil, fmt.Errorf("runtime endpoint %s (%s): %w", ep.URL, fi.Mode().Type(), ErrNotSocket)
	}
	conn, err := grpc.NewClient("unix://"+ep.Path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("runtime endpoint %s: %w", ep.URL, err)
	}
	return &Client{
		endpoint: ep,
		timeout:  timeout,
		conn:     conn,
		runtime:  criapi.NewRuntimeServiceClient(conn),
		images:   criapi.NewImageServiceClient(conn),
	}, nil
}

// Endpoint returns the endpoint this client talks to.
func (c *Client) Endpoint() Endpoint { return c.endpoint }

// Timeout returns the per-call deadline.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// call runs fn under the client's per-call deadline and names the call and
// endpoint in any error.
func (c *Client) call(ctx context.Context, name string, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		return fmt.Errorf("CRI %s on %s (timeout %s): %w", name, c.endpoint.URL, c.timeout, fromGRPC(err))
	}
	return nil
}

// Version asks the runtime for its name and version.
func (c *Client) Version(ctx context.Context) (*criapi.VersionResponse, error) {
	var resp *criapi.VersionResponse
	err := c.call(ctx, "Version", func(ctx context.Context) (err error) {
		resp, err = c.runtime.Version(ctx, &criapi.VersionRequest{})
		return err
	})
	return resp, err
}

// ImageFsInfo returns the runtime's image and container filesystem usage.
func (c *Client) ImageFsInfo(ctx context.Context) (*criapi.ImageFsInfoResponse, error) {
	var resp *criapi.ImageFsInfoResponse
	err := c.call(ctx, "ImageFsInfo", func(ctx context.Context) (err error) {
		resp, err = c.images.ImageFsInfo(ctx, &criapi.ImageFsInfoRequest{})
		return err
	})
	return resp, err
}

// ListImages returns every image the runtime knows.
func (c *Client) ListImages(ctx context.Context) ([]*criapi.Image, error) {
	var resp *criapi.ListImagesResponse
	err := c.call(ctx, "ListImages", func(ctx context.Context) (err error) {
		resp, err = c.images.ListImages(ctx, &criapi.ListImagesRequest{})
		return err
	})
	return resp.GetImages(), err
}

// ListContainers returns every container, in any state.
func (c *Client) ListContainers(ctx context.Context) ([]*criapi.Container, error) {
	var resp *criapi.ListContainersResponse
	err := c.call(ctx, "ListContainers", func(ctx context.Context) (err error) {
		resp, err = c.runtime.ListContainers(ctx, &criapi.ListContainersRequest{})
		return err
	})
	return resp.GetContainers(), err
}
