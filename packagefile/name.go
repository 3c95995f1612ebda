package packagefile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/cuttledeploy/cuttle/semver"
)

// Format is how a package file is archived.
type Format int

// The formats Extract reads. The zero Format is none of them.
const (
	// Zip is a zip file (.zip).
	Zip Format = iota + 1
	// Nupkg is a NuGet package (.nupkg): a zip file whose NuGet metadata
	// entries Extract skips and whose entry names are percent-encoded.
	Nupkg
	// TarGz is a tar file compressed with gzip (.tar.gz, .tgz).
	TarGz
	// TarBz2 is a tar file compressed with bzip2 (.tar.bz2, .tar.bz, .tbz).
	TarBz2
	// Tar is an uncompressed tar file (.tar).
	Tar
)

// String is the format's usual extension without its dot, such as
// "tar.gz", or "Format(N)" for a value that is no format.
func (f Format) String() string {
	switch f {
	case Zip:
		return "zip"
	case Nupkg:
		return "nupkg"
	case TarGz:
		return "tar.gz"
	case TarBz2:
		return "tar.bz2"
	case Tar:
		return "tar"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// extensions are the accepted extensions, lower case, longest first so
// that ".tar.gz" is found before ".tar" could be.
var extensions = []struct {
	ext    string
	format Format
}{
	{".tar.bz2", TarBz2},
	{".tar.gz", TarGz},
	{".tar.bz", TarBz2},
	{".nupkg", Nupkg},
	{".tgz", TarGz},
	{".tbz", TarBz2},
	{".tar", Tar},
	{".zip", Zip},
}

// FormatOf returns the format of a file extension, with or without its
// leading dot and in any case: zip (Zip), nupkg (Nupkg), tar.gz and tgz
// (TarGz), tar.bz2, tar.bz and tbz (TarBz2), tar (Tar). It answers false
// for any other extension.
func FormatOf(ext string) (Format, bool) {
	ext = strings.ToLower(ext)
	if !strings.HasPrefix(ext, ".") {
		ext = "." + ext
	}
	for _, e := range extensions {
		if e.ext == ext {
			return e.format, true
		}
	}
	return 0, false
}

// Bounds of a package file's name: a PackageId is at most MaxIDLength
// characters (NuGet's limit, which Octopus keeps), and the whole name at most
// MaxNameLength bytes, the longest file name common file systems hold.
const (
	MaxIDLength   = 100
	MaxNameLength = 255
)

// identity is the Octopus client's pattern (ParsePackageIDAndVersion in
// go-octopusdeploy, after PackageIdentityParser of the C# client): a
// PackageId of word characters joined by single '.', '-' or '_', matched
// as short as possible, then '.' and a version of one to four numbers with
// an optional pre-release tag and build metadata. Go's \w and \d are
// ASCII only, as in the client.
var identity = regexp.MustCompile(`^(\w+(?:[_.-]\w+)*?)\.(\d+(?:\.\d+){0,3}(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)$`)

// ParseFileName reads a package file's base name, such as
// "Octopus.Tentacle.6.3.417-x64.zip", into its PackageId
// ("Octopus.Tentacle"), version ("6.3.417-x64") and extension (".zip").
//
// The PackageId and version follow the Octopus client's rules exactly:
// the extension comes off (and a ".tar" before it), then the PackageId is
// the shortest run of letters, digits and '_' joined by single '.', '-'
// or '_' that a '.' and a version follow to the end. So
// "pterm-0.12.42.zip" is PackageId "pterm-0", version "12.42", and
// "app.1.0.0-x64.msi.zip" is version "1.0.0-x64.msi", as in the client.
//
// The client takes any extension; ParseFileName only those of the formats
// Extract reads, in any case: .zip, .nupkg, .tar.gz, .tgz, .tar.bz2,
// .tar.bz, .tbz and .tar. The extension is returned in lower case with its
// dot; FormatOf gives its format.
//
// Beyond the client's rules it refuses what must never name a stored
// file: a name over MaxNameLength bytes or holding a path separator or a
// control character, a PackageId over MaxIDLength characters or that is
// a device name of Windows (CON, NUL, COM1...) before its first dot, and
// a version that semver.Parse refuses (a number beyond 64 bits). The
// errors are sentences that say how to name the file.
func ParseFileName(name string) (id, version, ext string, err error) {
	const form = "<PackageId>.<Version>"
	switch {
	case name == "":
		return "", "", "", fmt.Errorf("The package file has no name: name it %s.zip, such as app.1.0.0.zip.", form)
	case len(name) > MaxNameLength:
		return "", "", "", fmt.Errorf("The file name %.40q... is %d bytes long: a package file name may have at most %d.", name, len(name), MaxNameLength)
	case strings.ContainsAny(name, `/\`):
		return "", "", "", fmt.Errorf("The file name %q holds a path: give the file's name alone, such as app.1.0.0.zip.", name)
	}
	if !utf8.ValidString(name) || strings.IndexFunc(name, isControl) >= 0 {
		return "", "", "", fmt.Errorf("The file name %q holds a control character or is not UTF-8: name it %s.zip, such as app.1.0.0.zip.", name, form)
	}
	lower := strings.ToLower(name)
	for _, e := range extensions {
		if strings.HasSuffix(lower, e.ext) {
			ext = e.ext
			break
		}
	}
	if ext == "" {
		return "", "", "", fmt.Errorf("The file name %s has no extension of a package cuttle can extract: use .zip, .nupkg, .tar.gz, .tgz, .tar.bz2, .tbz or .tar, such as app.1.0.0.zip.", name)
	}
	stem := removeExtension(name)
	m := identity.FindStringSubmatch(stem)
	if m == nil {
		return "", "", "", nameError(name, stem, ext)
	}
	id, version = m[1], m[2]
	if n := utf8.RuneCountInString(id); n > MaxIDLength {
		return "", "", "", fmt.Errorf("The PackageId of %s is %d characters long: a PackageId may have at most %d.", name, n, MaxIDLength)
	}
	if err := CheckID(id); err != nil {
		return "", "", "", err
	}
	if _, err := semver.Parse(version); err != nil {
		return "", "", "", fmt.Errorf("The version %s of file name %s is not one cuttle can order (%v): use numbers below 2^63, such as %s.1.0.0%s.", version, name, err, id, ext)
	}
	return id, version, ext, nil
}

// removeExtension takes the last extension off name, and then ".tar" (in
// any case) if what remains ends with it and is over 3 bytes long, as the
// client does: "a.1.0.tar.gz" is "a.1.0", and so is "a.1.0.tar.zip".
func removeExtension(name string) string {
	s := withoutLastExtension(name)
	if len(s) > 3 && strings.EqualFold(extOf(s), ".tar") {
		return withoutLastExtension(s)
	}
	return s
}

func withoutLastExtension(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[:i]
	}
	return s
}

func extOf(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i:]
	}
	return ""
}

// nameError says why stem (name without its extension) is not
// <PackageId>.<Version>.
func nameError(name, stem, ext string) error {
	const form = "<PackageId>.<Version>"
	if i := strings.IndexFunc(stem, func(r rune) bool { return !isWord(r) && !strings.ContainsRune(".-+", r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(stem[i:])
		return fmt.Errorf("The file name %q holds %q, which a package file name cannot: use only letters, digits, '.', '-' and '_' in the PackageId, such as app.1.0.0%s.", name, r, ext)
	}
	if !hasVersion.MatchString(stem) {
		example := "app"
		if wordsOnly.MatchString(stem) && len(stem) <= MaxIDLength {
			example = stem
		}
		return fmt.Errorf("The file name %s has no version: name it %s%s, such as %s.1.0.0%s.", name, form, ext, example, ext)
	}
	return fmt.Errorf("The file name %s is not %s%s: the PackageId is letters, digits and '_' joined by single '.', '-' or '_', and the version one to four numbers with an optional -prerelease and +metadata, such as app.1.0.0-beta.1%s.", name, form, ext, ext)
}

var (
	hasVersion = regexp.MustCompile(`\.\d`)
	wordsOnly  = regexp.MustCompile(`^\w+(?:[_.-]\w+)*$`)
)

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || 0x80 <= r && r < 0xa0 }

func isWord(r rune) bool {
	return r == '_' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
}

// windowsDevices are the names Windows keeps for devices, whatever
// extension follows them.
var windowsDevices = map[string]bool{
	"con": true, "prn": true, "aux": true, "nul": true,
	"com1": true, "com2": true, "com3": true, "com4": true, "com5": true, "com6": true, "com7": true, "com8": true, "com9": true,
	"lpt1": true, "lpt2": true, "lpt3": true, "lpt4": true, "lpt5": true, "lpt6": true, "lpt7": true, "lpt8": true, "lpt9": true,
}

// CheckID reports whether id can name stored files: 1 to MaxIDLength
// characters, each a letter, digit, '.', '-' or '_' (ASCII), not starting
// with '.', without "..", and not a Windows device name (such as NUL)
// before its first dot. Every PackageId ParseFileName returns passes; the
// check is for ids from elsewhere, such as an API request.
func CheckID(id string) error {
	if id == "" {
		return errors.New("The PackageId is empty: give one, such as app.")
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("The PackageId %.40q... is %d characters long: a PackageId may have at most %d.", id, len(id), MaxIDLength)
	}
	for _, r := range id {
		if !isWord(r) && r != '.' && r != '-' {
			return fmt.Errorf("The PackageId %q holds %q: use only letters, digits, '.', '-' and '_'.", id, r)
		}
	}
	switch {
	case id[0] == '.':
		return fmt.Errorf("The PackageId %q starts with a dot: start it with a letter or digit.", id)
	case strings.Contains(id, ".."):
		return fmt.Errorf("The PackageId %q holds \"..\": separate its parts with single dots.", id)
	}
	first, _, _ := strings.Cut(id, ".")
	if windowsDevices[strings.ToLower(first)] {
		return fmt.Errorf("The PackageId %q starts with %s, a device name on Windows: choose another name.", id, first)
	}
	return nil
}
