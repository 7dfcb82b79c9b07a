package runtime

import (
	"net"
	"os"
	"testing"
)

// shortTempDir is t.TempDir for unix sockets: t.TempDir's paths carry the
// test name and can pass sun_path's 108 bytes.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// listenUnix creates a real unix socket at path, closed when t ends.
func listenUnix(t testing.TB, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}
