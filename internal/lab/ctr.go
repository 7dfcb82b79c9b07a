package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Ctr runs the instance's matching ctr in namespace k8s.io (the only one CRI
// sees and counts) and returns its combined output.
func (c *Containerd) Ctr(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"-a", c.Socket, "-n", "k8s.io"}, args...)
	cmd := exec.CommandContext(ctx, c.Binary.Ctr, full...)
	cmd.Env = labEnv(filepath.Dir(c.Binary.Ctr))
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", c.Binary.Ctr, strings.Join(full, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Import imports a docker-archive or oci-archive into namespace k8s.io and
// unpacks it with the default snapshotter.
func (c *Containerd) Import(ctx context.Context, tarPath string) error {
	out, err := c.Ctr(ctx, "images", "import", tarPath)
	if err != nil {
		return err
	}
	// ctr exits 0 when the platform filter drops every manifest; nothing is
	// unpacked then, so treat it as the error it is.
	if strings.Contains(out, "might be filtered out") {
		return fmt.Errorf("ctr images import %s: nothing imported (%s): image config needs os/architecture of this host", tarPath, strings.TrimSpace(out))
	}
	return nil
}

// logTail returns the last n lines of the file at path ("" if unreadable).
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10 // enough for 20 debug lines
	if st, err := f.Stat(); err == nil && st.Size() > window {
		if _, err := f.Seek(st.Size()-window, io.SeekStart); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// labEnv is the caller's environment with CONTAINERD_* removed (ctr reads
// CONTAINERD_ADDRESS, CONTAINERD_NAMESPACE, CONTAINERD_SNAPSHOTTER) and a PATH
// that finds runc and the shim: binDir first, then the system dirs.
func labEnv(binDir string) []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "CONTAINERD_"):
		case strings.HasPrefix(kv, "PATH="):
			path = strings.TrimPrefix(kv, "PATH=")
		default:
			env = append(env, kv)
		}
	}
	dirs := []string{binDir}
	if path != "" {
		dirs = append(dirs, path)
	}
	dirs = append(dirs, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
	return append(env, "PATH="+strings.Join(dirs, ":"))
}
