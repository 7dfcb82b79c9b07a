package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/output"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

type statsOptions struct {
	exactBytes bool
}

func newStatsCommand(g *GlobalOptions, streams IO) *cobra.Command {
	o := &statsOptions{}
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print node.fs, node.runtime.imageFs and containerFs as the kubelet computes them",
		Long: `stats prints the three filesystems the kubelet reports in its Summary API.

The table has one row per filesystem (node, image, container): the directory
the kubelet resolves, cadvisor's device name and fs type, capacity, used as
the runtime reports it (image/container only), used from statfs
(capacity - free, reserved blocks included), available, use% as image GC
computes it (100 - floor(available*100/capacity)), inodes and inodes free.
A "-" is a value the kubelet would not report.

-o json and -o yaml print the Summary API shape
  {"node":{"nodeName":…,"fs":{…},"runtime":{"imageFs":{…},"containerFs":{…}}}}
so jq filters written for
  kubectl get --raw /api/v1/nodes/NODE/proxy/stats/summary
work unchanged, e.g.  imagefs stats -o json | jq .node.runtime.imageFs.usedBytes

Differences from the live kubelet: imagefs takes statfs now, the kubelet
serves a cadvisor sample up to ~15 s old; imagefs builds the partition map
from the current mount table, the kubelet from the one at its start.

` + exitCodesHelp,
		Example: `  imagefs stats
  imagefs stats --bytes
  imagefs stats -o json | jq '.node.runtime.imageFs'
  imagefs stats --runtime-endpoint unix:///run/containerd/containerd.sock --root-dir /var/lib/kubelet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g.Output, output.FormatTable, output.FormatJSON, output.FormatYAML); err != nil {
				return err
			}
			res, err := collect(cmd.Context(), g)
			if err != nil {
				return err
			}
			if err := output.Stats(streams.Out, res, output.StatsOptions{Format: g.Output, ExactBytes: o.exactBytes}); err != nil {
				return err
			}
			return reportProblems(streams, res)
		},
	}
	cmd.Flags().BoolVar(&o.exactBytes, "bytes", false, "print exact byte counts instead of human sizes (table)")
	return cmd
}

// reportProblems prints one sentence per filesystem the kubelet would not
// fully report and turns them into exit code 3.
func reportProblems(streams IO, res *stats.Result) error {
	problems := problemSentences(res)
	for _, p := range problems {
		fmt.Fprintf(streams.ErrOut, "imagefs: %s\n", p)
	}
	if len(problems) > 0 {
		return partialError{problems}
	}
	return nil
}

// collect resolves the endpoint, reads the mount table and runs one
// collection. Shared by every command that needs the stats pipeline.
func collect(ctx context.Context, g *GlobalOptions) (*stats.Result, error) {
	res, _, err := collectWithTable(ctx, g)
	return res, err
}

// collectWithTable is collect, also returning the mount table it used.
func collectWithTable(ctx context.Context, g *GlobalOptions) (*stats.Result, *fsinfo.MountTable, error) {
	ep, err := runtime.ResolveEndpoint(runtime.ResolveOptions{Flag: g.RuntimeEndpoint})
	if err != nil {
		return nil, nil, err
	}
	slog.Debug("runtime endpoint", "url", ep.URL, "source", ep.Source)
	client, err := runtime.Dial(ep, g.Timeout)
	if err != nil {
		return nil, nil, runtimeError{ep: ep, timeout: g.Timeout.String(), err: err}
	}
	defer client.Close()

	sys := fsinfo.OS()
	mounts, err := fsinfo.ReadMountTable(g.Mountinfo, sys)
	if err != nil {
		return nil, nil, mountTableError{path: g.Mountinfo, err: err}
	}
	slog.Debug("mount table", "path", g.Mountinfo, "mounts", len(mounts.Mounts), "partitions", len(mounts.Partitions()))
	node := g.NodeName
	if node == "" {
		node, _ = os.Hostname()
	}
	res, err := stats.Collect(ctx, stats.Sources{
		Runtime:  client,
		Endpoint: ep,
		Mounts:   mounts,
		System:   sys,
		RootDir:  g.RootDir,
		NodeName: node,
	})
	if err != nil {
		return nil, nil, runtimeError{ep: ep, timeout: g.Timeout.String(), err: err}
	}
	slog.Debug("runtime", "name", res.Runtime.Name, "version", res.Runtime.Version)
	for _, f := range res.Filesystems {
		if f.Lookup == nil || f.SameAs != "" {
			continue
		}
		l := f.Lookup
		slog.Debug("lookup", "role", f.Role, "dir", f.Dir, "major", l.Major, "minor", l.Minor, "via", l.Via, "device", l.Device, "err", l.Err)
	}
	return res, mounts, nil
}
