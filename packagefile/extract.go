package packagefile

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// maxLinkTarget bounds a symbolic link's target, as the systems' own
// PATH_MAX does; a longer one is refused, not cut.
const maxLinkTarget = 4096

// Extract writes the files of archive, a package file in format, into the
// folder dest, which it creates (mode 0755, with its parents) and which
// must be empty if it exists. It returns how many files it wrote: regular
// files and links, not folders.
//
// Nothing is ever written outside dest: every write goes through an
// os.Root opened on dest, and before that every entry is checked. Extract
// refuses an archive (returning an error that names the entry) that holds
//   - a name that is absolute, has a drive letter, a ".." part, an empty
//     part, a control character, or is not UTF-8 (a backslash counts as a
//     slash, as Windows tools write them, so "..\x" is refused too; a
//     leading "./" is allowed and dropped);
//   - a symbolic link whose target is absolute, holds a backslash, has a
//     ".." after another part ("a/../b"), or leads out of dest from the
//     link's folder; a link inside a folder reached through another link;
//   - a hard link to anything but a regular file the archive wrote before;
//   - a device file, a named pipe, or an entry of a type it does not know;
//   - a file's or link's name twice, or one name as a file and a folder.
//
// Symbolic links that stay inside dest are kept (as node_modules/.bin
// has); they are made after every other entry, so that no file is written
// through one. Files get mode 0755 when the archive gives them any
// executable bit, else 0644; folders 0755. Owners, times and other mode
// bits are not kept. For Nupkg, entry names are percent-decoded as NuGet
// encodes them, and NuGet's metadata is skipped as Calamari does:
// [Content_Types].xml, _rels/ and package/services/metadata/ (the .nuspec
// is kept).
//
// Sizes are not bounded. Extract stops when ctx is done, between entries
// and between reads of one. On any error it removes what it wrote, and
// dest if it made it (not the parents it made).
func Extract(ctx context.Context, archive string, format Format, dest string) (files int, err error) {
	if format < Zip || format > Tar {
		return 0, fmt.Errorf("%v is not a package format: use FormatOf to get one", format)
	}
	created, err := prepareDest(dest)
	if err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		if created {
			os.Remove(dest)
		}
		return 0, err
	}
	x := &extractor{ctx: ctx, root: root, nupkg: format == Nupkg, dirs: map[string]bool{}, names: map[string]bool{}, regular: map[string]bool{}}
	switch format {
	case Zip, Nupkg:
		err = x.zip(archive)
	default:
		err = x.tar(archive, format)
	}
	if err == nil {
		err = x.makeSymlinks()
	}
	if err != nil {
		x.clean()
		root.Close()
		if created {
			os.Remove(dest)
		}
		return 0, err
	}
	return x.files, root.Close()
}

// prepareDest makes dest, or checks that it is an empty folder.
func prepareDest(dest string) (created bool, err error) {
	f, err := os.Open(dest)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return false, fmt.Errorf("creating the folder to extract into: %w", err)
		}
		return true, os.Chmod(dest, 0o755)
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err == nil && len(names) > 0 {
		return false, fmt.Errorf("The folder %s is not empty: extract a package into an empty or new folder.", dest)
	}
	if err != io.EOF {
		return false, fmt.Errorf("%s is not a folder to extract into: %w", dest, err)
	}
	return false, nil
}

type extractor struct {
	ctx   context.Context
	root  *os.Root
	nupkg bool
	files int
	// dirs are the folders made (or found) so far; names every entry
	// written; regular the regular files, which hard links may name.
	dirs, names, regular map[string]bool
	symlinks             []symlink
}

type symlink struct{ name, target string }

// clean removes everything in dest.
func (x *extractor) clean() {
	d, err := x.root.Open(".")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		x.root.RemoveAll(n)
	}
}

func (x *extractor) zip(archive string) error {
	r, err := zip.OpenReader(archive)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("reading %s as a zip file: %w", filepath.Base(archive), err)
	}
	defer r.Close()
	for _, f := range r.File {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		name, skip, err := x.entryName(f.Name)
		if err != nil {
			return err
		}
		if skip || name == "" {
			continue
		}
		if err := x.zipEntry(f, name); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipEntry(f *zip.File, name string) error {
	mode := f.Mode()
	switch {
	case mode.IsDir() || strings.HasSuffix(f.Name, "/") || strings.HasSuffix(f.Name, `\`):
		return x.dir(name)
	case mode&fs.ModeSymlink != 0:
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("reading the link %s: %w", f.Name, err)
		}
		target, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
		rc.Close()
		if err != nil {
			return fmt.Errorf("reading the link %s: %w", f.Name, err)
		}
		return x.symlink(name, string(target))
	case mode.IsRegular():
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("reading %s: %w", f.Name, err)
		}
		defer rc.Close()
		return x.file(name, mode, rc)
	}
	return fmt.Errorf("The archive holds %q, a %s, which a package cannot hold: only files, folders and links.", f.Name, kindOf(mode))
}

func kindOf(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeDevice != 0:
		return "device file"
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe"
	case mode&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

func (x *extractor) tar(archive string, format Format) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	switch format {
	case TarGz:
		z, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("reading %s as a gzip file: %w", filepath.Base(archive), err)
		}
		defer z.Close()
		r = z
	case TarBz2:
		r = bzip2.NewReader(f)
	}
	tr := tar.NewReader(&ctxReader{ctx: x.ctx, r: r})
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			if cerr := x.ctx.Err(); cerr != nil {
				return cerr
			}
			return fmt.Errorf("reading %s as a tar file: %w", filepath.Base(archive), err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader { // pax metadata, as git archive writes
			continue
		}
		name, skip, err := x.entryName(h.Name)
		if err != nil {
			return err
		}
		if skip || name == "" {
			continue
		}
		if err := x.tarEntry(h, name, tr); err != nil {
			return err
		}
	}
}

func (x *extractor) tarEntry(h *tar.Header, name string, r io.Reader) error {
	switch h.Typeflag {
	case tar.TypeDir:
		return x.dir(name)
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		if strings.HasSuffix(h.Name, "/") {
			return x.dir(name) // an old tar's folder
		}
		return x.file(name, fs.FileMode(h.Mode), r)
	case tar.TypeSymlink:
		return x.symlink(name, h.Linkname)
	case tar.TypeLink:
		return x.hardlink(name, h.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return fmt.Errorf("The archive holds %q, a device file, which a package cannot hold: only files, folders and links.", h.Name)
	case tar.TypeFifo:
		return fmt.Errorf("The archive holds %q, a named pipe, which a package cannot hold: only files, folders and links.", h.Name)
	}
	return fmt.Errorf("The archive holds %q, an entry of tar type %q that cuttle does not know: only files, folders and links.", h.Name, h.Typeflag)
}

// nupkgSkipped says whether a NuGet package's entry is NuGet's metadata,
// which Calamari does not extract: the OPC content types, the
// relationships and the core properties (package/services/metadata/...,
// a .psmdcp file). The .nuspec stays.
func nupkgSkipped(name string) bool {
	n := strings.ToLower(name)
	return n == "[content_types].xml" || n == "_rels" || strings.HasPrefix(n, "_rels/") ||
		n == "package/services/metadata" || strings.HasPrefix(n, "package/services/metadata/")
}

// entryName turns an archive's name for an entry into a clean relative
// path with slashes: "" for the archive's root ("./"), skip for NuGet's
// metadata; an error says why the name is refused.
func (x *extractor) entryName(raw string) (name string, skip bool, err error) {
	name = raw
	if x.nupkg {
		if name, err = url.PathUnescape(raw); err != nil {
			return "", false, fmt.Errorf("The NuGet package holds %q, whose name is not percent-encoded as NuGet writes names.", raw)
		}
	}
	name, err = cleanEntryName(name)
	if err != nil {
		return "", false, fmt.Errorf("The archive holds %q: %w; extract only archives made by packaging tools.", raw, err)
	}
	if x.nupkg && nupkgSkipped(name) {
		return "", true, nil
	}
	return name, false, nil
}

// cleanEntryName makes name a relative path with slashes: backslashes
// become slashes, leading "./" and a trailing slash go. What remains must
// be "" or local: no absolute path, drive letter, "." or ".." part, empty
// part or control character.
func cleanEntryName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errors.New("its name is not UTF-8")
	}
	if strings.IndexFunc(name, isControl) >= 0 {
		return "", errors.New("its name holds a control character")
	}
	name = strings.ReplaceAll(name, `\`, "/")
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	name = strings.TrimSuffix(name, "/")
	switch {
	case name == "" || name == ".":
		return "", nil
	case strings.HasPrefix(name, "/") || hasDrive(name):
		return "", errors.New("its path is absolute")
	}
	for _, part := range strings.Split(name, "/") {
		switch part {
		case "..":
			return "", errors.New("its path leads out of the folder (\"..\")")
		case "", ".":
			return "", errors.New("its path has an empty or \".\" part")
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", errors.New("its path is not a plain file name on this system")
	}
	return name, nil
}

// hasDrive says whether p starts with a Windows drive letter, as C: does.
func hasDrive(p string) bool {
	return len(p) >= 2 && p[1] == ':' && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z')
}

func (x *extractor) claim(name string) error {
	if x.names[name] || x.dirs[name] {
		return fmt.Errorf("The archive holds %s twice: extract only archives made by packaging tools.", name)
	}
	x.names[name] = true
	return nil
}

// mkdirAll makes folder name and its parents, each mode 0755.
func (x *extractor) mkdirAll(name string) error {
	if name == "." || name == "" || x.dirs[name] {
		return nil
	}
	if x.names[name] {
		return fmt.Errorf("The archive holds %s both as a file and as a folder: extract only archives made by packaging tools.", name)
	}
	if err := x.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := x.root.Mkdir(name, 0o755); err != nil {
		return fmt.Errorf("making folder %s: %w", name, err)
	}
	if err := x.root.Chmod(name, 0o755); err != nil {
		return err
	}
	x.dirs[name] = true
	return nil
}

func (x *extractor) dir(name string) error {
	if x.names[name] {
		return fmt.Errorf("The archive holds %s both as a file and as a folder: extract only archives made by packaging tools.", name)
	}
	return x.mkdirAll(name)
}

func (x *extractor) file(name string, mode fs.FileMode, r io.Reader) error {
	if err := x.claim(name); err != nil {
		return err
	}
	if err := x.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	_, err = io.Copy(f, &ctxReader{ctx: x.ctx, r: r})
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if cerr := x.ctx.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("writing %s: %w", name, err)
	}
	x.regular[name] = true
	x.files++
	return nil
}

// checkSymlinkTarget refuses a link's target that could lead out of dest
// (see Extract). Every link that passes leads, once made, to a place
// inside dest: its folder is a real folder in dest, its leading ".." parts
// climb from there no higher than dest, and what follows only descends,
// through real folders or other such links.
func checkSymlinkTarget(name, target string) error {
	switch {
	case target == "":
		return errors.New("its target is empty")
	case len(target) > maxLinkTarget:
		return errors.New("its target is too long")
	case !utf8.ValidString(target) || strings.IndexFunc(target, isControl) >= 0:
		return errors.New("its target holds a control character or is not UTF-8")
	case strings.Contains(target, `\`):
		return errors.New("its target holds a backslash")
	case strings.HasPrefix(target, "/") || hasDrive(target):
		return errors.New("its target is absolute")
	}
	descended := false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if descended {
				return errors.New("its target has \"..\" after another part")
			}
		default:
			descended = true
		}
	}
	if t := path.Join(path.Dir(name), target); t == ".." || strings.HasPrefix(t, "../") {
		return errors.New("its target leads out of the folder")
	}
	return nil
}

func (x *extractor) symlink(name, target string) error {
	if err := checkSymlinkTarget(name, target); err != nil {
		return fmt.Errorf("The archive holds the link %s -> %q: %w; extract only archives whose links stay inside the package.", name, target, err)
	}
	if err := x.claim(name); err != nil {
		return err
	}
	x.symlinks = append(x.symlinks, symlink{name, target})
	return nil
}

// makeSymlinks makes the links, after every other entry: a link's folder
// must be a real folder, not reached through another link.
func (x *extractor) makeSymlinks() error {
	for _, l := range x.symlinks {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		if err := x.mkdirAll(path.Dir(l.name)); err != nil {
			return err
		}
		for d := path.Dir(l.name); d != "."; d = path.Dir(d) {
			fi, err := x.root.Lstat(d)
			if err != nil {
				return err
			}
			if !fi.IsDir() {
				return fmt.Errorf("The archive holds the link %s inside %s, which is a link itself: extract only archives whose links stay inside the package.", l.name, d)
			}
		}
		if err := x.root.Symlink(l.target, l.name); err != nil {
			return fmt.Errorf("making the link %s: %w", l.name, err)
		}
		x.files++
	}
	return nil
}

func (x *extractor) hardlink(name, target string) error {
	t, err := cleanEntryName(target)
	if err == nil && !x.regular[t] {
		err = errors.New("it is not a file the archive holds before the link")
	}
	if err != nil {
		return fmt.Errorf("The archive holds the hard link %s -> %q: %w; extract only archives whose links stay inside the package.", name, target, err)
	}
	if err := x.claim(name); err != nil {
		return err
	}
	if err := x.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := x.root.Link(t, name); err != nil {
		return fmt.Errorf("making the hard link %s: %w", name, err)
	}
	x.regular[name] = true
	x.files++
	return nil
}

// ctxReader fails its reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
