package packagefile_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cuttledeploy/cuttle/packagefile"
)

// TestParseFileNameClient is the Octopus client's table
// (TestParsePackageIdAndVersion in go-octopusdeploy's
// pkg/packages/package_service_test.go), with the extension added.
func TestParseFileNameClient(t *testing.T) {
	for _, tc := range []struct {
		name, id, version, ext string
		fails                  bool
	}{
		{name: "Octopus.Tentacle.6.3.417-x64.zip", id: "Octopus.Tentacle", version: "6.3.417-x64", ext: ".zip"},
		{name: "NuGet.CommandLine.6.2.3.nupkg", id: "NuGet.CommandLine", version: "6.2.3", ext: ".nupkg"},
		{name: "pterm.0.12.42.zip", id: "pterm", version: "0.12.42", ext: ".zip"},
		{name: "powershell-linux-alpine-x64.7.2.10.tar.gz", id: "powershell-linux-alpine-x64", version: "7.2.10", ext: ".tar.gz"},
		{name: "powershell-linux-alpine-x64.7.2.10.tar.bz2", id: "powershell-linux-alpine-x64", version: "7.2.10", ext: ".tar.bz2"},
		{name: "powershell-linux-alpine-x64.7.2.10.tar", id: "powershell-linux-alpine-x64", version: "7.2.10", ext: ".tar"},

		// Quirk: a zipped msi keeps .msi in its version, as in the client.
		{name: "Octopus.Tentacle.6.3.417-x64.msi.zip", id: "Octopus.Tentacle", version: "6.3.417-x64.msi", ext: ".zip"},
		// Quirk: a hyphen before the version is part of the PackageId.
		{name: "pterm-0.12.42.zip", id: "pterm-0", version: "12.42", ext: ".zip"},

		{name: "SqlServer2000.zip", fails: true},
		{name: "Octopus.Tentacle.zip", fails: true},
		{name: "Octopus.Tentacle-77.zip", fails: true},

		// Case of the extension.
		{name: "Octopus.Tentacle.6.3.417-x64.ZIP", id: "Octopus.Tentacle", version: "6.3.417-x64", ext: ".zip"},
		{name: "NuGet.CommandLine.6.2.3.NUPKG", id: "NuGet.CommandLine", version: "6.2.3", ext: ".nupkg"},
		{name: "pterm.0.12.42.ZIP", id: "pterm", version: "0.12.42", ext: ".zip"},
		{name: "powershell-linux-alpine-x64.7.2.10.TAR.GZ", id: "powershell-linux-alpine-x64", version: "7.2.10", ext: ".tar.gz"},
		{name: "powershell-linux-alpine-x64.7.2.10.TAR.BZ2", id: "powershell-linux-alpine-x64", version: "7.2.10", ext: ".tar.bz2"},
		{name: "powershell-linux-alpine-x64.7.2.10.TAR", id: "powershell-linux-alpine-x64", version: "7.2.10", ext: ".tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, version, ext, err := packagefile.ParseFileName(tc.name)
			if tc.fails {
				if err == nil {
					t.Fatalf("ParseFileName(%q) = %q, %q, %q; want an error", tc.name, id, version, ext)
				}
				if id != "" || version != "" || ext != "" {
					t.Errorf("ParseFileName(%q) failed but returned %q, %q, %q", tc.name, id, version, ext)
				}
				return
			}
			if err != nil || id != tc.id || version != tc.version || ext != tc.ext {
				t.Errorf("ParseFileName(%q) = %q, %q, %q, %v; want %q, %q, %q", tc.name, id, version, ext, err, tc.id, tc.version, tc.ext)
			}
		})
	}
}

func TestParseFileName(t *testing.T) {
	for _, tc := range []struct {
		name, id, version, ext string
	}{
		{"app.1.0.0.zip", "app", "1.0.0", ".zip"},
		{"app.1.zip", "app", "1", ".zip"},
		{"app.1.2.3.4.zip", "app", "1.2.3.4", ".zip"},
		{"a.1.2.3.4.5.zip", "a.1", "2.3.4.5", ".zip"},
		{"App_Web.2.0.0-beta.1+sha.5114f85.tgz", "App_Web", "2.0.0-beta.1+sha.5114f85", ".tgz"},
		{"app.1.0.0.tbz", "app", "1.0.0", ".tbz"},
		{"app.1.0.0.tar.bz", "app", "1.0.0", ".tar.bz"},
		{"app.1.0.0.Tar.Gz", "app", "1.0.0", ".tar.gz"},
		{"1.2.3.zip", "1", "2.3", ".zip"},
		// The client takes ".tar" off before any extension.
		{"app.1.0.0.tar.zip", "app", "1.0.0", ".zip"},
		{"app.1.0.0.tar.tgz", "app", "1.0.0", ".tgz"},
		{strings.Repeat("a", 100) + ".1.0.zip", strings.Repeat("a", 100), "1.0", ".zip"},
		{"CONSOLE.1.0.zip", "CONSOLE", "1.0", ".zip"},
		{"app.v1.0.zip", "app.v1", "0", ".zip"}, // as the client reads it
	} {
		id, version, ext, err := packagefile.ParseFileName(tc.name)
		if err != nil || id != tc.id || version != tc.version || ext != tc.ext {
			t.Errorf("ParseFileName(%q) = %q, %q, %q, %v; want %q, %q, %q", tc.name, id, version, ext, err, tc.id, tc.version, tc.ext)
		}
	}
}

func TestParseFileNameRefuses(t *testing.T) {
	for _, tc := range []struct{ name, message string }{
		{"app.zip", "The file name app.zip has no version: name it <PackageId>.<Version>.zip, such as app.1.0.0.zip."},
		{"web-api.tar.gz", "The file name web-api.tar.gz has no version: name it <PackageId>.<Version>.tar.gz, such as web-api.1.0.0.tar.gz."},
		{"", "The package file has no name: name it <PackageId>.<Version>.zip, such as app.1.0.0.zip."},
		{"app.1.0.0.rar", "The file name app.1.0.0.rar has no extension of a package cuttle can extract: use .zip, .nupkg, .tar.gz, .tgz, .tar.bz2, .tbz or .tar, such as app.1.0.0.zip."},
		{"app.1.0.0", "has no extension"},
		{"app.1.0.0.gz", "has no extension"},
		{"../app.1.0.0.zip", "holds a path"},
		{"dir/app.1.0.0.zip", "holds a path"},
		{`..\app.1.0.0.zip`, "holds a path"},
		{"/app.1.0.0.zip", "holds a path"},
		{"app\x00.1.0.0.zip", "control character"},
		{"app\n.1.0.0.zip", "control character"},
		{"app\xff.1.0.0.zip", "not UTF-8"},
		{"my app.1.0.0.zip", `holds ' ', which a package file name cannot`},
		{"appé.1.0.0.zip", `holds 'é'`},
		{".app.1.0.0.zip", "is not <PackageId>.<Version>.zip"},
		{"app..1.0.0.zip", "is not <PackageId>.<Version>.zip"},
		{"app.1.0.0-.zip", "is not <PackageId>.<Version>.zip"},
		{"app.1.0.0+.zip", "is not <PackageId>.<Version>.zip"},
		{".zip", "has no version"},
		{".1.0.zip", "is not <PackageId>.<Version>.zip"},
		{"app.1.0-beta..1.zip", "is not <PackageId>.<Version>.zip"},
		{"app.v1.zip", "has no version"},
		{strings.Repeat("a", 101) + ".1.0.zip", "is 101 characters long: a PackageId may have at most 100."},
		{"app." + strings.Repeat("1", 252) + ".zip", "bytes long: a package file name may have at most 255."},
		{"app.99999999999999999999.zip", "is not one cuttle can order"},
		{"NUL.1.0.zip", "a device name on Windows"},
		{"com1.tools.1.0.zip", "a device name on Windows"},
	} {
		id, version, ext, err := packagefile.ParseFileName(tc.name)
		if err == nil {
			t.Errorf("ParseFileName(%q) = %q, %q, %q; want an error", tc.name, id, version, ext)
			continue
		}
		if !strings.Contains(err.Error(), tc.message) {
			t.Errorf("ParseFileName(%q): %v; want it to say %q", tc.name, err, tc.message)
		}
		if id != "" || version != "" || ext != "" {
			t.Errorf("ParseFileName(%q) failed but returned %q, %q, %q", tc.name, id, version, ext)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"app", "Octopus.Tentacle", "a-b_c.d", "1", strings.Repeat("x", 100), "CONSOLE", "nul_x"} {
		if err := packagefile.CheckID(id); err != nil {
			t.Errorf("CheckID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", ".app", "a..b", "a/b", `a\b`, "a b", "a:b", "é", "a\x00", strings.Repeat("x", 101), "NUL", "Aux.Tools", "lpt9"} {
		if err := packagefile.CheckID(id); err == nil {
			t.Errorf("CheckID(%q) = nil, want an error", id)
		}
	}
}

func TestFormatOf(t *testing.T) {
	for ext, want := range map[string]packagefile.Format{
		"zip": packagefile.Zip, ".zip": packagefile.Zip, "ZIP": packagefile.Zip,
		"nupkg": packagefile.Nupkg, ".NuPkg": packagefile.Nupkg,
		"tar.gz": packagefile.TarGz, ".tgz": packagefile.TarGz,
		"tar.bz2": packagefile.TarBz2, ".tar.bz": packagefile.TarBz2, "tbz": packagefile.TarBz2,
		"tar": packagefile.Tar, ".TAR": packagefile.Tar,
	} {
		if got, ok := packagefile.FormatOf(ext); !ok || got != want {
			t.Errorf("FormatOf(%q) = %v, %v; want %v", ext, got, ok, want)
		}
	}
	for _, ext := range []string{"", ".", "gz", "rar", "7z", "tar.xz", "..zip", "zip.", " zip"} {
		if got, ok := packagefile.FormatOf(ext); ok {
			t.Errorf("FormatOf(%q) = %v, want none", ext, got)
		}
	}
	// Every extension ParseFileName returns has a format.
	for _, name := range []string{"a.1.zip", "a.1.nupkg", "a.1.tar.gz", "a.1.tgz", "a.1.tar.bz2", "a.1.tar.bz", "a.1.tbz", "a.1.tar"} {
		_, _, ext, err := packagefile.ParseFileName(name)
		if _, ok := packagefile.FormatOf(ext); err != nil || !ok {
			t.Errorf("ParseFileName(%q) gives extension %q, %v, which has no format", name, ext, err)
		}
	}
	if s := packagefile.TarGz.String(); s != "tar.gz" {
		t.Errorf("TarGz.String() = %q", s)
	}
	if s := packagefile.Format(0).String(); s != "Format(0)" {
		t.Errorf("Format(0).String() = %q", s)
	}
}

func FuzzParseFileName(f *testing.F) {
	for _, seed := range []string{"app.1.0.0.zip", "Octopus.Tentacle.6.3.417-x64.msi.zip", "pterm-0.12.42.tar.gz", "../a.1.zip", "a..1.zip", "a.1.0.0.tar.tar"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id, version, ext, err := packagefile.ParseFileName(name)
		if err != nil {
			if id != "" || version != "" || ext != "" {
				t.Fatalf("ParseFileName(%q) failed but returned %q, %q, %q", name, id, version, ext)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "The ") || !strings.HasSuffix(msg, ".") {
				t.Fatalf("ParseFileName(%q): %q is not a sentence", name, msg)
			}
			return
		}
		if err := packagefile.CheckID(id); err != nil {
			t.Fatalf("ParseFileName(%q) accepted PackageId %q: %v", name, id, err)
		}
		for _, r := range id {
			if !(r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
				t.Fatalf("ParseFileName(%q) accepted PackageId %q holding %q", name, id, r)
			}
		}
		if id[0] == '.' || strings.Contains(id, "..") || utf8.RuneCountInString(id) > packagefile.MaxIDLength {
			t.Fatalf("ParseFileName(%q) accepted PackageId %q", name, id)
		}
		if strings.ContainsAny(version, "/\\") || strings.Contains(version, "..") || version == "" {
			t.Fatalf("ParseFileName(%q) accepted version %q", name, version)
		}
		if _, ok := packagefile.FormatOf(ext); !ok {
			t.Fatalf("ParseFileName(%q) accepted extension %q", name, ext)
		}
		if !strings.EqualFold(name[len(name)-len(ext):], ext) || len(name) > packagefile.MaxNameLength {
			t.Fatalf("ParseFileName(%q) = extension %q", name, ext)
		}
	})
}
