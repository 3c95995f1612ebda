package packagefile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
)

// SubstituteVariables replaces the content of each file under dir that
// one of patterns matches by eval(content), as Octopus's "Substitute
// Variables in Templates" feature does; eval is typically
// variables.Evaluate with the deployment's lookup.
//
// Patterns are relative to dir with slashes (a backslash counts as one,
// as patterns written on Windows have them): path.Match's syntax in each
// part, and a part "**" for any number of folders, so "*.config" matches
// in dir only and "**/*.config" at any depth. Matching is case-sensitive.
// Blank patterns are ignored; an absolute pattern, one with a ".." part
// or one path.Match cannot read is an error naming it. Only regular files
// match: links are neither followed nor changed.
//
// A file is written only when its content changes, atomically (a
// temporary file in its folder, renamed over it, with its mode kept), and
// every write stays inside dir. changed lists the files written and
// unmatched the patterns that matched no file, in the order given; paths
// are relative to dir with slashes. An error of eval or of a write names
// the file; files changed before it stay changed (and are in changed).
func SubstituteVariables(dir string, patterns []string, eval func(string) (string, error)) (changed []string, unmatched []string, err error) {
	return eachFile(dir, patterns, func(root *os.Root, name string, content []byte) ([]byte, error) {
		out, err := eval(string(content))
		if err != nil {
			return nil, fmt.Errorf("substituting variables in %s: %w", name, err)
		}
		return []byte(out), nil
	})
}

// eachFile runs edit on each regular file under dir that patterns match
// (see SubstituteVariables), and writes back what edit returns when it
// differs from content. A nil answer leaves the file as it is.
func eachFile(dir string, patterns []string, edit func(root *os.Root, name string, content []byte) ([]byte, error)) (changed, unmatched []string, err error) {
	globs, err := parsePatterns(patterns)
	if err != nil {
		return nil, nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	names, matched, err := matchFiles(root, globs)
	if err != nil {
		return nil, nil, err
	}
	for i, g := range globs {
		if !matched[i] {
			unmatched = append(unmatched, g.text)
		}
	}
	for _, name := range names {
		fi, err := root.Lstat(name)
		if err != nil {
			return changed, unmatched, err
		}
		content, err := root.ReadFile(name)
		if err != nil {
			return changed, unmatched, err
		}
		out, err := edit(root, name, content)
		if err != nil {
			return changed, unmatched, err
		}
		if out == nil || string(out) == string(content) {
			continue
		}
		if err := writeAtomic(root, name, out, fi.Mode().Perm()); err != nil {
			return changed, unmatched, fmt.Errorf("writing %s: %w", name, err)
		}
		changed = append(changed, name)
	}
	return changed, unmatched, nil
}

type glob struct {
	text  string   // as given, for unmatched
	parts []string // split at slashes; "**" any number of folders
}

func parsePatterns(patterns []string) ([]glob, error) {
	var globs []glob
	for _, text := range patterns {
		p := strings.TrimSpace(text)
		if p == "" {
			continue
		}
		p = strings.ReplaceAll(p, `\`, "/")
		for strings.HasPrefix(p, "./") {
			p = p[2:]
		}
		if strings.HasPrefix(p, "/") || hasDrive(p) {
			return nil, fmt.Errorf("The file pattern %q is absolute: give it relative to the package's folder, such as config/*.json.", text)
		}
		var parts []string
		for _, part := range strings.Split(p, "/") {
			switch part {
			case "..":
				return nil, fmt.Errorf("The file pattern %q leads out of the package's folder (\"..\"): give it relative to the package's folder, such as config/*.json.", text)
			case "", ".":
				continue
			case "**":
				if len(parts) > 0 && parts[len(parts)-1] == "**" {
					continue // a/**/**/b is a/**/b
				}
			}
			if _, err := path.Match(part, ""); err != nil {
				return nil, fmt.Errorf("The file pattern %q is not a pattern (%v): use * and ? for any characters, ** for any folders.", text, err)
			}
			parts = append(parts, part)
		}
		if len(parts) == 0 {
			return nil, fmt.Errorf("The file pattern %q names the package's folder, not files: use ** for every file.", text)
		}
		globs = append(globs, glob{text: text, parts: parts})
	}
	return globs, nil
}

// match says whether the parts of a relative path match the glob's parts.
func match(glob, name []string) bool {
	for len(glob) > 0 {
		if glob[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if match(glob[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(glob[0], name[0]); !ok {
			return false
		}
		glob, name = glob[1:], name[1:]
	}
	return len(name) == 0
}

// matchFiles walks root (not following links) and returns the regular
// files any glob matches, in lexical order, and which globs matched one.
func matchFiles(root *os.Root, globs []glob) (names []string, matched []bool, err error) {
	matched = make([]bool, len(globs))
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		parts := strings.Split(name, "/")
		hit := false
		for i, g := range globs {
			if match(g.parts, parts) {
				matched[i], hit = true, true
			}
		}
		if hit {
			names = append(names, name)
		}
		return nil
	})
	return names, matched, err
}

// writeAtomic replaces file name of root by data with mode perm: it writes
// a temporary file in the same folder and renames it over name, so that a
// reader sees the old content or the new, never a part.
func writeAtomic(root *os.Root, name string, data []byte, perm fs.FileMode) error {
	dir, base := path.Split(name)
	var (
		tmp string
		f   *os.File
		err error
	)
	for range 100 {
		tmp = dir + "." + base + "." + strconv.FormatUint(rand.Uint64(), 36) + ".tmp"
		f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
	}
	return err
}
