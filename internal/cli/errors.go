package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

// runtimeError names the endpoint and how it was chosen with the error.
type runtimeError struct {
	ep      runtime.Endpoint
	timeout string
	err     error
}

func (e runtimeError) Error() string { return e.err.Error() }
func (e runtimeError) Unwrap() error { return e.err }

// mountTableError names the mount table that could not be read.
type mountTableError struct {
	path string
	err  error
}

func (e mountTableError) Error() string { return e.err.Error() }
func (e mountTableError) Unwrap() error { return e.err }

// sentence turns an error into one sentence that names the input and says
// what to do.
func sentence(err error) string {
	var re runtimeError
	if errors.As(err, &re) {
		ep := fmt.Sprintf("%s (from %s)", re.ep.URL, re.ep.Source)
		switch {
		case errors.Is(err, runtime.ErrSocketMissing):
			return fmt.Sprintf("the runtime socket %s does not exist: start the container runtime, or pass --runtime-endpoint with the socket it listens on", ep)
		case errors.Is(err, runtime.ErrNotSocket):
			return fmt.Sprintf("the runtime endpoint %s is not a unix socket: pass --runtime-endpoint with the runtime's socket (containerd: unix:///run/containerd/containerd.sock)", ep)
		case errors.Is(err, runtime.ErrPermission):
			return fmt.Sprintf("permission denied on the runtime socket %s: run imagefs as root or as a member of the socket's group", ep)
		case errors.Is(err, runtime.ErrTimeout):
			return fmt.Sprintf("the runtime at %s did not answer within %s: it may be hung or overloaded; check it (e.g. crictl info) or raise --timeout", ep, re.timeout)
		case errors.Is(err, runtime.ErrUnimplemented):
			return fmt.Sprintf("the runtime at %s does not implement CRI v1 ImageFsInfo/Version (%s): check that its CRI plugin loaded (containerd: ctr plugins ls, look for io.containerd.grpc.v1.cri)", ep, lastPart(err))
		case errors.Is(err, runtime.ErrUnavailable):
			return fmt.Sprintf("cannot reach the runtime at %s (%s): check that it is running and listening on that socket", ep, lastPart(err))
		}
		return fmt.Sprintf("the runtime at %s failed: %v", ep, err)
	}
	var mt mountTableError
	if errors.As(err, &mt) {
		return fmt.Sprintf("cannot use the mount table %s (%v): imagefs needs a readable /proc; pass --mountinfo with a mountinfo file", mt.path, err)
	}
	var le liveError
	if errors.As(err, &le) {
		return fmt.Sprintf("could not compare with the live kubelet: %v", le.err)
	}
	var cz configzError
	if errors.As(err, &cz) {
		return fmt.Sprintf("could not read the kubelet's /configz through the API server: %v; or pass --kubelet-config with the kubelet's config file", cz.err)
	}
	var ce configError
	if errors.As(err, &ce) {
		return fmt.Sprintf("unusable kubelet configuration: %v; fix it or pass --kubelet-config with the file the kubelet uses", ce.err)
	}
	switch {
	case errors.Is(err, runtime.ErrNoEndpoint):
		return fmt.Sprintf("%v: pass --runtime-endpoint or set %s", err, runtime.EnvEndpoint)
	case errors.Is(err, runtime.ErrBadEndpoint):
		return fmt.Sprintf("invalid runtime endpoint: %v", err)
	}
	return err.Error()
}

// lastPart drops the wrapping context of an error, keeping its cause.
func lastPart(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// problemSentences explains each filesystem the kubelet would not fully
// report, with what to do about it.
func problemSentences(r *stats.Result) []string {
	var out []string
	for _, f := range r.Filesystems {
		if f.SameAs != "" {
			continue
		}
		var s string
		switch {
		case f.KubeletError == "" && f.Stats != nil && f.Stats.UsedBytes == nil && f.Role == stats.RoleImage:
			s = fmt.Sprintf("%s filesystem: the runtime's ImageFsInfo has no used_bytes; the kubelet v1.37 dereferences it without a nil check and would crash building the Summary: upgrade or fix the runtime's CRI implementation", f.Role)
		case f.KubeletError == "" && f.Stats != nil && f.Stats.CapacityBytes == nil:
			s = fmt.Sprintf("%s filesystem: the kubelet would report it without capacity, available or inodes (%s); image GC then fails with \"invalid capacity 0 on image filesystem\"", f.Role, strings.Join(f.Notes, "; "))
		case f.KubeletError == "":
			continue
		case f.Lookup != nil && errors.Is(f.Lookup.Err, fsinfo.ErrStatFailed) && f.Role == stats.RoleNode:
			s = fmt.Sprintf("the kubelet root dir %s does not exist here, so the kubelet would fail the Summary API; pass --root-dir with the kubelet's --root-dir (kubelet error: %s)", f.Dir, f.KubeletError)
		case f.Lookup != nil && errors.Is(f.Lookup.Err, fsinfo.ErrStatFailed):
			s = fmt.Sprintf("the runtime's %s filesystem directory %s does not exist in this mount namespace, so its capacity is unknown and the kubelet would fail the Summary API; run imagefs in the kubelet's mount namespace (e.g. nsenter -t 1 -m imagefs …) or mount the runtime's root into its container; if it is missing there too, the runtime reports a directory it never created (containerd 1.6 does with an overlayfs root_path) (kubelet error: %s)", f.Role, f.Dir, f.KubeletError)
		case f.Lookup != nil && errors.Is(f.Lookup.Err, fsinfo.ErrDeviceNotInPartitionsMap):
			s = fmt.Sprintf("%s filesystem: %s is on device %d:%d, which is not in cadvisor's partition map (no cadvisor plugin for its fs type, or no /dev/ source), so the kubelet would fail the Summary API; move the directory to a supported filesystem (ext4, xfs, btrfs, tmpfs, overlay, nfs, zfs) (kubelet error: %s)", f.Role, f.Dir, f.Lookup.Major, f.Lookup.Minor, f.KubeletError)
		default:
			s = fmt.Sprintf("%s filesystem: the kubelet would fail the Summary API with: %s", f.Role, f.KubeletError)
		}
		out = append(out, s)
	}
	return out
}

// argsAreUsageErrors makes a wrong positional argument a usage error (exit
// 2), as a wrong flag is: cobra's Args validators (NoArgs, MaximumNArgs, …)
// return plain errors, which would otherwise exit 1.
func argsAreUsageErrors(cmd *cobra.Command) {
	if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := validate(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		argsAreUsageErrors(sub)
	}
}

// isUnknownCommand reports cobra's error for an unknown subcommand
// ("imagefs bogus"), which cobra returns before any Args validator runs.
func isUnknownCommand(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command ")
}
