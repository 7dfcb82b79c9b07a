package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/output"
)

// Exit codes of imagefs doctor beyond the shared ones.
const (
	ExitDoctorWarn = 3
	ExitDoctorFail = 4
)

// findingsError carries doctor's worst finding to the exit code.
type findingsError struct{ worst doctor.Severity }

func (e findingsError) Error() string { return "worst finding: " + string(e.worst) }

func newDoctorCommand(g *GlobalOptions, streams IO) *cobra.Command {
	var staleAfter time.Duration
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this node for the known ways its filesystem stats go wrong",
		Long: `doctor runs these checks and prints each as ok, warn or fail with the
evidence it saw and what to do:

  runtime-imagefs   the runtime reports an image filesystem that exists here
  imagefs-capacity  imageFs has capacity/available (else image GC fails with
                    "invalid capacity 0 on image filesystem"), and why not
  split-imagefs     a runtime-reported container filesystem the kubelet ignores
  shared-device     imagefs on the nodefs disk: signals merge, DiskPressure at 15% free
  usage-accounting  usedBytes far below the runtime root's real disk use
  byte-pressure     eviction thresholds and image GC (kubelet defaults)
  inode-pressure    inodesFree thresholds (kubelet defaults)
  stale-usage       the runtime's usage timestamp is too old
  unexpected-fs     kubelet root or runtime root on tmpfs or overlay

Exit codes:
  0  every check ok
  1  nothing could be checked (runtime unreachable, unreadable mount table, …)
  2  usage error
  3  the worst finding is a warning
  4  at least one check failed`,
		Example: `  imagefs doctor
  imagefs doctor -o json | jq '.findings[] | select(.severity != "ok")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g.Output, output.FormatTable, output.FormatJSON, output.FormatYAML); err != nil {
				return err
			}
			res, table, err := collectWithTable(cmd.Context(), g)
			if err != nil {
				return err
			}
			rep := doctor.Run(doctor.Inputs{Result: res, Table: table, Usage: dirUsage, StaleAfter: staleAfter})
			if err := output.Doctor(streams.Out, rep, output.DoctorOptions{Format: g.Output, Color: streams.OutIsTTY}); err != nil {
				return err
			}
			if rep.Worst != doctor.OK {
				return findingsError{rep.Worst}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&staleAfter, "stale-after", 30*time.Second, "runtime usage older than this is reported as stale (containerd refreshes every stats_collect_period, 10s by default)")
	return cmd
}
