package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imagefs/imagefs/pkg/analyze/explain"
	"github.com/imagefs/imagefs/pkg/output"
)

type explainOptions struct {
	markdown bool
}

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

Output: a narrative (colour on a terminal), -o json with every
intermediate value, or --markdown to paste into an issue.

` + exitCodesHelp,
		Example: `  imagefs explain
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
			if err := output.Explain(streams.Out, rep, output.ExplainOptions{Format: format, Color: streams.OutIsTTY}); err != nil {
				return err
			}
			return reportProblems(streams, res)
		},
	}
	cmd.Flags().BoolVar(&o.markdown, "markdown", false, "print a Markdown report to paste into an issue")
	return cmd
}
