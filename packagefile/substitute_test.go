package packagefile_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle/packagefile"
	"github.com/cuttledeploy/cuttle/variables"
)

// writeTree makes files under a new folder: name to content, 0644, or
// 0755 when the name ends with "*" (which is dropped).
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func evaluate(vars map[string]string) func(string) (string, error) {
	return func(s string) (string, error) {
		return variables.Evaluate(s, func(name string) (string, bool) {
			for k, v := range vars {
				if strings.EqualFold(k, name) {
					return v, true
				}
			}
			return "", false
		})
	}
}

func TestSubstituteVariables(t *testing.T) {
	files := map[string]string{
		"web.config":            `<add key="Env" value="#{Env}" />`,
		"app.config":            "no templates",
		"run.sh*":               "echo #{Env}",
		"conf/app.json":         `{"env": "#{env}"}`,
		"conf/deep/db.json":     `{"db": "#{Db}"}`,
		"conf/deep/other.txt":   "#{Env}",
		"Other/UPPER.JSON":      "#{Env}",
		"conf/deep/missing.txt": "#{Missing}",
	}
	vars := map[string]string{"Env": "Production", "Db": "sql1"}
	for _, tc := range []struct {
		name      string
		patterns  []string
		changed   []string
		unmatched []string
	}{
		{"root only", []string{"*.config"}, []string{"web.config"}, nil},
		{"any depth", []string{"**/*.json"}, []string{"conf/app.json", "conf/deep/db.json"}, nil},
		{"below a folder", []string{"conf/**"}, []string{"conf/app.json", "conf/deep/db.json", "conf/deep/other.txt"}, nil},
		{"folder then any depth then name", []string{"conf/**/db.json"}, []string{"conf/deep/db.json"}, nil},
		{"everything", []string{"**"}, []string{"Other/UPPER.JSON", "conf/app.json", "conf/deep/db.json", "conf/deep/other.txt", "run.sh", "web.config"}, nil},
		{"repeated **", []string{"**/**/**/db.json"}, []string{"conf/deep/db.json"}, nil},
		{"backslashes and ./", []string{`.\conf\*.json`}, []string{"conf/app.json"}, nil},
		{"character class and ?", []string{"conf/[a-c]pp.jso?"}, []string{"conf/app.json"}, nil},
		{"case-sensitive", []string{"other/*.json"}, nil, []string{"other/*.json"}},
		{"unmatched kept in order", []string{"nothing.txt", "web.config", " ", "conf/none/**"}, []string{"web.config"}, []string{"nothing.txt", "conf/none/**"}},
		{"a file once for two patterns", []string{"web.config", "*.config", "**"}, []string{"Other/UPPER.JSON", "conf/app.json", "conf/deep/db.json", "conf/deep/other.txt", "run.sh", "web.config"}, nil},
		{"matched but unchanged", []string{"app.config", "conf/deep/missing.txt"}, nil, nil},
		{"a folder is not a file", []string{"conf"}, nil, []string{"conf"}},
		{"no patterns", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, files)
			changed, unmatched, err := packagefile.SubstituteVariables(dir, tc.patterns, evaluate(vars))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(changed, tc.changed) || !slices.Equal(unmatched, tc.unmatched) {
				t.Errorf("changed %q, unmatched %q; want %q, %q", changed, unmatched, tc.changed, tc.unmatched)
			}
			for name, content := range files {
				name = strings.TrimSuffix(name, "*")
				want := content
				if slices.Contains(tc.changed, name) {
					want, _ = evaluate(vars)(content)
				}
				if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != want {
					t.Errorf("%s holds %q, want %q", name, got, want)
				}
			}
			// Modes are kept and no temporary file is left.
			if fi, _ := os.Stat(filepath.Join(dir, "run.sh")); fi.Mode().Perm() != 0o755 {
				t.Errorf("run.sh has mode %v, want 0755", fi.Mode())
			}
			if fi, _ := os.Stat(filepath.Join(dir, "web.config")); fi.Mode().Perm() != 0o644 {
				t.Errorf("web.config has mode %v, want 0644", fi.Mode())
			}
			if got := tree(t, dir); len(got) != len(files)+3 {
				t.Errorf("the folder holds %q", got)
			}
		})
	}
}

func TestSubstituteVariablesRefuses(t *testing.T) {
	for _, pattern := range []string{"/etc/passwd", "../x", "conf/../../x", `..\x`, `C:\x`, "c:x", "[", "conf/[a-", ".", "./", "**/.."} {
		dir := writeTree(t, map[string]string{"a.txt": "#{A}"})
		changed, unmatched, err := packagefile.SubstituteVariables(dir, []string{"a.txt", pattern}, evaluate(map[string]string{"A": "x"}))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", pattern)) {
			t.Errorf("SubstituteVariables with pattern %q = %q, %q, %v; want an error naming it", pattern, changed, unmatched, err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(got) != "#{A}" {
			t.Errorf("pattern %q refused, but a.txt changed to %q", pattern, got)
		}
	}
}

func TestSubstituteVariablesEvalError(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.txt": "#{A}", "b.txt": "#{if A}", "c.txt": "#{A}"})
	changed, _, err := packagefile.SubstituteVariables(dir, []string{"*.txt"}, evaluate(map[string]string{"A": "x"}))
	if err == nil || !strings.Contains(err.Error(), "b.txt") {
		t.Fatalf("SubstituteVariables: %v; want an error naming b.txt", err)
	}
	if !slices.Equal(changed, []string{"a.txt"}) {
		t.Errorf("changed %q, want a.txt", changed)
	}
	for name, want := range map[string]string{"a.txt": "x", "b.txt": "#{if A}", "c.txt": "#{A}"} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != want {
			t.Errorf("%s holds %q, want %q", name, got, want)
		}
	}
	_, _, err = packagefile.SubstituteVariables(dir, []string{"c.txt"}, func(string) (string, error) { return "", errors.New("boom") })
	if err == nil || !strings.Contains(err.Error(), "c.txt") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("SubstituteVariables: %v; want an error naming c.txt and saying boom", err)
	}
	if _, _, err := packagefile.SubstituteVariables(filepath.Join(dir, "none"), []string{"*"}, evaluate(nil)); err == nil {
		t.Error("SubstituteVariables in a missing folder succeeded")
	}
}

// Links are neither followed nor changed: a link to a file outside the
// folder keeps that file as it is.
func TestSubstituteVariablesLinks(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.txt": "#{A}", "sub/x.txt": "#{A}"})
	dir := writeTree(t, map[string]string{"a.txt": "#{A}"})
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "sub"), filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	changed, unmatched, err := packagefile.SubstituteVariables(dir, []string{"*.txt", "sub/*.txt", "**/x.txt"}, evaluate(map[string]string{"A": "x"}))
	if err != nil || !slices.Equal(changed, []string{"a.txt"}) || !slices.Equal(unmatched, []string{"sub/*.txt", "**/x.txt"}) {
		t.Errorf("SubstituteVariables = %q, %q, %v; want a.txt changed, the sub patterns unmatched", changed, unmatched, err)
	}
	for _, name := range []string{"secret.txt", "sub/x.txt"} {
		if got, _ := os.ReadFile(filepath.Join(outside, name)); string(got) != "#{A}" {
			t.Errorf("%s outside the folder changed to %q", name, got)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "link.txt")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("link.txt is no longer a link: %v", err)
	}
}
