package cli_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra/doc"

	"github.com/imagefs/imagefs/internal/cli"
)

// docs/commands is generated from the command tree (go run ./hack/gen-docs);
// this fails when a command's help changed and the pages were not regenerated.
func TestCommandDocsUpToDate(t *testing.T) {
	dir := t.TempDir()
	root := cli.NewRootCommand(cli.IO{Out: io.Discard, ErrOut: io.Discard})
	root.DisableAutoGenTag = true
	if err := doc.GenMarkdownTree(root, dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		want, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		got, err := os.ReadFile(filepath.Join("..", "..", "docs", "commands", e.Name()))
		if err != nil || string(got) != string(want) {
			t.Errorf("docs/commands/%s is stale or missing: run go run ./hack/gen-docs", e.Name())
		}
	}
}
