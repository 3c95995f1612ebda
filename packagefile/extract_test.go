package packagefile_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle/packagefile"
)

// entry is one entry of a test archive.
type entry struct {
	name string
	kind byte   // 'f' file, 'x' executable file, 'd' folder, 'l' symbolic link, 'h' hard link, 'p' pipe, 'c' device
	body string // a file's content, a link's target
}

func file(name, body string) entry   { return entry{name, 'f', body} }
func exe(name, body string) entry    { return entry{name, 'x', body} }
func dir(name string) entry          { return entry{name, 'd', ""} }
func link(name, target string) entry { return entry{name, 'l', target} }
func hard(name, target string) entry { return entry{name, 'h', target} }

func zipOf(entries []entry) ([]byte, error) {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if len(e.body) < 64 {
			h.Method = zip.Store // as zip tools store small files
		}
		switch e.kind {
		case 'f', 'h':
			h.SetMode(0o644)
		case 'x':
			h.SetMode(0o755)
		case 'd':
			h.SetMode(fs.ModeDir | 0o755)
			if !strings.HasSuffix(h.Name, "/") {
				h.Name += "/"
			}
		case 'l':
			h.SetMode(fs.ModeSymlink | 0o777)
		case 'p':
			h.SetMode(fs.ModeNamedPipe | 0o644)
		case 'c':
			h.SetMode(fs.ModeDevice | fs.ModeCharDevice | 0o644)
		}
		f, err := w.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write([]byte(e.body)); err != nil {
			return nil, err
		}
	}
	err := w.Close()
	return b.Bytes(), err
}

func tarOf(entries []entry) ([]byte, error) {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Format: tar.FormatPAX}
		var body string
		switch e.kind {
		case 'f', 'x':
			h.Typeflag, body = tar.TypeReg, e.body
			if e.kind == 'x' {
				h.Mode = 0o755
			}
		case 'd':
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case 'l':
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.body
		case 'h':
			h.Typeflag, h.Linkname = tar.TypeLink, e.body
		case 'p':
			h.Typeflag = tar.TypeFifo
		case 'c':
			h.Typeflag = tar.TypeChar
		}
		h.Size = int64(len(body))
		if err := w.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	err := w.Close()
	return b.Bytes(), err
}

func gzipOf(data []byte) []byte {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write(data)
	z.Close()
	return b.Bytes()
}

// archiveOf writes entries as a file of format in a folder of its own.
func archiveOf(t testing.TB, format packagefile.Format, entries []entry) string {
	t.Helper()
	var data []byte
	var err error
	switch format {
	case packagefile.Zip, packagefile.Nupkg:
		data, err = zipOf(entries)
	case packagefile.Tar:
		data, err = tarOf(entries)
	case packagefile.TarGz:
		data, err = tarOf(entries)
		data = gzipOf(data)
	default:
		t.Fatalf("no test archive of format %v", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "package."+format.String())
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tree describes what is under dir: "name" for a folder/, "name mode"
// for a file with its content, "name -> target" for a link.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case fi.IsDir():
			out = append(out, rel+"/ "+fi.Mode().String())
		default:
			body, _ := os.ReadFile(p)
			out = append(out, rel+" "+fi.Mode().Perm().String()+" "+string(body))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var allFormats = []packagefile.Format{packagefile.Zip, packagefile.Tar, packagefile.TarGz}

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		name    string
		formats []packagefile.Format // default allFormats
		entries []entry
		files   int
		want    []string
	}{
		{
			name:    "files and folders",
			entries: []entry{dir("app"), exe("app/run.sh", "#!/bin/sh\n"), file("app/conf/app.json", "{}"), file("readme.txt", "hi")},
			files:   3,
			want:    []string{"app/ drwxr-xr-x", "app/conf/ drwxr-xr-x", "app/conf/app.json -rw-r--r-- {}", "app/run.sh -rwxr-xr-x #!/bin/sh\n", "readme.txt -rw-r--r-- hi"},
		},
		{
			name:    "leading ./ and the root entry",
			entries: []entry{dir("./"), dir("./app"), file("./app/a.txt", "a"), file("././b.txt", "b")},
			files:   2,
			want:    []string{"app/ drwxr-xr-x", "app/a.txt -rw-r--r-- a", "b.txt -rw-r--r-- b"},
		},
		{
			name:    "backslashes are slashes",
			entries: []entry{file(`app\bin\a.txt`, "a")},
			files:   1,
			want:    []string{"app/ drwxr-xr-x", "app/bin/ drwxr-xr-x", "app/bin/a.txt -rw-r--r-- a"},
		},
		{
			name:    "folder entry after its files",
			entries: []entry{file("a/b.txt", "b"), dir("a"), dir("a/")},
			files:   1,
			want:    []string{"a/ drwxr-xr-x", "a/b.txt -rw-r--r-- b"},
		},
		{
			name:    "symbolic links inside the package",
			entries: []entry{link("node_modules/.bin/tool", "../tool/cli.js"), exe("node_modules/tool/cli.js", "js"), link("current", "node_modules"), link("self", "."), link("a/b/up", "../.."), link("dangling", "nothing/here")},
			files:   6,
			want: []string{
				"a/ drwxr-xr-x", "a/b/ drwxr-xr-x", "a/b/up -> ../..", "current -> node_modules", "dangling -> nothing/here",
				"node_modules/ drwxr-xr-x", "node_modules/.bin/ drwxr-xr-x", "node_modules/.bin/tool -> ../tool/cli.js",
				"node_modules/tool/ drwxr-xr-x", "node_modules/tool/cli.js -rwxr-xr-x js", "self -> .",
			},
		},
		{
			name:    "hard link",
			formats: []packagefile.Format{packagefile.Tar, packagefile.TarGz},
			entries: []entry{exe("bin/a", "x"), hard("bin/b", "bin/a"), hard("c", "./bin/b")},
			files:   3,
			want:    []string{"bin/ drwxr-xr-x", "bin/a -rwxr-xr-x x", "bin/b -rwxr-xr-x x", "c -rwxr-xr-x x"},
		},
		{
			name:    "empty archive",
			entries: nil,
			files:   0,
			want:    nil,
		},
	} {
		formats := tc.formats
		if formats == nil {
			formats = allFormats
		}
		for _, format := range formats {
			t.Run(tc.name+"/"+format.String(), func(t *testing.T) {
				archive := archiveOf(t, format, tc.entries)
				dest := filepath.Join(t.TempDir(), "new", "dest")
				files, err := packagefile.Extract(context.Background(), archive, format, dest)
				if err != nil {
					t.Fatal(err)
				}
				if files != tc.files {
					t.Errorf("Extract wrote %d files, want %d", files, tc.files)
				}
				if got := tree(t, dest); !slices.Equal(got, tc.want) {
					t.Errorf("Extract wrote\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
				if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("dest: %v, %v; want a folder 0755", fi.Mode(), err)
				}
			})
		}
	}
}

func TestExtractTarBz2(t *testing.T) {
	// app/run.sh (0755) and app/readme.txt, made by GNU tar and bzip2.
	const archive = `QlpoOTFBWSZTWS7ZWYMAALh7hMuQAEBoAf+AEQR+Z95AAACAiDAAubYjUgDQA0AANGJoRqNIGQAA
AAAEVInqMI0DTQBoNMhpjgFtWmuGRiUwFYZhAbN1c0kKRnao2Ssw62CISIXeJdUGLeyMbP192HKB
LOZ1djAB7W99AMgyQGwYPOfAzaCFJMJWYcUysrCxeCQx51JLCCEtyG7Dd/tekWrCPYp5R2M+S7BK
QSQ6FJCpAWHGGkEIaZ2saMXfQiH8XckU4UJAu2VmDA==`
	data, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(archive, "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "app.1.0.0.tar.bz2")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "dest")
	files, err := packagefile.Extract(context.Background(), p, packagefile.TarBz2, dest)
	if err != nil || files != 2 {
		t.Fatalf("Extract = %d, %v; want 2 files", files, err)
	}
	want := []string{"app/ drwxr-xr-x", "app/readme.txt -rw-r--r-- hello\n", "app/run.sh -rwxr-xr-x #!/bin/sh\necho hi\n"}
	if got := tree(t, dest); !slices.Equal(got, want) {
		t.Errorf("Extract wrote %q, want %q", got, want)
	}
}

func TestExtractNupkg(t *testing.T) {
	entries := []entry{
		file("_rels/.rels", "rels"),
		file("[Content_Types].xml", "types"),
		file("package/services/metadata/core-properties/abc.psmdcp", "props"),
		file("App.nuspec", "spec"),
		file("content/my%20file.txt", "spaced"),
		file("lib/net8.0/App.dll", "dll"),
		file("package/other.txt", "kept"),
		file("_relsx/kept.txt", "kept"),
	}
	archive := archiveOf(t, packagefile.Nupkg, entries)
	dest := filepath.Join(t.TempDir(), "dest")
	files, err := packagefile.Extract(context.Background(), archive, packagefile.Nupkg, dest)
	if err != nil || files != 5 {
		t.Fatalf("Extract = %d, %v; want 5 files", files, err)
	}
	want := []string{
		"App.nuspec -rw-r--r-- spec", "_relsx/ drwxr-xr-x", "_relsx/kept.txt -rw-r--r-- kept",
		"content/ drwxr-xr-x", "content/my file.txt -rw-r--r-- spaced",
		"lib/ drwxr-xr-x", "lib/net8.0/ drwxr-xr-x", "lib/net8.0/App.dll -rw-r--r-- dll",
		"package/ drwxr-xr-x", "package/other.txt -rw-r--r-- kept",
	}
	if got := tree(t, dest); !slices.Equal(got, want) {
		t.Errorf("Extract wrote\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The same archive as a plain zip keeps everything, names undecoded.
	dest = filepath.Join(t.TempDir(), "dest")
	if files, err := packagefile.Extract(context.Background(), archive, packagefile.Zip, dest); err != nil || files != len(entries) {
		t.Fatalf("Extract as Zip = %d, %v; want %d files", files, err, len(entries))
	}
	if _, err := os.Stat(filepath.Join(dest, "content", "my%20file.txt")); err != nil {
		t.Error(err)
	}

	// A percent-encoded ".." is refused.
	for _, name := range []string{"%2e%2e/evil.txt", "content/%2E%2E%2F%2E%2E%2Fevil.txt", "a%5c..%5c..%5cevil", "bad%zz"} {
		archive := archiveOf(t, packagefile.Nupkg, []entry{file(name, "x")})
		parent := t.TempDir()
		if _, err := packagefile.Extract(context.Background(), archive, packagefile.Nupkg, filepath.Join(parent, "dest")); err == nil {
			t.Errorf("Extract of a NuGet package holding %q succeeded", name)
		}
		assertEmpty(t, parent)
	}
}

// assertEmpty fails unless dir holds nothing.
func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	if got := tree(t, dir); len(got) > 0 {
		t.Errorf("%s holds %q, want nothing", dir, got)
	}
}

func TestExtractRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		formats []packagefile.Format
		entries []entry
		message string
	}{
		{"absolute", nil, []entry{file("/tmp/evil", "x")}, "its path is absolute"},
		{"drive letter", nil, []entry{file("C:/evil", "x")}, "its path is absolute"},
		{"backslash absolute", nil, []entry{file(`\evil`, "x")}, "its path is absolute"},
		{"dot dot", nil, []entry{file("../evil", "x")}, `leads out of the folder ("..")`},
		{"dot dot inside", nil, []entry{file("a/../../evil", "x")}, `leads out of the folder ("..")`},
		{"dot dot harmless", nil, []entry{file("a/../b", "x")}, `leads out of the folder ("..")`},
		{"backslash dot dot", nil, []entry{file(`..\evil`, "x")}, `leads out of the folder ("..")`},
		{"backslash inside", nil, []entry{file(`a\..\..\evil`, "x")}, `leads out of the folder ("..")`},
		{"empty part", nil, []entry{file("a//b", "x")}, "empty or"},
		{"dot part", nil, []entry{file("a/./b", "x")}, "empty or"},
		{"control character", nil, []entry{file("a\nb", "x")}, "control character"},
		{"not UTF-8", nil, []entry{file("a\xffb", "x")}, "not UTF-8"},
		{"link out", nil, []entry{link("evil", "../outside")}, "leads out of the folder"},
		{"link out deep", nil, []entry{link("a/b/evil", "../../../outside")}, "leads out of the folder"},
		{"link absolute", nil, []entry{link("evil", "/etc/passwd")}, "its target is absolute"},
		{"link drive", nil, []entry{link("evil", "C:/Windows")}, "its target is absolute"},
		{"link backslash", nil, []entry{link("evil", `..\..\x`)}, "backslash"},
		{"link dot dot after a part", nil, []entry{link("a/up", ".."), link("a/evil", "up/../x")}, `".." after another part`},
		{"link empty", []packagefile.Format{packagefile.Zip}, []entry{link("evil", "")}, "its target is empty"},
		{"link inside a link", nil, []entry{link("a/up", ".."), link("a/up/evil", "../x")}, "both as a file and as a folder"},
		{"file inside a link", nil, []entry{link("lib", "."), file("lib/x", "x")}, "both as a file and as a folder"},
		{"file then link", nil, []entry{file("a", "x"), link("a", ".")}, "twice"},
		{"hard link out", []packagefile.Format{packagefile.Tar}, []entry{hard("evil", "../outside")}, `leads out of the folder ("..")`},
		{"hard link absolute", []packagefile.Format{packagefile.Tar}, []entry{hard("evil", "/etc/passwd")}, "absolute"},
		{"hard link to nothing", []packagefile.Format{packagefile.Tar}, []entry{hard("evil", "later"), file("later", "x")}, "not a file the archive holds before"},
		{"hard link to a folder", []packagefile.Format{packagefile.Tar}, []entry{dir("d"), hard("evil", "d")}, "not a file the archive holds before"},
		{"hard link to a link", []packagefile.Format{packagefile.Tar}, []entry{link("l", "."), hard("evil", "l")}, "not a file the archive holds before"},
		{"pipe", nil, []entry{{"fifo", 'p', ""}}, "named pipe"},
		{"device", nil, []entry{{"tty", 'c', ""}}, "device file"},
		{"twice", nil, []entry{file("a", "x"), file("a", "y")}, "twice"},
		{"twice after cleaning", nil, []entry{file("a/b", "x"), file(`./a\b`, "y")}, "twice"},
		{"file and folder", nil, []entry{file("a", "x"), file("a/b", "y")}, "both as a file and as a folder"},
		{"folder and file", nil, []entry{dir("a"), file("a", "y")}, "twice"},
	} {
		formats := tc.formats
		if formats == nil {
			formats = allFormats
		}
		for _, format := range formats {
			t.Run(tc.name+"/"+format.String(), func(t *testing.T) {
				// A good file first, so that there is something to remove.
				archive := archiveOf(t, format, append([]entry{file("good.txt", "good")}, tc.entries...))
				parent := t.TempDir()
				files, err := packagefile.Extract(context.Background(), archive, format, filepath.Join(parent, "dest"))
				if err == nil {
					t.Fatalf("Extract wrote %d files, want an error", files)
				}
				if !strings.Contains(err.Error(), tc.message) {
					t.Errorf("Extract: %v; want it to say %q", err, tc.message)
				}
				if files != 0 {
					t.Errorf("Extract failed but says it wrote %d files", files)
				}
				assertEmpty(t, parent)
			})
		}
	}
}

func TestExtractDest(t *testing.T) {
	archive := archiveOf(t, packagefile.Zip, []entry{file("a.txt", "a")})
	ctx := context.Background()

	// An empty folder is used, and kept on failure.
	empty := t.TempDir()
	if files, err := packagefile.Extract(ctx, archive, packagefile.Zip, empty); err != nil || files != 1 {
		t.Errorf("Extract into an empty folder = %d, %v", files, err)
	}
	empty = t.TempDir()
	bad := archiveOf(t, packagefile.Zip, []entry{file("a.txt", "a"), file("../b", "b")})
	if _, err := packagefile.Extract(ctx, bad, packagefile.Zip, empty); err == nil {
		t.Error("Extract of a bad archive succeeded")
	}
	if fi, err := os.Stat(empty); err != nil || !fi.IsDir() {
		t.Errorf("the empty folder given is gone: %v", err)
	}
	assertEmpty(t, empty)

	// A folder that holds something is refused, and left alone.
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "mine"), []byte("mine"), 0o644)
	if _, err := packagefile.Extract(ctx, archive, packagefile.Zip, full); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("Extract into a folder that holds a file: %v", err)
	}
	if got := tree(t, full); !slices.Equal(got, []string{"mine -rw-r--r-- mine"}) {
		t.Errorf("the full folder holds %q", got)
	}

	// A file is not a folder.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := packagefile.Extract(ctx, archive, packagefile.Zip, f); err == nil {
		t.Error("Extract into a file succeeded")
	}

	// No format, no archive, an archive of another format.
	if _, err := packagefile.Extract(ctx, archive, 0, t.TempDir()); err == nil {
		t.Error("Extract of Format(0) succeeded")
	}
	parent := t.TempDir()
	if _, err := packagefile.Extract(ctx, filepath.Join(parent, "none.zip"), packagefile.Zip, filepath.Join(parent, "dest")); err == nil {
		t.Error("Extract of a missing archive succeeded")
	}
	assertEmpty(t, parent)
	for _, format := range []packagefile.Format{packagefile.Tar, packagefile.TarGz, packagefile.TarBz2} {
		parent := t.TempDir()
		if _, err := packagefile.Extract(ctx, archive, format, filepath.Join(parent, "dest")); err == nil {
			t.Errorf("Extract of a zip file as %v succeeded", format)
		}
		assertEmpty(t, parent)
	}
}

func TestExtractCanceled(t *testing.T) {
	entries := []entry{file("a", "a"), file("b", "b")}
	for _, format := range allFormats {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		parent := t.TempDir()
		_, err := packagefile.Extract(ctx, archiveOf(t, format, entries), format, filepath.Join(parent, "dest"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Extract %v with a canceled context: %v", format, err)
		}
		assertEmpty(t, parent)
	}
}

func TestExtractTarGlobalHeader(t *testing.T) {
	// git archive writes a pax global header with the commit.
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	w.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "3afd8cb"}})
	w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a.txt", Mode: 0o644, Size: 1})
	w.Write([]byte("a"))
	w.Close()
	p := filepath.Join(t.TempDir(), "a.tar")
	os.WriteFile(p, b.Bytes(), 0o644)
	dest := filepath.Join(t.TempDir(), "dest")
	if files, err := packagefile.Extract(context.Background(), p, packagefile.Tar, dest); err != nil || files != 1 {
		t.Fatalf("Extract = %d, %v", files, err)
	}
	if got := tree(t, dest); !slices.Equal(got, []string{"a.txt -rw-r--r-- a"}) {
		t.Errorf("Extract wrote %q", got)
	}
}

// parseSpec reads a fuzzed archive: one entry a line, its kind (f, x, d,
// l, h) then its name, and for links " => " and the target.
func parseSpec(spec string) []entry {
	var entries []entry
	for _, line := range strings.Split(spec, "\n") {
		if line == "" {
			continue
		}
		e := entry{kind: line[0], name: line[1:]}
		if name, target, ok := strings.Cut(e.name, " => "); ok {
			e.name, e.body = name, target
		}
		if e.kind == 'f' || e.kind == 'x' {
			e.body = "content"
		}
		entries = append(entries, e)
	}
	return entries
}

// checkContained fails if anything but dest appeared in parent, or if a
// path under dest, followed link by link as the system does, leads out of
// dest.
func checkContained(t *testing.T, parent, dest string) {
	t.Helper()
	top, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if e.Name() != filepath.Base(dest) {
			t.Fatalf("Extract wrote %s outside dest", e.Name())
		}
	}
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dest, p)
		if out, ok := resolve(dest, dest, strings.Split(filepath.ToSlash(rel), "/"), 0); !ok {
			t.Fatalf("%s leads out of dest, to %s", rel, out)
		}
		return nil
	})
}

// resolve follows parts from the folder cur as the system would, and says
// whether it stays inside dest. A part that does not exist, or too many
// links, ends the walk: the system could go no further.
func resolve(dest, cur string, parts []string, depth int) (string, bool) {
	inside := func(p string) bool { return p == dest || strings.HasPrefix(p, dest+string(filepath.Separator)) }
	for i, part := range parts {
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			if !inside(cur) {
				return cur, false
			}
			continue
		}
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return next, true
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if depth > 40 {
			return next, true
		}
		target, err := os.Readlink(next)
		if err != nil {
			return next, true
		}
		if filepath.IsAbs(target) {
			return target, false
		}
		out, ok := resolve(dest, cur, append(strings.Split(filepath.ToSlash(target), "/"), parts[i+1:]...), depth+1)
		return out, ok
	}
	return cur, inside(cur)
}

func fuzzExtract(f *testing.F, format packagefile.Format, build func([]entry) ([]byte, error)) {
	for _, seed := range []string{
		"fa/b.txt\nxbin/run\nda/c",
		"lnode_modules/.bin/x => ../x/cli.js\nfnode_modules/x/cli.js",
		"la/up => ..\nla/evil => up/../../x",
		"f../evil\nf/abs\nfa\\..\\..\\x",
		"hb => a\nfa",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		data, err := build(parseSpec(spec))
		if err != nil {
			t.Skip(err)
		}
		archive := filepath.Join(t.TempDir(), "package")
		if err := os.WriteFile(archive, data, 0o644); err != nil {
			t.Fatal(err)
		}
		parent, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(parent, "dest")
		files, err := packagefile.Extract(context.Background(), archive, format, dest)
		checkContained(t, parent, dest)
		if err != nil {
			if files != 0 {
				t.Fatalf("Extract failed (%v) but says it wrote %d files", err, files)
			}
			if entries, _ := os.ReadDir(parent); len(entries) > 0 {
				t.Fatalf("Extract failed (%v) but left %s", err, entries[0].Name())
			}
		}
	})
}

func FuzzExtractZip(f *testing.F) { fuzzExtract(f, packagefile.Zip, zipOf) }

func FuzzExtractTar(f *testing.F) { fuzzExtract(f, packagefile.Tar, tarOf) }
