package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagefs/imagefs/pkg/analyze/pressure"
	"github.com/imagefs/imagefs/pkg/kubelet"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/output"
)

// ExitPressure is imagefs pressure's exit code when DiskPressure is predicted.
const ExitPressure = 3

// pressureError carries "DiskPressure now" to the exit code.
type pressureError struct{}

func (pressureError) Error() string { return "DiskPressure" }

// kubeletConfigOptions choose where kubelet settings come from.
type kubeletConfigOptions struct {
	file       string
	configz    bool
	kubeconfig kubelet.KubeconfigOptions
	node       string
	timeout    time.Duration
}

func (o *kubeletConfigOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.file, "kubelet-config", "", "KubeletConfiguration file to read thresholds from (default: the running kubelet's --config and flags, else kubelet defaults)")
	f.BoolVar(&o.configz, "kubelet-configz", false, "read the kubelet's effective settings from its /configz through the API server (needs get on nodes/proxy)")
	f.StringVar(&o.kubeconfig.Kubeconfig, "kubeconfig", "", "kubeconfig for --kubelet-configz (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.StringVar(&o.kubeconfig.Context, "context", "", "kubeconfig context for --kubelet-configz")
	f.StringVar(&o.node, "node", "", "node whose /configz to read (default: --node-name, else the hostname)")
	f.DurationVar(&o.timeout, "configz-timeout", kubelet.DefaultTimeout, "deadline for reading /configz")
}

// configzError is a /configz that could not be fetched.
type configzError struct{ err error }

func (e configzError) Error() string { return e.err.Error() }
func (e configzError) Unwrap() error { return e.err }

// load returns the effective kubelet settings and a line saying where
// they came from. A kubelet root dir from the kubelet's command line is
// applied to g unless --root-dir was given.
func (o *kubeletConfigOptions) load(cmd *cobra.Command, g *GlobalOptions) (*kubeletconfig.Settings, string, error) {
	if o.configz {
		node := o.node
		if node == "" {
			node = g.NodeName
		}
		if node == "" {
			node, _ = os.Hostname()
		}
		rc, err := kubelet.RESTConfig(o.kubeconfig)
		if err != nil {
			return nil, "", configzError{err}
		}
		rc.Timeout = o.timeout
		raw, err := kubelet.ConfigzFromAPIServer(cmd.Context(), rc, node)
		if err != nil {
			return nil, "", configzError{err}
		}
		src := "/configz of node " + node
		s, err := kubeletconfig.ParseConfigz(raw, src)
		if err != nil {
			return nil, "", configError{err}
		}
		if s.RootDir != "" && !cmd.Flags().Changed("root-dir") {
			g.RootDir = s.RootDir
		}
		return s, "kubelet settings from " + src + " (through the API server)", nil
	}
	if o.file != "" {
		s, err := kubeletconfig.LoadFile(o.file)
		if err != nil {
			return nil, "", configError{err}
		}
		return s, "kubelet settings from " + o.file, nil
	}
	p, err := kubeletconfig.FindKubelet("")
	if errors.Is(err, kubeletconfig.ErrNoKubelet) {
		return kubeletconfig.Defaults(), "kubelet settings: defaults (no --kubelet-config given and no running kubelet found)", nil
	}
	if err != nil {
		return nil, "", err
	}
	who := fmt.Sprintf("kubelet (pid %d)", p.PID)
	s, err := kubeletconfig.FromCmdline(p.Args, who)
	if err != nil {
		return nil, "", configError{err}
	}
	if s.RootDir != "" && !cmd.Flags().Changed("root-dir") {
		g.RootDir = s.RootDir
	}
	return s, "kubelet settings from the running " + who, nil
}

// configError is a kubelet configuration that cannot be used.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func newPressureCommand(g *GlobalOptions, streams IO) *cobra.Command {
	var (
		cfg      kubeletConfigOptions
		watch    bool
		interval time.Duration
		exact    bool
	)
	cmd := &cobra.Command{
		Use:   "pressure",
		Short: "Predict DiskPressure: every filesystem eviction signal against the kubelet's thresholds",
		Long: `pressure evaluates the kubelet's six filesystem eviction signals
(nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree,
containerfs.available, containerfs.inodesFree) on this node, exactly as the
kubelet's eviction manager does:

  observed   availableBytes / inodesFree of the Summary filesystem (only
             when the capacity is reported too)
  threshold  evictionHard / evictionSoft, a percentage resolved against
             capacity as int64(float64(capacity) * float64(float32(pct)))
  met        threshold > observed (strictly); any met threshold, soft ones
             before their grace period too, sets DiskPressure
  containerfs thresholds are copies of imagefs's (dedicated image disk) or
             nodefs's (shared disk); configured containerfs values are ignored

It shows the headroom of each, which trips first, and what the kubelet
reclaims first (container GC, image GC, then pod eviction). --watch
refreshes and adds the rate of use and the time to DiskPressure.

Thresholds come from --kubelet-configz (the kubelet's effective settings
from /configz through the API server) or --kubelet-config FILE, else from
the running kubelet's --config file and flags (found in /proc), else the
kubelet defaults; each value says where it came from.

Exit codes:
  0  no threshold met
  1  nothing could be computed (runtime, mount table, kubelet config errors)
  2  usage error
  3  a threshold is met: the kubelet reports DiskPressure`,
		Example: `  imagefs pressure
  imagefs pressure --kubelet-config /var/lib/kubelet/config.yaml -o json | jq '.signals[] | {signal, headroom, met}'
  imagefs pressure --watch --interval 10s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g.Output, output.FormatTable, output.FormatJSON, output.FormatYAML); err != nil {
				return err
			}
			if watch && interval <= 0 {
				return usageError{fmt.Errorf("--interval must be positive, got %s", interval)}
			}
			settings, origin, err := cfg.load(cmd, g)
			if err != nil {
				return err
			}
			var prev *pressure.Report
			for {
				res, err := collect(cmd.Context(), g)
				if err != nil {
					return err
				}
				rep, err := pressure.Evaluate(res, settings)
				if err != nil {
					return configError{err}
				}
				if prev != nil {
					rep.AddRates(prev)
				}
				if watch && streams.OutIsTTY && g.Output == output.FormatTable {
					fmt.Fprint(streams.Out, "\x1b[H\x1b[2J")
				}
				if g.Output == output.FormatTable {
					fmt.Fprintln(streams.Out, origin)
				}
				if err := output.Pressure(streams.Out, rep, output.PressureOptions{Format: g.Output, ExactBytes: exact, Color: streams.OutIsTTY, Rates: watch}); err != nil {
					return err
				}
				if !watch {
					if rep.DiskPressure {
						return pressureError{}
					}
					return nil
				}
				prev = rep
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
				if g.Output == output.FormatTable && !streams.OutIsTTY {
					fmt.Fprintln(streams.Out)
				}
			}
		},
	}
	cfg.addFlags(cmd)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh every --interval until interrupted, with rates and time to DiskPressure")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Second, "refresh interval for --watch (the kubelet evaluates every 10s)")
	cmd.Flags().BoolVar(&exact, "bytes", false, "print exact byte counts")
	return cmd
}
