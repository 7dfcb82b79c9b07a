package testutil

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is registered here once for every test binary that imports testutil;
// packages must not define their own -update flag (it would panic as redefined).
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// Golden compares got with testdata/<test name>.golden; with -update it
// rewrites the file first (subtest names become subdirectories).
func Golden(t testing.TB, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", filepath.FromSlash(t.Name())+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s; if intended, run go test -update\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}
