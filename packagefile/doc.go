// Package packagefile is about the package files of the built-in package
// repository: naming them, which the node does when a file is uploaded,
// and using them, which agents do when they deploy one.
//
//   - ParseFileName reads a file name such as app.1.0.0.zip into PackageId,
//     version and extension by the Octopus client's rules, and FormatOf
//     maps an extension to a Format.
//   - Extract writes a package's files into an empty folder.
//   - SubstituteVariables replaces #{...} templates in the files that
//     patterns match ("Substitute Variables in Templates"), and
//     JSONConfigurationVariables sets the properties of JSON files that
//     variables name ("JSON configuration variables").
//
// # Safety
//
// A package file comes from whoever may upload one, and its content from
// whoever built it; the package keeps these rules against both.
//
//   - A name that ParseFileName accepts can be a storage key's last part
//     as it is: its PackageId is letters, digits, '.', '-' and '_' only,
//     never starts with a dot nor holds "..", at most 100 characters and
//     no Windows device name; its version is one semver.Parse reads; the
//     whole name has no path separator, no control character and at most
//     255 bytes (DESIGN.md invariant 13: every input is bounded).
//   - Extract never writes outside its folder: it refuses absolute names,
//     ".." parts (with a backslash counted as a slash), devices and pipes,
//     and links that could lead out, and it writes through an os.Root on
//     the folder, which refuses any path that escapes it even if a check
//     were missed. What it kept of a failed extraction, it removes.
//   - SubstituteVariables and JSONConfigurationVariables refuse patterns
//     that lead out of their folder, follow no links, write through an
//     os.Root, and replace a file atomically (a temporary file renamed
//     over it), so that a reader or a crash never sees half a file.
//   - Errors that a user can act on are plain sentences that say what to
//     do, such as "The file name app.zip has no version: name it
//     <PackageId>.<Version>.zip, such as app.1.0.0.zip."
//
// Extract bounds no sizes (a package may be large); it stops when its
// context is done.
package packagefile
