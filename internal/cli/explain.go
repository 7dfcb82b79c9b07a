package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/analyze/explain"
	"github.com/imagefs/imagefs/pkg/kubelet"
	"github.com/imagefs/imagefs/pkg/output"
)

type explainOptions struct {
	markdown bool
	live     liveOptions
}

// liveOptions choose how to reach the running kubelet for a comparison.
type liveOptions struct {
	viaAPIServer bool
	kubeconfig   kubelet.KubeconfigOptions
	node         string
	direct       kubelet.DirectOptions
}

func (o *liveOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.viaAPIServer, "live", false, "compare with the live kubelet's Summary through the API server (kubectl get --raw /api/v1/nodes/NODE/proxy/stats/summary)")
	f.StringVar(&o.kubeconfig.Kubeconfig, "kubeconfig", "", "kubeconfig for --live (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.StringVar(&o.kubeconfig.Context, "context", "", "kubeconfig context for --live")
	f.StringVar(&o.node, "node", "", "node name for --live (default: --node-name, else the hostname)")
	f.StringVar(&o.direct.URL, "kubelet-url", "", "compare with the kubelet directly, e.g. https://127.0.0.1:10250 or the read-only http://127.0.0.1:10255")
	f.StringVar(&o.direct.Token, "kubelet-token", "", "bearer token for --kubelet-url")
	f.StringVar(&o.direct.TokenFile, "kubelet-token-file", "", "file holding the bearer token for --kubelet-url")
	f.StringVar(&o.direct.CertFile, "kubelet-client-cert", "", "client certificate for --kubelet-url")
	f.StringVar(&o.direct.KeyFile, "kubelet-client-key", "", "client key for --kubelet-url")
	f.StringVar(&o.direct.CAFile, "kubelet-ca", "", "CA bundle to verify the kubelet's serving certificate")
	f.BoolVar(&o.direct.InsecureSkipVerify, "insecure-skip-verify", false, "do not verify the kubelet's serving certificate")
	f.DurationVar(&o.direct.Timeout, "live-timeout", kubelet.DefaultTimeout, "deadline for fetching the live Summary")
}

func (o *liveOptions) enabled() bool {
	return o.viaAPIServer || o.direct.URL != "" || o.kubeconfig.Kubeconfig != "" || o.kubeconfig.Context != ""
}

// fetch gets the live Summary and says where it came from.
func (o *liveOptions) fetch(ctx context.Context, nodeName string) (*statsapi.Summary, string, error) {
	if o.direct.URL != "" {
		s, _, err := kubelet.FromKubelet(ctx, o.direct)
		return s, "the kubelet at " + o.direct.URL, err
	}
	node := o.node
	if node == "" {
		node = nodeName
	}
	src := "the API server's proxy to node " + node
	cfg, err := kubelet.RESTConfig(o.kubeconfig)
	if err != nil {
		return nil, src, err
	}
	cfg.Timeout = o.direct.Timeout
	s, _, err := kubelet.FromAPIServer(ctx, cfg, node)
	return s, src, err
}

// liveError is a live comparison that failed; the report still printed.
type liveError struct{ err error }

func (e liveError) Error() string { return e.err.Error() }
func (e liveError) Unwrap() error { return e.err }

func newExplainCommand(g *GlobalOptions, streams IO) *cobra.Command {
	o := &explainOptions{}
	cmd := &cobra.Command{
		Use:   "explain [imagefs|containerfs|nodefs]",
		Short: "Show, with this node's real values, how the kubelet computes each filesystem field",
		Long: `explain walks through the kubelet's computation of node.fs,
node.runtime.imageFs and node.runtime.containerFs (or just the one named),
with the values of this node:

  1. the runtime endpoint, how it was chosen, the runtime's name and version
  2. the raw CRI ImageFsInfo response and the age of its numbers
  3. directory → stat → major:minor → the mountinfo line → the partition
     cadvisor picks, and why (or where and why the lookup fails, with the
     kubelet's error and log line)
  4. the raw statfs fields and the arithmetic behind capacityBytes,
     availableBytes, inodes and inodesFree; where usedBytes comes from
     instead, and why usedBytes + availableBytes ≠ capacityBytes
  5. df -B1 and df -BKB lines for the same mount, and the size of the
     runtime's snapshotter directory, content store and root beside usedBytes
  6. with --live (through the API server) or --kubelet-url (directly), the
     running kubelet's Summary beside imagefs's, field by field, with the
     likely reason for each difference (timing, the runtime's refresh
     interval, mount namespace, root dir, partition map from kubelet start)

Output: a narrative (colour on a terminal), -o json with every
intermediate value, or --markdown to paste into an issue.

` + exitCodesHelp,
		Example: `  imagefs explain
  imagefs explain --live --context prod
  imagefs explain --kubelet-url https://127.0.0.1:10250 --kubelet-token-file /var/run/secrets/kubernetes.io/serviceaccount/token --kubelet-ca /etc/kubernetes/pki/ca.crt
  imagefs explain imagefs --markdown > report.md
  imagefs explain nodefs -o json | jq .filesystems[0].lookup`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{explain.TargetImageFs, explain.TargetContainerFs, explain.TargetNodeFs},
		RunE: func(cmd *cobra.Command, args []string) error {
			target := explain.TargetAll
			if len(args) == 1 {
				target = args[0]
				switch target {
				case explain.TargetImageFs, explain.TargetContainerFs, explain.TargetNodeFs:
				default:
					return usageError{fmt.Errorf("unknown filesystem %q: use imagefs, containerfs or nodefs", target)}
				}
			}
			format := g.Output
			if o.markdown {
				format = output.FormatMarkdown
			}
			switch format {
			case output.FormatTable, output.FormatJSON, output.FormatYAML, output.FormatMarkdown:
			default:
				return usageError{fmt.Errorf("unknown --output %q: use table, json or yaml (or --markdown)", g.Output)}
			}
			res, table, err := collectWithTable(cmd.Context(), g)
			if err != nil {
				return err
			}
			rep, err := explain.Build(res, table, explain.Options{Target: target, Usage: dirUsage})
			if err != nil {
				return err
			}
			var liveErr error
			if o.live.enabled() {
				summary, src, err := o.live.fetch(cmd.Context(), res.Summary.Node.NodeName)
				if err != nil {
					rep.Live, liveErr = explain.FailedLive(src, err), liveError{err}
				} else {
					rep.Live = explain.CompareLive(res, summary, src)
				}
			}
			if err := output.Explain(streams.Out, rep, output.ExplainOptions{Format: format, Color: streams.OutIsTTY}); err != nil {
				return err
			}
			if liveErr != nil {
				return liveErr
			}
			return reportProblems(streams, res)
		},
	}
	cmd.Flags().BoolVar(&o.markdown, "markdown", false, "print a Markdown report to paste into an issue")
	o.live.addFlags(cmd)
	return cmd
}
