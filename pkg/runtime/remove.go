package runtime

import (
	"context"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// GCService is Service plus what image garbage collection needs: the
// container status (image volumes count as images in use) and RemoveImage,
// the only call imagefs makes that changes the runtime's state. It is a
// separate interface so read-only implementations of Service stay valid.
type GCService interface {
	Service
	ContainerStatus(ctx context.Context, id string) (*criapi.ContainerStatus, error)
	RemoveImage(ctx context.Context, image string) error
}

var _ GCService = (*Client)(nil)

// ContainerStatus returns one container's status (not verbose), as the
// kubelet's GetContainerStatus asks for it.
func (c *Client) ContainerStatus(ctx context.Context, id string) (*criapi.ContainerStatus, error) {
	var resp *criapi.ContainerStatusResponse
	err := c.call(ctx, "ContainerStatus "+id, func(ctx context.Context) (err error) {
		resp, err = c.runtime.ContainerStatus(ctx, &criapi.ContainerStatusRequest{ContainerId: id})
		return err
	})
	return resp.GetStatus(), err
}

// RemoveImage removes an image, given by id, tag or digest, as the
// kubelet's image GC does (ImageSpec with only Image set). Removing an
// image that does not exist is not an error (CRI requires idempotence).
func (c *Client) RemoveImage(ctx context.Context, image string) error {
	return c.call(ctx, "RemoveImage "+image, func(ctx context.Context) error {
		_, err := c.images.RemoveImage(ctx, &criapi.RemoveImageRequest{Image: &criapi.ImageSpec{Image: image}})
		return err
	})
}
