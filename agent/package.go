package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/packagefile"
	"github.com/cuttledeploy/cuttle/variables"
)

// installationDirectoryVariable is the variable the agent adds for a
// package's scripts: the folder the package was extracted to.
const installationDirectoryVariable = "Octopus.Action.Package.InstallationDirectoryPath"

// applicationsDir is the folder of the work folder that holds extracted
// packages, Applications/<environment>/<package>/<version>, which
// PrunePackages keeps to the newest.
const applicationsDir = "Applications"

// maxFolderSuffix bounds the _1, _2, ... tried for a package's folder.
const maxFolderSuffix = 10000

// packageScripts are the scripts a package may hold at its top level, in
// the order they run, without the extension of the syntax.
var packageScripts = []string{"PreDeploy", "Deploy", "PostDeploy"}

// packageSyntaxes are the syntaxes of a package's scripts (a key of
// shells), by DeployPackage.Syntax; empty is Bash.
var packageSyntaxes = map[string]string{"": "Bash", "Bash": "Bash", "PowerShell": "PowerShell"}

// inUse counts the paths the running DeployPackage commands use: the
// cache file each deploys from and the folder it extracts to. The zero
// value is ready to use.
type inUse struct {
	mu    sync.Mutex
	paths map[string]int
}

// hold marks path used until the returned function is called (once).
func (u *inUse) hold(path string) (release func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.paths == nil {
		u.paths = map[string]int{}
	}
	u.paths[path]++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.paths[path]--; u.paths[path] <= 0 {
				delete(u.paths, path)
			}
		})
	}
}

// unlessHeld calls remove, holding the set's lock, unless path is held,
// and reports whether it did: no command takes hold of path meanwhile.
func (u *inUse) unlessHeld(path string, remove func() error) (removed bool, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.paths[path] > 0 {
		return false, nil
	}
	return true, remove()
}

// deployPackage runs a DeployPackage command (agentapi.DeployPackage).
//
// The file comes from the agent's cache, <home>/packages/<sha256><ext>:
// a file there with the command's size is taken as the file the name's
// SHA-256 says, without hashing it again, since only a file whose digest
// was checked in full is ever moved there (a rename, so never a part of
// one); its modification time is set to now, which PrunePackages reads as
// its last use. Should extracting a cached file fail, it is hashed then,
// and removed from the cache if it was damaged. A file not in the cache
// is fetched as ReceiveFile fetches one (fetch), into the command's own
// partial file, and renamed into the cache: two commands that fetch the
// same package at once each write their own partial file, and the second
// rename replaces a file with the same bytes.
//
// The folder is Folder in the work folder (refused if it leads out), with
// _1, _2, ... added until a new one is made (claimed with a mkdir, so two
// commands never share one); or CustomFolder, absolute, which must be
// empty unless PurgeCustomFolder has it emptied first. Then variables are
// substituted (#{...} templates, JSON configuration variables; a pattern
// that matches no file is a warning), and the package's PreDeploy, Deploy
// and PostDeploy scripts of the syntax run in the folder, in that order,
// each after variables.Preamble; the first that fails fails the command.
// Once they have ended, the artifacts they declared are uploaded
// (uploadArtifacts), whatever the outcome.
func (a *Agent) deployPackage(ctx context.Context, c *command) outcome {
	var p agentapi.DeployPackage
	if err := decodePayload(c, &p); err != nil {
		return failed("%v", err)
	}
	format, ok := packagefile.FormatOf(p.Extension)
	if !ok {
		return failed("The package's extension %q is not one this agent can extract: use .zip, .nupkg, .tar.gz, .tgz, .tar.bz2, .tar.bz, .tbz or .tar.", p.Extension)
	}
	ext := "." + strings.TrimPrefix(strings.ToLower(p.Extension), ".")
	pkg := p.PackageID + " " + p.Version
	d, err := newDownload(c.kind, p.PackageID+"."+p.Version+ext, p.Size, p.SHA256)
	if err != nil {
		return failed("%v", err)
	}
	syntax, ok := packageSyntaxes[p.Syntax]
	if !ok {
		return failed("the package's Syntax %q is not supported; use Bash or PowerShell", p.Syntax)
	}
	if p.TimeoutSeconds < 0 {
		return failed("the package's TimeoutSeconds is %d; use 0 for no limit", p.TimeoutSeconds)
	}
	// The folder is checked before anything is fetched.
	var folder string
	if p.CustomFolder != "" {
		if folder, err = a.customFolder(p.CustomFolder); err != nil {
			return refusePath(c, err)
		}
	} else {
		if folder, err = a.resolve(p.Folder); err != nil {
			return refusePath(c, err)
		}
		if folder == a.work {
			return refusePath(c, fmt.Errorf("the Folder %q is the agent's work folder %s itself; extract a package into a folder of its own", p.Folder, a.work))
		}
	}

	cached := filepath.Join(a.packages, d.sha256+ext)
	defer a.inUse.hold(cached)()
	archive, fromCache, resumes, err := a.packageFile(ctx, c, pkg, d, cached)
	if err != nil {
		return failed("%v", err)
	}

	var files int
	if p.CustomFolder != "" {
		defer a.inUse.hold(folder)()
		if err := a.prepareCustomFolder(c, folder, p.PurgeCustomFolder); err != nil {
			return failed("%v", err)
		}
		files, err = packagefile.Extract(ctx, archive, format, folder)
	} else {
		var release func()
		if folder, release, err = a.claimFolder(folder); err != nil {
			return failed("%v", err)
		}
		defer release()
		if files, err = packagefile.Extract(ctx, archive, format, folder); err != nil {
			os.Remove(folder) // Extract emptied it
		}
	}
	if err != nil {
		if fromCache && ctx.Err() == nil {
			if sum, herr := fileSHA256(archive); herr == nil && sum != d.sha256 {
				os.Remove(archive)
				return failed("The package file of %s in the agent's cache was damaged (its SHA-256 is now %s): it was removed from the cache; deploy again to fetch it anew.", pkg, sum)
			}
		}
		return failed("Extracting %s: %v", pkg, err)
	}
	c.info("Extracted %d files of %s to %s", files, pkg, folder)
	res := agentapi.DeployPackageResult{InstallationDirectory: folder, FromCache: fromCache, Files: files, Resumes: resumes, Scripts: []string{}}
	withResult := func(o outcome) outcome {
		o.Result, _ = json.Marshal(res) // a failure after the extraction still tells where it went
		return o
	}

	vars, names := packageVariables(p.Variables, p.Names, folder)
	lookup := lookupIgnoringCase(vars, names)
	if len(p.Substitute) > 0 {
		changed, unmatched, err := packagefile.SubstituteVariables(folder, p.Substitute, func(s string) (string, error) { return variables.Evaluate(s, lookup) })
		for _, f := range changed {
			c.info("Substituted variables in %s", f)
		}
		for _, pattern := range unmatched {
			c.warn("No files were found that match the substitution target pattern %q", pattern)
		}
		if err != nil {
			return withResult(failed("%v", err))
		}
	}
	if len(p.JSONFiles) > 0 {
		changed, unmatched, err := packagefile.JSONConfigurationVariables(folder, p.JSONFiles, lookup)
		for _, f := range changed {
			c.info("Replaced JSON configuration variables in %s", f)
		}
		for _, pattern := range unmatched {
			c.warn("No files were found that match the JSON configuration variables target pattern %q", pattern)
		}
		if err != nil {
			return withResult(failed("%v", err))
		}
	}

	var scripts []packageScript
	if !p.ExtractOnly {
		if scripts, err = findPackageScripts(folder, shells[syntax].extension); err != nil {
			return withResult(failed("looking for the package's scripts: %v", err))
		}
	}
	preamble := variables.Preamble(syntax, names, lookup)
	env := a.commandEnv(c)
	arts := &artifacts{}
	for i, s := range scripts {
		c.info("Running %s", s.file)
		res.Scripts = append(res.Scripts, s.file)
		o := a.runShell(ctx, c, shellRun{
			syntax:    syntax,
			name:      fmt.Sprintf("package-%d-%s", i+1, s.name),
			body:      preamble + s.body,
			dir:       folder,
			env:       env,
			timeout:   time.Duration(p.TimeoutSeconds) * time.Second,
			what:      "The package's " + s.file,
			artifacts: arts,
		})
		if o.State != cuttle.CommandSuccess {
			a.uploadArtifacts(ctx, c, arts)
			return withResult(o)
		}
	}
	a.uploadArtifacts(ctx, c, arts)
	return succeeded(res)
}

// packageFile returns the package's file in the cache (path, the file
// named by its SHA-256), and whether it was there; if it was not, it
// fetches it into the cache first and says how often the transfer
// resumed. The caller holds path.
func (a *Agent) packageFile(ctx context.Context, c *command, pkg string, d download, path string) (archive string, fromCache bool, resumes int, err error) {
	info, err := os.Stat(path)
	switch {
	case err == nil && info.Mode().IsRegular() && info.Size() == d.size:
		now := a.now()
		if err := os.Chtimes(path, now, now); err != nil {
			c.log.Warn("marking a cached package file used failed", "file", path, "err", err)
		}
		c.info("Package %s found in the agent's cache (%s)", pkg, d.sha256)
		return path, true, 0, nil
	case err == nil:
		c.info("The agent's cache holds a file of %d bytes for package %s, not %d; fetching it again", info.Size(), pkg, d.size)
	}
	c.info("Fetching package %s (%d bytes) from the cluster", pkg, d.size)
	partialPath := filepath.Join(c.dir, partialFile)
	defer os.Remove(partialPath) // gone already once moved into the cache
	if resumes, err = a.fetch(ctx, c, d, partialPath); err != nil {
		return "", false, resumes, err
	}
	if err := os.MkdirAll(a.packages, 0o700); err != nil {
		return "", false, resumes, fmt.Errorf("creating the agent's package cache: %v", err)
	}
	if err := os.Rename(partialPath, path); err != nil {
		return "", false, resumes, fmt.Errorf("moving the package file received into the agent's cache: %v", err)
	}
	if err := syncDir(a.packages); err != nil {
		return "", false, resumes, fmt.Errorf("writing the agent's package cache: %v", err)
	}
	return path, false, resumes, nil
}

// fileSHA256 returns the lower-case hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// claimFolder makes a new folder for a package: base, or else base_1,
// base_2, ..., the first that does not exist, as Octopus names them. The
// mkdir that makes it is the claim: two commands never get one folder.
// The folder is held until release is called.
func (a *Agent) claimFolder(base string) (folder string, release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return "", nil, fmt.Errorf("creating the folder of %s: %v", base, err)
	}
	for n := 0; n <= maxFolderSuffix; n++ {
		folder = base
		if n > 0 {
			folder = base + "_" + strconv.Itoa(n)
		}
		release = a.inUse.hold(folder)
		err := os.Mkdir(folder, 0o755)
		if err == nil {
			return folder, release, nil
		}
		release()
		if !errors.Is(err, fs.ErrExist) {
			return "", nil, fmt.Errorf("creating the folder to extract the package into: %v", err)
		}
	}
	return "", nil, fmt.Errorf("%s and %d more folders named after it exist already; remove old ones (PrunePackages does)", base, maxFolderSuffix)
}

// customFolder checks a DeployPackage's CustomFolder and returns it
// cleaned. It must be absolute. Since the agent may empty it, it may not
// be a file system's root, the agent's home or a folder that holds it, the
// work folder itself, or a folder of the home outside the work folder
// (the journal, the cache).
func (a *Agent) customFolder(dir string) (string, error) {
	refuse := func(why string) error {
		return fmt.Errorf("the CustomFolder %q is refused: %s", dir, why)
	}
	if !filepath.IsAbs(dir) {
		return "", refuse("it is not absolute; give the full path of the folder to install the package into")
	}
	dir = filepath.Clean(dir)
	real := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		real = r
	}
	home, err := filepath.Abs(a.cfg.Home)
	if err != nil {
		return "", refuse(err.Error())
	}
	if r, err := filepath.EvalSymlinks(home); err == nil {
		home = r
	}
	switch {
	case filepath.Dir(real) == real:
		return "", refuse("it is the root of a file system")
	case inside(home, real):
		return "", refuse(fmt.Sprintf("it holds the agent's home %s", home))
	case real == a.work:
		return "", refuse(fmt.Sprintf("it is the agent's work folder %s", a.work))
	case inside(real, home) && !inside(real, a.work):
		return "", refuse(fmt.Sprintf("it is inside the agent's home %s, outside its work folder", home))
	}
	return dir, nil
}

// inside reports whether path is dir or inside it; both are clean.
func inside(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// prepareCustomFolder empties dir if purge is set; otherwise dir must be
// empty or missing, for Extract.
func (a *Agent) prepareCustomFolder(c *command, dir string, purge bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the custom installation folder: %v", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if !purge {
		return fmt.Errorf("The custom installation folder %s is not empty: have the step purge it before installation, or choose an empty folder.", dir)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("purging the custom installation folder %s: %v", dir, err)
		}
	}
	c.info("Purged the custom installation folder %s (%d entries)", dir, len(entries))
	return nil
}

// packageVariables returns the variables of a package's substitutions and
// scripts: vars with installationDirectoryVariable set to folder (a value
// of any case of that name replaced), and their names in the preamble's
// order: names, then those of vars that names lacks, sorted, then
// installationDirectoryVariable.
func packageVariables(vars map[string]string, names []string, folder string) (map[string]string, []string) {
	out := make(map[string]string, len(vars)+1)
	for k, v := range vars {
		if !strings.EqualFold(k, installationDirectoryVariable) {
			out[k] = v
		}
	}
	isInstallDir := func(n string) bool { return strings.EqualFold(n, installationDirectoryVariable) }
	names = slices.DeleteFunc(slices.Clone(names), isInstallDir)
	for _, k := range slices.Sorted(maps.Keys(out)) {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	out[installationDirectoryVariable] = folder
	return out, append(names, installationDirectoryVariable)
}

// lookupIgnoringCase returns a lookup of vars by name ignoring case, as
// variables.Set's: a name given exactly wins, then the first of names
// that matches ignoring case, then the first of the rest in sorted order.
func lookupIgnoringCase(vars map[string]string, names []string) func(string) (string, bool) {
	folded := make(map[string]string, len(vars))
	add := func(n string) {
		if v, ok := vars[n]; ok {
			if _, dup := folded[strings.ToLower(n)]; !dup {
				folded[strings.ToLower(n)] = v
			}
		}
	}
	for _, n := range names {
		add(n)
	}
	for _, n := range slices.Sorted(maps.Keys(vars)) {
		add(n)
	}
	return func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		v, ok := folded[strings.ToLower(name)]
		return v, ok
	}
}

// packageScript is a script found in a package's folder.
type packageScript struct {
	name string // PreDeploy, Deploy or PostDeploy
	file string // as the package names it, such as Deploy.sh
	body string
}

// findPackageScripts returns the scripts of packageScripts with the
// extension ext that the folder holds at its top level, in order: the
// file named exactly, or else the first whose name matches ignoring case.
// A script is a regular file, or a link to one inside the folder.
func findPackageScripts(dir, ext string) ([]packageScript, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, err
	}
	var found []packageScript
	for _, name := range packageScripts {
		want, file := name+ext, ""
		for _, e := range entries {
			if !strings.EqualFold(e.Name(), want) {
				continue
			}
			if info, err := root.Stat(e.Name()); err != nil || !info.Mode().IsRegular() {
				continue
			}
			if e.Name() == want || file == "" {
				file = e.Name()
			}
			if file == want {
				break
			}
		}
		if file == "" {
			continue
		}
		body, err := root.ReadFile(file)
		if err != nil {
			return nil, err
		}
		found = append(found, packageScript{name: name, file: file, body: string(body)})
	}
	return found, nil
}

// prunePackages runs a PrunePackages command (agentapi.PrunePackages):
// it deletes the cache's package files whose modification time (the last
// deployment from them) is MaxAgeDays old, and in each
// Applications/<environment>/<package> folder of the work folder the
// extracted folders but the KeepFolders newest by modification time. What
// a running DeployPackage uses is kept. Each deletion is a line of
// output; one that fails is a warning, and fails the command once the
// rest are done.
func (a *Agent) prunePackages(ctx context.Context, c *command) outcome {
	var p agentapi.PrunePackages
	if err := decodePayload(c, &p); err != nil {
		return failed("%v", err)
	}
	if p.MaxAgeDays < 0 || p.KeepFolders < 0 {
		return failed("a PrunePackages command needs a MaxAgeDays and a KeepFolders of 0 (keep all) or more; this one has %d and %d", p.MaxAgeDays, p.KeepFolders)
	}
	res := agentapi.PrunePackagesResult{Files: []string{}, Folders: []string{}}
	failures := 0
	if p.MaxAgeDays > 0 {
		failures += a.pruneCache(ctx, c, p.MaxAgeDays, &res)
	}
	if p.KeepFolders > 0 {
		failures += a.pruneFolders(ctx, c, p.KeepFolders, &res)
	}
	if err := context.Cause(ctx); err != nil {
		return failed("%v", err)
	}
	if failures > 0 {
		o := failed("%d of the deletions failed (see the warnings); the others were done", failures)
		o.Result, _ = json.Marshal(res)
		return o
	}
	if len(res.Files)+len(res.Folders) == 0 {
		c.info("Nothing to delete")
	}
	return succeeded(res)
}

// isCacheName reports whether name is a cache file's: a SHA-256 in hex
// and an extension Extract reads.
func isCacheName(name string) bool {
	if len(name) <= sha256.Size*2 || name[sha256.Size*2] != '.' || !isSHA256(name[:sha256.Size*2]) {
		return false
	}
	_, ok := packagefile.FormatOf(name[sha256.Size*2:])
	return ok
}

// pruneCache deletes the cache files unused for days; it returns how many
// deletions failed.
func (a *Agent) pruneCache(ctx context.Context, c *command, days int, res *agentapi.PrunePackagesResult) (failures int) {
	entries, err := os.ReadDir(a.packages)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		c.warn("Reading the agent's package cache failed: %v", err)
		return 1
	}
	maxAge := time.Duration(days) * 24 * time.Hour
	for _, e := range entries {
		if ctx.Err() != nil {
			return failures
		}
		if !e.Type().IsRegular() || !isCacheName(e.Name()) {
			continue
		}
		if info, err := e.Info(); err != nil || a.now().Sub(info.ModTime()) < maxAge {
			continue
		}
		path := filepath.Join(a.packages, e.Name())
		var info fs.FileInfo
		removed, err := a.inUse.unlessHeld(path, func() error {
			// Stat again under the lock: a deployment may just have used it.
			var err error
			if info, err = os.Stat(path); err != nil || a.now().Sub(info.ModTime()) < maxAge {
				info = nil
				return nil
			}
			return os.Remove(path)
		})
		switch {
		case !removed:
			c.info("Kept the cached package file %s: a deployment uses it", e.Name())
		case err != nil:
			c.warn("Deleting the cached package file %s failed: %v", e.Name(), err)
			failures++
		case info != nil:
			c.info("Deleted the cached package file %s (%d bytes), last used %s", e.Name(), info.Size(), info.ModTime().UTC().Format(time.DateOnly))
			res.Files = append(res.Files, e.Name())
			res.Bytes += info.Size()
		}
	}
	return failures
}

// pruneFolders keeps the keep newest folders in each package's folder of
// Applications; it returns how many deletions failed. Links are not
// followed.
func (a *Agent) pruneFolders(ctx context.Context, c *command, keep int, res *agentapi.PrunePackagesResult) (failures int) {
	apps, err := a.resolve(applicationsDir)
	if err != nil {
		c.warn("%v", err)
		return 1
	}
	for _, env := range subfolders(apps) {
		for _, pkg := range subfolders(env) {
			for i, dir := range newestFirst(subfolders(pkg)) {
				if ctx.Err() != nil {
					return failures
				}
				if i < keep {
					continue
				}
				rel, _ := filepath.Rel(a.work, dir)
				rel = filepath.ToSlash(rel)
				removed, err := a.inUse.unlessHeld(dir, func() error { return os.RemoveAll(dir) })
				switch {
				case !removed:
					c.info("Kept the folder %s: a deployment uses it", rel)
				case err != nil:
					c.warn("Deleting the folder %s failed: %v", rel, err)
					failures++
				default:
					c.info("Deleted the folder %s", rel)
					res.Folders = append(res.Folders, rel)
				}
			}
		}
	}
	return failures
}

// subfolders returns the folders in dir, not links to folders; none if
// dir cannot be read.
func subfolders(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// newestFirst sorts folders by modification time, the newest first (by
// name, the greatest first, when equal); one that cannot be read comes
// first, kept rather than deleted by mistake.
func newestFirst(dirs []string) []string {
	times := map[string]time.Time{}
	for _, d := range dirs {
		if info, err := os.Lstat(d); err == nil {
			times[d] = info.ModTime()
		} else {
			times[d] = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		}
	}
	slices.SortFunc(dirs, func(x, y string) int {
		if c := times[y].Compare(times[x]); c != 0 {
			return c
		}
		return strings.Compare(y, x)
	})
	return dirs
}
