package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRIConfigSnapshotter asks containerd's CRI plugin on socket for its
// configured snapshotter: CRI Status with verbose set returns the plugin's
// config as JSON, and containerd 1.x has the snapshotter at
// config.containerd.snapshotter. containerd 2.x moved it to the image
// service's config, which Status does not return: then "" and no error.
func CRIConfigSnapshotter(ctx context.Context, socket string, timeout time.Duration) (string, error) {
	conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(socket, "unix://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("CRI Status on %s: %w", socket, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := criapi.NewRuntimeServiceClient(conn).Status(ctx, &criapi.StatusRequest{Verbose: true})
	if err != nil {
		return "", fmt.Errorf("CRI Status on %s (timeout %s): %w", socket, timeout, classify(err))
	}
	return SnapshotterFromStatusInfo(resp.GetInfo()), nil
}

// SnapshotterFromStatusInfo reads config.containerd.snapshotter from a CRI
// Status verbose info map ("" if absent).
func SnapshotterFromStatusInfo(info map[string]string) string {
	var cfg struct {
		Containerd struct {
			Snapshotter string `json:"snapshotter"`
		} `json:"containerd"`
	}
	if err := json.Unmarshal([]byte(info["config"]), &cfg); err != nil {
		return ""
	}
	return cfg.Containerd.Snapshotter
}
