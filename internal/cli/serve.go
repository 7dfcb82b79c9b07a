package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagefs/imagefs/pkg/exporter"
	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

type serveOptions struct {
	listen          string
	interval        time.Duration
	hostRoot        string
	shutdownTimeout time.Duration
	cfg             kubeletConfigOptions
}

func newServeCommand(g *GlobalOptions, streams IO) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the kubelet's filesystem stats, eviction headroom and image GC state as Prometheus metrics",
		Long: `serve is a Prometheus exporter. It collects in the background every
--interval, exactly as imagefs stats does, and answers every request from
the last good collection, so a scrape never waits on the runtime or on a
hung mount:

  /metrics        imagefs_* metrics (docs/metrics.md), plus go_* and process_*
  /stats/summary  the Summary API subset, what imagefs stats -o json prints
  /explain        imagefs explain -o json of the last collection
  /doctor         imagefs doctor -o json of the last collection (no walks)
  /healthz        the process is alive
  /readyz         a collection succeeded less than 3×--interval ago

Each runtime call is bounded by --timeout and each stat/statfs by
cadvisor's 2 s. A path whose call does not return is marked stuck
(imagefs_mount_stuck) and skipped, never called again, until that call
returns: one hung NFS mount costs one goroutine, not one per collection.

The default --listen is loopback only: the endpoints are not authenticated
and show the node's paths and devices. In a pod use --listen 0.0.0.0:9847
behind a NetworkPolicy (deploy/).

Eviction thresholds and image GC thresholds come from --kubelet-config, else
the running kubelet's --config and flags (found in /proc), else the kubelet
defaults, read once at start (imagefs_kubelet_config_info says which).

In a container, mount the host's / read-only and pass --host-root: every
stat and statfs is then taken inside it, so "/" in the host's mount table is
the host's root, not the container's (see docs/deploy.md).

SIGTERM or SIGINT stops collecting and shuts the server down, waiting up to
--shutdown-timeout for requests in flight.`,
		Example: `  imagefs serve
  imagefs serve --listen 127.0.0.1:0 --interval 5s
  imagefs serve --listen 0.0.0.0:9847 --host-root /host/root --mountinfo /host/root/proc/1/mountinfo --node-name "$NODE_NAME"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, g, o, streams)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", exporter.DefaultListen, "host:port to serve on (port 0 picks a free port; the bound address is printed on stderr)")
	f.DurationVar(&o.interval, "interval", exporter.DefaultInterval, "time between collections")
	f.StringVar(&o.hostRoot, "host-root", "", "the host's / mounted in this container: stat and statfs are taken inside it (--mountinfo is not rebased)")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", exporter.DefaultShutdownTimeout, "how long to wait for requests in flight on SIGTERM")
	o.cfg.addFlags(cmd)
	return cmd
}

func runServe(cmd *cobra.Command, g *GlobalOptions, o *serveOptions, streams IO) error {
	if o.interval <= 0 {
		return usageError{fmt.Errorf("--interval must be positive, got %s", o.interval)}
	}
	if o.shutdownTimeout <= 0 {
		return usageError{fmt.Errorf("--shutdown-timeout must be positive, got %s", o.shutdownTimeout)}
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return usageError{fmt.Errorf("--listen %q: %v: use host:port, e.g. 127.0.0.1:9847", o.listen, err)}
	}
	ep, err := runtime.ResolveEndpoint(runtime.ResolveOptions{Flag: g.RuntimeEndpoint})
	if err != nil {
		return err
	}
	settings, origin, err := o.cfg.load(cmd, g)
	if err != nil {
		return err
	}
	source := "kubelet"
	switch {
	case o.cfg.file != "":
		source = "file"
	case strings.Contains(origin, "defaults"):
		source = "defaults"
	}

	log := slog.Default().With("command", "serve")
	var sys fsinfo.System = fsinfo.OS()
	if o.hostRoot != "" {
		hr, err := exporter.NewHostRoot(o.hostRoot)
		if err != nil {
			return fmt.Errorf("cannot use --host-root: %w: mount the host's / there (read-only) or drop the flag", err)
		}
		sys = hr
	}
	guard := exporter.NewStuckGuard(sys, fsinfo.StatfsTimeout, log)
	node := g.NodeName
	if node == "" {
		node, _ = os.Hostname()
	}

	c := &serveCollector{g: g, ep: ep, sys: guard, node: node}
	defer c.close()
	exp := exporter.New(exporter.Options{
		Source:         c.collect,
		Interval:       o.interval,
		Settings:       settings,
		SettingsSource: source,
		Guard:          guard,
		Logger:         log,
		Sentence:       sentence,
	})

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w: pass --listen with a free host:port", o.listen, err)
	}
	fmt.Fprintf(streams.ErrOut, "imagefs: serving on http://%s (runtime %s, every %s; %s)\n", ln.Addr(), ep.URL, o.interval, origin)
	return exporter.Serve(cmd.Context(), ln, exp, exporter.ServeOptions{ShutdownTimeout: o.shutdownTimeout})
}

// serveCollector is one long-lived collection pipeline: the CRI client is
// dialled once (again only until it first succeeds) and the mount table is
// read anew every time, through the stuck-mount guard.
type serveCollector struct {
	g    *GlobalOptions
	ep   runtime.Endpoint
	sys  fsinfo.System
	node string

	mu     sync.Mutex // client: a collection may outlive the shutdown deadline
	client *runtime.Client
}

func (c *serveCollector) collect(ctx context.Context) (*stats.Result, *fsinfo.MountTable, error) {
	c.mu.Lock()
	if c.client == nil {
		client, err := runtime.Dial(c.ep, c.g.Timeout)
		if err != nil {
			c.mu.Unlock()
			return nil, nil, exporter.RuntimeError{Err: runtimeError{ep: c.ep, timeout: c.g.Timeout.String(), err: err}}
		}
		c.client = client
	}
	client := c.client
	c.mu.Unlock()
	mounts, err := fsinfo.ReadMountTable(c.g.Mountinfo, c.sys)
	if err != nil {
		return nil, nil, mountTableError{path: c.g.Mountinfo, err: err}
	}
	res, err := stats.Collect(ctx, stats.Sources{
		Runtime:  client,
		Endpoint: c.ep,
		Mounts:   mounts,
		System:   c.sys,
		RootDir:  c.g.RootDir,
		NodeName: c.node,
	})
	if err != nil {
		return nil, nil, exporter.RuntimeError{Err: runtimeError{ep: c.ep, timeout: c.g.Timeout.String(), err: err}}
	}
	return res, mounts, nil
}

func (c *serveCollector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
}
