package agent

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
)

// entry is a file of a package built by a test.
type entry struct {
	name string
	body string
}

// tarGz returns a .tar.gz package of entries.
func tarGz(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipOf returns a .zip package of entries.
func zipOf(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

const appFolder = "Applications/Production/Acme.Web/1.0.0"

// deployCommand returns a DeployPackage command of the package content
// (Acme.Web 1.0.0 into appFolder, with a Greeting and a Logging:Level),
// changed by edit, whose file the cluster serves.
func deployCommand(t *testing.T, cl *fakeCluster, content []byte, ext string, edit func(*agentapi.DeployPackage)) agentapi.Command {
	t.Helper()
	p := agentapi.DeployPackage{
		PackageID: "Acme.Web",
		Version:   "1.0.0",
		Extension: ext,
		Size:      int64(len(content)),
		SHA256:    digestOf(content),
		Folder:    appFolder,
		Variables: map[string]string{"Greeting": "Hello", "Logging:Level": "Debug"},
		Names:     []string{"Greeting", "Logging:Level"},
	}
	if edit != nil {
		edit(&p)
	}
	cmd := newTestCommand(t, cuttle.CommandDeployPackage, p)
	cl.mu.Lock()
	cl.files[cmd.UID] = content
	cl.mu.Unlock()
	return cmd
}

// deployResult reads a DeployPackage command's result.
func deployResult(t *testing.T, sc storedCommand) agentapi.DeployPackageResult {
	t.Helper()
	var res agentapi.DeployPackageResult
	if err := json.Unmarshal(sc.result, &res); err != nil {
		t.Fatalf("the result %q: %v", sc.result, err)
	}
	return res
}

func texts(lines []agentapi.Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

// indexOf returns the index of the first line that is text, or -1.
func indexOf(lines []agentapi.Line, text string) int {
	return slices.IndexFunc(lines, func(l agentapi.Line) bool { return l.Text == text })
}

// cacheFiles lists the agent's package cache.
func cacheFiles(t *testing.T, a *testAgent) []string {
	t.Helper()
	entries, err := os.ReadDir(a.packages)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// deployScript is a package's Deploy.sh: it reads variables, shows a
// substituted file and sets an output variable.
const deployScript = `echo "greeting: $(get_octopusvariable greeting)"
echo "folder: $(get_octopusvariable Octopus.Action.Package.InstallationDirectoryPath)"
echo "pwd: $PWD"
cat config/app.conf
set_octopusvariable Answer 42
`

// TestDeployPackage deploys a package twice, from a .tar.gz and from a
// .zip: the first time the file is fetched, extracted, its files
// substituted and its scripts run in order in its folder; the second time
// it comes from the cache, nothing is sent, and it goes to a new folder.
func TestDeployPackage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ext       string
		predeploy string // the script's name in the package
		build     func(*testing.T, []entry) []byte
	}{
		{".tar.gz", "PreDeploy.sh", tarGz},
		{".zip", "predeploy.sh", zipOf}, // found ignoring case
	} {
		t.Run(tc.ext, func(t *testing.T) {
			t.Parallel()
			cl, cfg := pollingHome(t)
			a := startAgent(t, cfg)
			content := tc.build(t, []entry{
				{"Deploy.sh", deployScript},
				{tc.predeploy, `echo "pre-deploy in $PWD"` + "\n"},
				{"config/app.conf", "greeting=#{Greeting}\n"},
				{"appsettings.json", `{"Logging":{"Level":"Info"}}` + "\n"},
			})
			digest := digestOf(content)
			edit := func(p *agentapi.DeployPackage) {
				p.Substitute = []string{"config/*.conf", "missing/*.xml"}
				p.JSONFiles = []string{"appsettings.json"}
			}
			first := deployCommand(t, cl, content, strings.ToUpper(tc.ext), edit)
			cl.enqueue(cfg.SubscriptionId, first)
			sc := cl.waitFinal(t, first.UID, 20*time.Second)
			if sc.state != string(cuttle.CommandSuccess) {
				t.Fatalf("%s %q; output:\n%s", sc.state, sc.err, strings.Join(texts(sc.lines), "\n"))
			}
			checkOrdered(t, sc)
			folder := filepath.Join(a.work, filepath.FromSlash(appFolder))
			res := deployResult(t, sc)
			if want := []string{tc.predeploy, "Deploy.sh"}; res.InstallationDirectory != folder || res.FromCache || res.Files != 4 || !slices.Equal(res.Scripts, want) {
				t.Errorf("result %+v; want the folder %s, not from the cache, 4 files and the scripts %q", res, folder, want)
			}
			if b, _ := os.ReadFile(filepath.Join(folder, "config", "app.conf")); string(b) != "greeting=Hello\n" {
				t.Errorf("config/app.conf holds %q; want the greeting substituted", b)
			}
			var settings struct{ Logging struct{ Level string } }
			if b, err := os.ReadFile(filepath.Join(folder, "appsettings.json")); err != nil || json.Unmarshal(b, &settings) != nil || settings.Logging.Level != "Debug" {
				t.Errorf("appsettings.json holds %q (%v); want Logging:Level Debug", b, err)
			}
			answer := "##octopus[setVariable name='" + base64.StdEncoding.EncodeToString([]byte("Answer")) + "' value='" + base64.StdEncoding.EncodeToString([]byte("42")) + "']"
			ordered := []string{
				"Fetching package Acme.Web 1.0.0 (" + fmt.Sprint(len(content)) + " bytes) from the cluster",
				"Extracted 4 files of Acme.Web 1.0.0 to " + folder,
				"Substituted variables in config/app.conf",
				`Warning: No files were found that match the substitution target pattern "missing/*.xml"`,
				"Replaced JSON configuration variables in appsettings.json",
				"Running " + tc.predeploy,
				"pre-deploy in " + folder,
				"Running Deploy.sh",
				"greeting: Hello",
				"folder: " + folder,
				"pwd: " + folder,
				"greeting=Hello",
				answer,
			}
			last := -1
			for _, text := range ordered {
				i := indexOf(sc.lines, text)
				if i <= last {
					t.Fatalf("the output lacks %q after line %d:\n%s", text, last+1, strings.Join(texts(sc.lines), "\n"))
				}
				last = i
			}
			if got := cacheFiles(t, a); !slices.Equal(got, []string{digest + tc.ext}) {
				t.Errorf("the cache holds %q; want the package under its digest", got)
			}
			gets, served := cl.gets.Load(), cl.servedBytes.Load()
			if gets != 1 || served != int64(len(content)) {
				t.Errorf("%d GETs served %d bytes; want the %d bytes of the package once", gets, served, len(content))
			}

			// Again, a while later: from the cache, into a new folder.
			cached := filepath.Join(a.packages, digest+tc.ext)
			long := time.Now().Add(-30 * 24 * time.Hour)
			if err := os.Chtimes(cached, long, long); err != nil {
				t.Fatal(err)
			}
			second := deployCommand(t, cl, content, tc.ext, edit)
			cl.enqueue(cfg.SubscriptionId, second)
			sc = cl.waitFinal(t, second.UID, 20*time.Second)
			if sc.state != string(cuttle.CommandSuccess) {
				t.Fatalf("again: %s %q; output:\n%s", sc.state, sc.err, strings.Join(texts(sc.lines), "\n"))
			}
			res = deployResult(t, sc)
			if res.InstallationDirectory != folder+"_1" || !res.FromCache || res.Files != 4 || len(res.Scripts) != 2 {
				t.Errorf("again: result %+v; want the folder %s_1, from the cache", res, folder)
			}
			if indexOf(sc.lines, "Package Acme.Web 1.0.0 found in the agent's cache ("+digest+")") < 0 || indexOf(sc.lines, "folder: "+folder+"_1") < 0 {
				t.Errorf("again: the output does not say the cache had the package, or the scripts saw another folder:\n%s", strings.Join(texts(sc.lines), "\n"))
			}
			if cl.gets.Load() != gets || cl.servedBytes.Load() != served {
				t.Errorf("again: the node got %d more GETs and served %d more bytes; want none", cl.gets.Load()-gets, cl.servedBytes.Load()-served)
			}
			if info, err := os.Stat(cached); err != nil || time.Since(info.ModTime()) > time.Hour {
				t.Errorf("the cached file's modification time is %v (%v); want it marked used now", info.ModTime(), err)
			}
			if b, _ := os.ReadFile(filepath.Join(folder, "config", "app.conf")); string(b) != "greeting=Hello\n" {
				t.Errorf("the first folder changed: config/app.conf holds %q", b)
			}
		})
	}
}

// TestDeployPackageWithAWrongDigest: a file whose SHA-256 is not the
// command's fails it, and nothing of it is kept: not in the cache, not in
// a folder, not as a partial file.
func TestDeployPackageWithAWrongDigest(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	content := tarGz(t, []entry{{"Deploy.sh", "touch \"$CUTTLE_WORK/ran\"\n"}})
	cmd := deployCommand(t, cl, content, ".tar.gz", func(p *agentapi.DeployPackage) { p.SHA256 = digestOf([]byte("something else")) })
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandFailed) || !strings.Contains(sc.err, "SHA-256 "+digestOf(content)) {
		t.Errorf("%s %q; want Failed naming the digest received", sc.state, sc.err)
	}
	if got := cacheFiles(t, a); len(got) != 0 {
		t.Errorf("the cache holds %q; want nothing", got)
	}
	if _, err := os.Stat(filepath.Join(a.work, "Applications")); err == nil {
		t.Error("a folder was made for a package that failed its check")
	}
	if _, err := os.Stat(filepath.Join(a.journal.commandDir(cmd.UID), partialFile)); err == nil {
		t.Error("the partial file of a failed transfer is left")
	}
	if _, err := os.Stat(filepath.Join(a.work, "ran")); err == nil {
		t.Error("the package's script ran")
	}
}

// TestDeployPackageRefusesFoldersItMayNotUse: a Folder that leads out of
// the work folder, a relative CustomFolder or one that would empty the
// agent's home fail the command before anything is fetched.
func TestDeployPackageRefusesFoldersItMayNotUse(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	content := tarGz(t, []entry{{"Deploy.sh", "touch \"$CUTTLE_WORK/ran\"\n"}})
	cases := []struct {
		edit func(*agentapi.DeployPackage)
		want []string // in the error
	}{
		{func(p *agentapi.DeployPackage) { p.Folder = "../outside/1.0.0" }, []string{`"../outside/1.0.0"`, a.work}},
		{func(p *agentapi.DeployPackage) { p.Folder = "Applications/../../outside" }, []string{`"Applications/../../outside"`, "not clean"}},
		{func(p *agentapi.DeployPackage) { p.Folder = "" }, []string{"empty"}},
		{func(p *agentapi.DeployPackage) { p.Folder = "." }, []string{"work folder"}},
		{func(p *agentapi.DeployPackage) { p.CustomFolder = "relative/app" }, []string{`"relative/app"`, "not absolute"}},
		{func(p *agentapi.DeployPackage) { p.CustomFolder, p.PurgeCustomFolder = a.cfg.Home, true }, []string{"agent's home"}},
		{func(p *agentapi.DeployPackage) { p.CustomFolder = filepath.Join(a.cfg.Home, commandsDir) }, []string{"outside its work folder"}},
		{func(p *agentapi.DeployPackage) { p.CustomFolder = "/" }, []string{"root"}},
	}
	var cmds []agentapi.Command
	for _, c := range cases {
		cmd := deployCommand(t, cl, content, ".tar.gz", c.edit)
		cmds = append(cmds, cmd)
		cl.enqueue(cfg.SubscriptionId, cmd)
	}
	for i, c := range cases {
		sc := cl.waitFinal(t, cmds[i].UID, 10*time.Second)
		if sc.state != string(cuttle.CommandFailed) {
			t.Errorf("case %d: %s; want Failed", i, sc.state)
		}
		for _, w := range c.want {
			if !strings.Contains(sc.err, w) {
				t.Errorf("case %d: the error %q does not say %q", i, sc.err, w)
			}
		}
	}
	if g := cl.gets.Load(); g != 0 {
		t.Errorf("%d files were fetched for refused commands", g)
	}
	if _, err := os.Stat(filepath.Join(a.work, "ran")); err == nil {
		t.Error("a refused package's script ran")
	}
	if entries, _ := os.ReadDir(a.cfg.Home); len(entries) == 0 {
		t.Error("the agent's home was emptied")
	}
}

// TestDeployPackageScriptFails: a script that exits non-zero fails the
// command with its exit code, and the scripts after it do not run.
func TestDeployPackageScriptFails(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	content := zipOf(t, []entry{
		{"Deploy.sh", "echo before\nexit 7\n"},
		{"PostDeploy.sh", "touch \"$CUTTLE_WORK/post\"\n"},
	})
	cmd := deployCommand(t, cl, content, ".zip", nil)
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandFailed) || sc.exitCode != 7 || sc.err != "The package's Deploy.sh exited with code 7." {
		t.Errorf("%s, exit code %d, %q; want Failed with the script's exit code", sc.state, sc.exitCode, sc.err)
	}
	if indexOf(sc.lines, "before") < 0 {
		t.Errorf("the script's output is missing: %q", texts(sc.lines))
	}
	if res := deployResult(t, sc); !slices.Equal(res.Scripts, []string{"Deploy.sh"}) || res.InstallationDirectory == "" {
		t.Errorf("result %+v; want the folder and Deploy.sh alone", res)
	}
	if _, err := os.Stat(filepath.Join(a.work, "post")); err == nil {
		t.Error("PostDeploy.sh ran after Deploy.sh failed")
	}
	if entries, _ := os.ReadDir(a.journal.commandDir(cmd.UID)); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), ".sh") }) {
		t.Error("the script, which holds the deployment's variables, is left in the journal")
	}
}

// TestDeployPackageResumesACutTransfer: a transfer the node cuts half-way
// goes on from the bytes the agent has.
func TestDeployPackageResumesACutTransfer(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	noise := make([]byte, 3<<20)
	rand.Read(noise)
	content := tarGz(t, []entry{{"data.bin", string(noise)}, {"Deploy.sh", "wc -c < data.bin\n"}})
	cmd := deployCommand(t, cl, content, ".tar.gz", nil)
	cl.cutAt.Store(int64(len(content) / 2))
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 20*time.Second)
	if sc.state != string(cuttle.CommandSuccess) {
		t.Fatalf("%s %q", sc.state, sc.err)
	}
	if res := deployResult(t, sc); res.Resumes < 1 || res.FromCache || res.Files != 2 {
		t.Errorf("result %+v; want at least one resume", res)
	}
	if served := cl.servedBytes.Load(); served >= 2*int64(len(content)) || cl.ranges.Load() < 1 {
		t.Errorf("the node served %d bytes of %d with %d Range requests; want a resume, not a restart", served, len(content), cl.ranges.Load())
	}
	if indexOf(sc.lines, fmt.Sprint(len(noise))) < 0 {
		t.Errorf("Deploy.sh did not see the whole file: %q", texts(sc.lines))
	}
	if got := cacheFiles(t, a); !slices.Equal(got, []string{digestOf(content) + ".tar.gz"}) {
		t.Errorf("the cache holds %q", got)
	}
}

// TestDeployPackageTwiceAtOnce: two commands deploying one package at the
// same time each get a folder of their own, and the cache one good file.
func TestDeployPackageTwiceAtOnce(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	noise := make([]byte, 1<<20)
	rand.Read(noise)
	content := tarGz(t, []entry{{"data.bin", string(noise)}, {"Deploy.sh", "echo deployed\n"}})
	one, two := deployCommand(t, cl, content, ".tar.gz", nil), deployCommand(t, cl, content, ".tar.gz", nil)
	cl.enqueue(cfg.SubscriptionId, one)
	cl.enqueue(cfg.SubscriptionId, two)
	folders := map[string]bool{}
	for _, cmd := range []agentapi.Command{one, two} {
		sc := cl.waitFinal(t, cmd.UID, 20*time.Second)
		if sc.state != string(cuttle.CommandSuccess) {
			t.Fatalf("%s %q", sc.state, sc.err)
		}
		folders[deployResult(t, sc).InstallationDirectory] = true
	}
	base := filepath.Join(a.work, filepath.FromSlash(appFolder))
	if !folders[base] || !folders[base+"_1"] {
		t.Errorf("the folders %v; want %s and %s_1", folders, base, base)
	}
	name := digestOf(content) + ".tar.gz"
	if got := cacheFiles(t, a); !slices.Equal(got, []string{name}) {
		t.Fatalf("the cache holds %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(a.packages, name)); err != nil || digestOf(b) != digestOf(content) {
		t.Errorf("the cached file differs from the package (%v)", err)
	}
}

// TestDeployPackageHandedOutAgainIsReportedNotRun: the journal keeps a
// DeployPackage command from running twice, as any other.
func TestDeployPackageHandedOutAgainIsReportedNotRun(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	content := tarGz(t, []entry{{"Deploy.sh", "echo ran >> \"$CUTTLE_WORK/runs\"\n"}})
	cmd := deployCommand(t, cl, content, ".tar.gz", nil)
	cl.enqueue(cfg.SubscriptionId, cmd)
	first := cl.waitFinal(t, cmd.UID, 10*time.Second)
	cl.forget(cmd.UID)
	cl.enqueue(cfg.SubscriptionId, cmd)
	again := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if again.state != string(cuttle.CommandSuccess) || !bytes.Equal(again.result, first.result) || len(again.lines) != len(first.lines) {
		t.Errorf("handed out again: %s %s with %d lines; want the first outcome %s with %d lines", again.state, again.result, len(again.lines), first.result, len(first.lines))
	}
	if runs, _ := os.ReadFile(filepath.Join(a.work, "runs")); string(runs) != "ran\n" {
		t.Errorf("Deploy.sh ran %q; want once", runs)
	}
	if _, err := os.Stat(filepath.Join(a.work, filepath.FromSlash(appFolder)+"_1")); err == nil {
		t.Error("the package was extracted twice")
	}
}

// TestDeployPackageIntoACustomFolder: a CustomFolder is emptied first when
// asked, and must be empty otherwise; an extension the agent cannot
// extract fails the command.
func TestDeployPackageIntoACustomFolder(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	custom := filepath.Join(t.TempDir(), "site")
	if err := os.MkdirAll(filepath.Join(custom, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(custom, "old", "stale.txt"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	content := zipOf(t, []entry{{"index.html", "<p>#{Greeting}</p>"}, {"Deploy.sh", "echo \"in $PWD\"\n"}})
	kept := deployCommand(t, cl, content, ".zip", func(p *agentapi.DeployPackage) { p.CustomFolder = custom })
	purged := deployCommand(t, cl, content, ".zip", func(p *agentapi.DeployPackage) {
		p.CustomFolder, p.PurgeCustomFolder, p.Substitute = custom, true, []string{"*.html"}
	})
	unknown := deployCommand(t, cl, content, ".rar", nil)
	cl.enqueue(cfg.SubscriptionId, kept)
	sc := cl.waitFinal(t, kept.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandFailed) || !strings.Contains(sc.err, "is not empty") {
		t.Errorf("into a folder not empty: %s %q; want Failed saying so", sc.state, sc.err)
	}
	cl.enqueue(cfg.SubscriptionId, purged)
	sc = cl.waitFinal(t, purged.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandSuccess) || deployResult(t, sc).InstallationDirectory != custom || indexOf(sc.lines, "in "+custom) < 0 {
		t.Fatalf("purged: %s %q %q", sc.state, sc.err, texts(sc.lines))
	}
	if _, err := os.Stat(filepath.Join(custom, "old")); err == nil {
		t.Error("the custom folder was not purged")
	}
	if b, _ := os.ReadFile(filepath.Join(custom, "index.html")); string(b) != "<p>Hello</p>" {
		t.Errorf("index.html holds %q", b)
	}
	cl.enqueue(cfg.SubscriptionId, unknown)
	if sc := cl.waitFinal(t, unknown.UID, 10*time.Second); sc.state != string(cuttle.CommandFailed) || !strings.Contains(sc.err, `".rar" is not one this agent can extract`) {
		t.Errorf(".rar: %s %q", sc.state, sc.err)
	}
}

// TestPrunePackages: cached files unused for MaxAgeDays go, fresh ones
// and those a deployment uses stay; in each package's folder the
// KeepFolders newest extracted folders stay, and those a deployment uses.
func TestPrunePackages(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	now := time.Now()
	days := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	write := func(path string, size int, mtime time.Time) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	old := digestOf([]byte("old")) + ".zip"
	fresh := digestOf([]byte("fresh")) + ".tar.gz"
	used := digestOf([]byte("used")) + ".zip"
	write(filepath.Join(a.packages, old), 1234, days(40))
	write(filepath.Join(a.packages, fresh), 10, days(2))
	write(filepath.Join(a.packages, used), 10, days(40))
	write(filepath.Join(a.packages, "notes.txt"), 10, days(400)) // not the cache's
	release := a.inUse.hold(filepath.Join(a.packages, used))
	defer release()

	app := filepath.Join(a.work, "Applications", "Production", "Acme.Web")
	folders := []struct {
		name string
		age  int
	}{{"1.0.0", 4}, {"1.0.1", 3}, {"1.0.1_1", 2}, {"1.0.2", 1}, {"0.9.0", 9}}
	for _, f := range folders {
		write(filepath.Join(app, f.name, "app.dll"), 10, days(f.age))
	}
	for _, f := range folders { // after their files, which touch them
		if err := os.Chtimes(filepath.Join(app, f.name), days(f.age), days(f.age)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(a.work, "Applications", "Staging", "Other", "2.0.0", "app.dll"), 10, days(100))
	releaseFolder := a.inUse.hold(filepath.Join(app, "1.0.0"))
	defer releaseFolder()

	cmd := newTestCommand(t, cuttle.CommandPrunePackages, agentapi.PrunePackages{MaxAgeDays: 30, KeepFolders: 2})
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandSuccess) {
		t.Fatalf("%s %q %q", sc.state, sc.err, texts(sc.lines))
	}
	var res agentapi.PrunePackagesResult
	if err := json.Unmarshal(sc.result, &res); err != nil {
		t.Fatal(err)
	}
	wantFolders := []string{"Applications/Production/Acme.Web/1.0.1", "Applications/Production/Acme.Web/0.9.0"}
	if !slices.Equal(res.Files, []string{old}) || res.Bytes != 1234 || !slices.Equal(res.Folders, wantFolders) {
		t.Errorf("result %+v; want %s (1234 bytes) and the folders %q", res, old, wantFolders)
	}
	if got, want := cacheFiles(t, a), []string{fresh, used, "notes.txt"}; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("the cache holds %q; want %q", got, want)
	}
	for _, f := range []string{"1.0.0", "1.0.1_1", "1.0.2"} {
		if _, err := os.Stat(filepath.Join(app, f)); err != nil {
			t.Errorf("the folder %s was deleted: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(a.work, "Applications", "Staging", "Other", "2.0.0")); err != nil {
		t.Errorf("the only folder of another package was deleted: %v", err)
	}
	for _, text := range []string{
		"Deleted the cached package file " + old + " (1234 bytes), last used " + days(40).UTC().Format(time.DateOnly),
		"Kept the cached package file " + used + ": a deployment uses it",
		"Kept the folder Applications/Production/Acme.Web/1.0.0: a deployment uses it",
		"Deleted the folder Applications/Production/Acme.Web/1.0.1",
		"Deleted the folder Applications/Production/Acme.Web/0.9.0",
	} {
		if indexOf(sc.lines, text) < 0 {
			t.Errorf("the output lacks %q:\n%s", text, strings.Join(texts(sc.lines), "\n"))
		}
	}

	// Zeros keep everything.
	release()
	releaseFolder()
	keepAll := newTestCommand(t, cuttle.CommandPrunePackages, agentapi.PrunePackages{})
	cl.enqueue(cfg.SubscriptionId, keepAll)
	sc = cl.waitFinal(t, keepAll.UID, 10*time.Second)
	if err := json.Unmarshal(sc.result, &res); err != nil || sc.state != string(cuttle.CommandSuccess) || len(res.Files)+len(res.Folders) != 0 {
		t.Errorf("zeros: %s %q, result %+v (%v); want nothing deleted", sc.state, sc.err, res, err)
	}
}
