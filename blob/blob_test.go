package blob_test

import (
	"path/filepath"
	"testing"

	"github.com/cuttledeploy/cuttle/blob"
)

func TestPath(t *testing.T) {
	l := blob.NewLayout("/srv/cuttle", "", "/mnt/artifacts", "")
	for key, want := range map[string]string{
		"packages/app.1.0.zip":          "/srv/cuttle/packages/app.1.0.zip",
		"artifacts/ServerTasks-7/a.txt": "/mnt/artifacts/ServerTasks-7/a.txt",
	} {
		if got, err := l.Path(key); err != nil || got != filepath.FromSlash(want) {
			t.Errorf("Path(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	for _, key := range []string{"", "packages/", "tasklogs/1/1.log", "/etc/passwd", "packages/../master.key",
		"packages/a/../../b", "packages//a", "packages/a\\..\\b", "packages/./a", "artifacts/a/", "packages/.", "artifacts/."} {
		if got, err := l.Path(key); err == nil {
			t.Errorf("Path(%q) = %q, want an error", key, got)
		}
	}
}

func FuzzPath(f *testing.F) {
	l := blob.NewLayout("/srv/cuttle", "", "", "")
	for _, seed := range []string{"packages/a", "artifacts/../x", "packages/a/b/c", "packages/."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p, err := l.Path(key)
		if err != nil {
			return
		}
		for _, root := range []string{l.Packages, l.Artifacts} {
			if rel, err := filepath.Rel(root, p); err == nil && rel != "." && filepath.IsLocal(rel) {
				return
			}
		}
		t.Fatalf("Path(%q) = %q, outside every folder", key, p)
	})
}
