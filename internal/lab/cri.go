package lab

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criCallTimeout bounds every CRI call: a stopped (SIGSTOP) containerd accepts
// connections and then never answers, so only our own deadline ends a call.
const criCallTimeout = 2 * time.Second

// dialCRI opens a client to a containerd socket. The reconnect backoff is kept
// at 50 ms so readiness polling is not slowed by gRPC's default 1 s+ backoff
// while the socket does not exist yet.
func dialCRI(socket string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1, MaxDelay: 50 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("CRI client for %s: %w", socket, err)
	}
	return conn, nil
}

// ImageFsInfo asks the instance's CRI image service for ImageFsInfo.
func (c *Containerd) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	conn, err := dialCRI(c.Socket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, criCallTimeout)
	defer cancel()
	resp, err := runtimeapi.NewImageServiceClient(conn).ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("ImageFsInfo on %s: %w", c.Endpoint, err)
	}
	return resp, nil
}

// WaitImageFsInfo polls ImageFsInfo every 100 ms until done accepts the
// response or ctx ends; CRI refreshes its snapshot stats only every
// StatsCollectPeriod seconds. It returns the last response it saw.
func (c *Containerd) WaitImageFsInfo(ctx context.Context, done func(*runtimeapi.ImageFsInfoResponse) bool) (*runtimeapi.ImageFsInfoResponse, error) {
	var last *runtimeapi.ImageFsInfoResponse
	var lastErr error
	for {
		resp, err := c.ImageFsInfo(ctx)
		if err == nil {
			last, lastErr = resp, nil
			if done(resp) {
				return resp, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("waiting for ImageFsInfo on %s: %w (last error: %v)", c.Endpoint, ctx.Err(), lastErr)
			}
			return last, fmt.Errorf("waiting for ImageFsInfo on %s: %w (last response: %v)", c.Endpoint, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// UsedBytes is the first image filesystem's usedBytes (the one the kubelet
// reads), or 0 if absent.
func UsedBytes(resp *runtimeapi.ImageFsInfoResponse) uint64 {
	if resp == nil || len(resp.GetImageFilesystems()) == 0 {
		return 0
	}
	return resp.GetImageFilesystems()[0].GetUsedBytes().GetValue()
}

// removePods stops and removes every pod sandbox, best effort: a SIGTERMed
// containerd leaves shims, container processes and mounts of running pods
// behind (measured), so pods go first.
func (c *Containerd) removePods() {
	conn, err := dialCRI(c.Socket)
	if err != nil {
		return
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	call := func(fn func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return fn(ctx)
	}
	var pods []*runtimeapi.PodSandbox
	if err := call(func(ctx context.Context) error {
		resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		pods = resp.GetItems()
		return err
	}); err != nil {
		return
	}
	for _, p := range pods {
		_ = call(func(ctx context.Context) error {
			_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
			return err
		})
		_ = call(func(ctx context.Context) error {
			_, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
			return err
		})
	}
}
