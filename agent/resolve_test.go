package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzResolve: whatever path a node sends, resolve either refuses it or
// answers a path inside the work folder, symbolic links followed.
func FuzzResolve(f *testing.F) {
	root := f.TempDir()
	work := filepath.Join(root, "work")
	outside := filepath.Join(root, "outside")
	for _, dir := range []string{filepath.Join(work, "app", "bin"), outside} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			f.Fatal(err)
		}
	}
	// Links that stay inside, and one that leads out.
	if err := os.Symlink(filepath.Join(work, "app"), filepath.Join(work, "current")); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(work, "escape")); err != nil {
		f.Fatal(err)
	}
	a := &Agent{work: work}
	for _, seed := range []string{"app.zip", "app/bin/run", "current/bin/x", "escape/passwd", "../x", "/etc/passwd", "a/./b", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		p, err := a.resolve(rel)
		if err != nil {
			if !strings.Contains(err.Error(), "refused") {
				t.Fatalf("resolve(%q) failed without saying it refused: %v", rel, err)
			}
			return
		}
		real := p
		if r, err := filepath.EvalSymlinks(p); err == nil {
			real = r
		}
		if inside, err := filepath.Rel(work, real); err != nil || !filepath.IsLocal(inside) {
			t.Fatalf("resolve(%q) = %q (%q), outside the work folder %s", rel, p, real, work)
		}
	})
}
