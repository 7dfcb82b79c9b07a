package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	readyTimeout = 30 * time.Second // whole readiness wait; measured ready in ~0.5 s
	termTimeout  = 10 * time.Second // SIGTERM grace before SIGKILL
	tailLines    = 20
)

// StartContainerd writes cfg's config, starts containerd in its own session
// (setsid, so a Ctrl-C in the caller's terminal does not reach it) with output
// to Dir/containerd.log and its PID in Dir/pid, and waits until CRI answers
// Version. It fails fast if the process exits or CRI is Unimplemented (the CRI
// plugin did not load, e.g. no d_type), quoting the log tail. Whatever it
// started is stopped again on failure.
func StartContainerd(ctx context.Context, cfg Config) (*Containerd, error) {
	if err := cfg.Binary.Available(); err != nil {
		return nil, err
	}
	if cfg.Root == "" || cfg.Dir == "" {
		return nil, errors.New("start containerd: Config.Root and Config.Dir are required")
	}
	for _, p := range []*string{&cfg.Root, &cfg.Dir, &cfg.SnapshotterRoot} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
		*p = abs
	}
	if cfg.StatsCollectPeriod <= 0 {
		cfg.StatsCollectPeriod = 1
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "debug"
	}
	c := &Containerd{
		Config:  cfg,
		Socket:  filepath.Join(cfg.Dir, socketName),
		LogPath: filepath.Join(cfg.Dir, logName),
	}
	c.Endpoint = "unix://" + c.Socket
	if n := len(c.Socket + ".ttrpc"); n > maxSockPath {
		return nil, fmt.Errorf("start containerd: socket path %s.ttrpc is %d bytes, over the %d-byte unix socket limit: use a shorter Dir", c.Socket, n, maxSockPath)
	}
	if pid := readPID(filepath.Join(cfg.Dir, pidName)); pid > 0 && isProcessOf(pid, c.ConfigPath()) {
		return nil, fmt.Errorf("start containerd: %s is already used by running PID %d; stop it first", cfg.Dir, pid)
	}
	for _, d := range []string{cfg.Root, cfg.SnapshotterRoot, cfg.Dir,
		filepath.Join(cfg.Dir, "state"), filepath.Join(cfg.Dir, "opt"),
		filepath.Join(cfg.Dir, "cni"), filepath.Join(cfg.Dir, "runc")} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
	}
	if err := os.WriteFile(c.ConfigPath(), []byte(configTOML(cfg)), 0o644); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	if err := c.spawn(ctx); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

// spawn starts the containerd process from the config file already in Dir,
// records its PID and waits for CRI.
func (c *Containerd) spawn(ctx context.Context) error {
	logf, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	defer logf.Close() // the child has its own copy
	if c.LogLevel == "" {
		c.LogLevel = "debug"
	}
	cmd := exec.Command(c.Binary.Containerd, "--config", c.ConfigPath(), "--log-level", c.LogLevel)
	cmd.Stdout, cmd.Stderr = logf, logf // *os.File: no copying goroutines, Wait returns at exit
	cmd.Dir = c.Dir
	cmd.Env = labEnv(filepath.Dir(c.Binary.Containerd))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.Binary.Containerd, err)
	}
	c.PID = cmd.Process.Pid
	exited := make(chan struct{})
	c.exited = exited
	go func() {
		_ = cmd.Wait() // reap, so the PID cannot be recycled while we hold it
		close(exited)
	}()
	if err := os.WriteFile(filepath.Join(c.Dir, pidName), []byte(strconv.Itoa(c.PID)+"\n"), 0o644); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	return c.waitReady(ctx)
}

// waitReady polls CRI RuntimeService.Version every 50 ms. The socket appears
// before CRI is usable ("server is not initialized yet"), so only a successful
// CRI call means ready.
func (c *Containerd) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	conn, err := dialCRI(c.Socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, time.Second)
		_, err := rt.Version(callCtx, &runtimeapi.VersionRequest{})
		callCancel()
		if err == nil {
			return nil
		}
		if status.Code(err) == codes.Unimplemented {
			return fmt.Errorf("%s at %s serves no CRI (the cri plugin failed to load): %w; log tail:\n%s",
				c.Binary.Name, c.Endpoint, err, c.LogTail(tailLines))
		}
		lastErr = err
		select {
		case <-c.exited:
			return fmt.Errorf("%s (PID %d) exited before CRI was ready; log tail:\n%s", c.Binary.Name, c.PID, c.LogTail(tailLines))
		case <-ctx.Done():
			return fmt.Errorf("%s at %s not ready: %w (last error: %v); log tail:\n%s",
				c.Binary.Name, c.Endpoint, ctx.Err(), lastErr, c.LogTail(tailLines))
		case <-tick.C:
		}
	}
}

// Stop removes pods (best effort), sends SIGTERM, waits up to 10 s, then
// SIGKILL; then kills shims and runc containers left by this instance and
// unmounts anything left below Root, Dir and SnapshotterRoot. It only signals
// processes whose command line names this instance's config or socket, and
// never touches /run/containerd. Calling it again after success does nothing.
func (c *Containerd) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	if c.PID <= 0 {
		// Recorded before it started (see Up): the pid file says which process.
		c.PID = readPID(filepath.Join(c.Dir, pidName))
	}
	var errs []error
	if !c.running() {
		// containerd died with pods running: their shims hold sockets in the
		// shared /run/containerd/s, which we must not touch. A restart on the
		// same config reconnects to the shims (measured), so CRI can remove the
		// pods and the shims clean up after themselves.
		if shims, _ := ShimPIDs(c.Socket); len(shims) > 0 && c.canRespawn() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := c.spawn(ctx); err != nil {
				_ = c.terminate() // fall through to killing shims below
			}
			cancel()
		}
	}
	if c.running() {
		c.removePods()
		if err := c.terminate(); err != nil {
			errs = append(errs, err)
		}
	}
	// Last resort for pods CRI could not remove: kill shims, force-delete
	// containers in our runc root, unmount what they left.
	if err := c.killShims(); err != nil {
		errs = append(errs, err)
	}
	if err := c.deleteRuncContainers(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []string{c.Dir, c.Root, c.SnapshotterRoot} {
		if d == "" {
			continue
		}
		if err := unmountUnder(d); err != nil {
			errs = append(errs, err)
		}
	}
	// containerd removes its grpc socket but leaves the ttrpc one (measured).
	for _, p := range []string{c.Socket + ".ttrpc", filepath.Join(c.Dir, pidName)} {
		_ = os.Remove(p)
	}
	if len(errs) > 0 {
		return fmt.Errorf("stop %s at %s: %w", c.Binary.Name, c.Dir, errors.Join(errs...))
	}
	c.stopped = true
	return nil
}

// canRespawn: the binary and the config file are still there.
func (c *Containerd) canRespawn() bool {
	_, err := os.Stat(c.ConfigPath())
	return err == nil && c.Binary.Available() == nil
}

// running reports whether our containerd process is still alive.
func (c *Containerd) running() bool {
	if c.PID <= 0 {
		return false
	}
	if c.exited != nil {
		select {
		case <-c.exited:
			return false
		default:
		}
	}
	return isProcessOf(c.PID, c.ConfigPath())
}

// terminate sends SIGTERM, then SIGKILL after termTimeout, re-checking the
// command line before each signal so a recycled PID is never hit.
func (c *Containerd) terminate() error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if !c.running() {
			return nil
		}
		if err := syscall.Kill(c.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal %v to PID %d: %w", sig, c.PID, err)
		}
		deadline := time.Now().Add(termTimeout)
		for c.running() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if c.running() {
		return fmt.Errorf("PID %d still running after SIGKILL", c.PID)
	}
	return nil
}

// killShims SIGKILLs containerd-shim processes started for this instance
// (their -address is our socket). Shims of a running pod outlive a SIGTERMed
// containerd (measured). Their socket in /run/containerd/s stays behind: that
// directory is shared, so we do not touch it.
func (c *Containerd) killShims() error {
	pids, err := ShimPIDs(c.Socket)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if left, _ := ShimPIDs(c.Socket); len(left) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	left, _ := ShimPIDs(c.Socket)
	return fmt.Errorf("shims %v of %s survived SIGKILL", left, c.Socket)
}

// ShimPIDs lists live containerd-shim processes whose command line names
// socket (the instance's grpc address).
func ShimPIDs(socket string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args := cmdline(pid)
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for _, a := range args[1:] {
			if a == socket || a == "unix://"+socket {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids, nil
}

// deleteRuncContainers force-deletes (kills and removes) every container in
// this instance's own runc root, Dir/runc/<namespace>. Only reached with
// containers left when CRI could not remove its pods.
func (c *Containerd) deleteRuncContainers() error {
	nss, _ := os.ReadDir(filepath.Join(c.Dir, "runc"))
	var errs []error
	for _, ns := range nss {
		root := filepath.Join(c.Dir, "runc", ns.Name())
		ids, _ := os.ReadDir(root) // one state dir per container
		for _, id := range ids {
			if !id.IsDir() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := exec.CommandContext(ctx, "runc", "--root", root, "delete", "--force", id.Name()).CombinedOutput()
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("runc --root %s delete --force %s: %w: %s", root, id.Name(), err, bytes.TrimSpace(out)))
			}
		}
	}
	return errors.Join(errs...)
}

// isProcessOf reports whether pid is alive and was started with configPath as
// an argument. A zombie has an empty cmdline and so counts as gone.
func isProcessOf(pid int, configPath string) bool {
	for _, a := range cmdline(pid) {
		if a == configPath {
			return true
		}
	}
	return false
}

func cmdline(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}
