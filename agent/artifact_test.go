package agent

import (
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/variables"
)

// bashPreamble is what a deployment puts before a Bash script's body,
// with no variables: it defines new_octopusartifact.
var bashPreamble = variables.Preamble("Bash", nil, func(string) (string, bool) { return "", false })

// artifactsOf returns a copy of the artifacts the cluster stored of uid.
func artifactsOf(cl *fakeCluster, uid string) map[string]fakeArtifact {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := map[string]fakeArtifact{}
	for name, a := range cl.artifacts[uid] {
		out[name] = a
	}
	return out
}

// warnings returns the agent's warning lines.
func warnings(lines []agentapi.Line) []string {
	var out []string
	for _, l := range lines {
		if l.Stream == "info" && strings.HasPrefix(l.Text, "Warning: ") {
			out = append(out, l.Text)
		}
	}
	return out
}

// checkArtifact checks that the cluster holds the artifact name of uid
// with the bytes of the file at path and their SHA-256.
func checkArtifact(t *testing.T, got map[string]fakeArtifact, name, path string) {
	t.Helper()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := got[name]
	switch {
	case !ok:
		t.Errorf("the artifact %q was not uploaded (the cluster has %v)", name, slices.Sorted(maps.Keys(got)))
	case string(a.body) != string(want):
		t.Errorf("the artifact %q has %d bytes that differ from the file's %d", name, len(a.body), len(want))
	case a.sha256 != digestOf(want):
		t.Errorf("the artifact %q came with SHA-256 %s, want %s", name, a.sha256, digestOf(want))
	}
}

// TestScriptArtifactsAreUploaded: files a script declares with
// new_octopusartifact are uploaded, named by their base name or the name
// given (reduced to its base name), with their bytes and SHA-256, after
// the script ends and before the outcome is reported; the service
// messages stay in the output.
func TestScriptArtifactsAreUploaded(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	cmd := newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", WorkDir: "job", Body: bashPreamble + `
mkdir -p out
printf 'all good\n' > out/report.txt
head -c 300000 /dev/urandom > out/data.bin
new_octopusartifact out/report.txt
new_octopusartifact "$PWD/out/data.bin" 'nested/dirs/custom name.bin'
echo done
`})
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	checkOrdered(t, sc)
	if sc.state != string(cuttle.CommandSuccess) {
		t.Fatalf("%s %q; want Success (lines %q)", sc.state, sc.err, texts(sc.lines))
	}
	got := artifactsOf(cl, cmd.UID)
	if len(got) != 2 {
		t.Errorf("the cluster has the artifacts %v; want report.txt and custom name.bin", slices.Sorted(maps.Keys(got)))
	}
	out := filepath.Join(a.work, "job", "out")
	checkArtifact(t, got, "report.txt", filepath.Join(out, "report.txt"))
	checkArtifact(t, got, "custom name.bin", filepath.Join(out, "data.bin"))
	if sc.artifactsAtOutcome != 2 {
		t.Errorf("the cluster held %d artifacts when it stored the outcome; want both uploaded before", sc.artifactsAtOutcome)
	}

	// The service messages are output as any line; the uploads are told
	// after the script's last line.
	messages := 0
	for _, l := range sc.lines {
		if strings.HasPrefix(l.Text, "##octopus[createArtifact path='") {
			messages++
		}
	}
	done := indexOf(sc.lines, "done")
	first, second := indexOf(sc.lines, "Uploaded artifact report.txt (9 bytes)"), indexOf(sc.lines, "Uploaded artifact custom name.bin (293.0 KiB)")
	if messages != 2 || done < 0 || first < done || second < first {
		t.Errorf("lines %q; want the two service messages, then done, then a line per upload", texts(sc.lines))
	}
	if w := warnings(sc.lines); len(w) > 0 {
		t.Errorf("warnings %q", w)
	}
}

// TestArtifactsThatCannotBeCollectedAreWarnings: a createArtifact of a
// missing file, of a folder or that cannot be read is a warning, and the
// command succeeds; an upload the cluster refuses is a warning too; a
// failing script's artifacts are uploaded, and its outcome stays its own.
func TestArtifactsThatCannotBeCollectedAreWarnings(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	cl.mu.Lock()
	cl.refuseArtifacts["refused.txt"] = true
	cl.mu.Unlock()

	cmd := scriptCommand(t, bashPreamble+`
new_octopusartifact "$PWD/missing.txt"
mkdir -p folder
new_octopusartifact folder
echo "##octopus[createArtifact path='not base64!']"
echo kept > refused.txt
new_octopusartifact refused.txt
echo after
`)
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandSuccess) {
		t.Fatalf("%s %q; want Success: an artifact never fails a command (lines %q)", sc.state, sc.err, texts(sc.lines))
	}
	w := warnings(sc.lines)
	want := []string{"missing.txt does not exist", "is not a file", "createArtifact service message cannot be read", "Uploading the artifact refused.txt failed"}
	for _, s := range want {
		if !slices.ContainsFunc(w, func(l string) bool { return strings.Contains(l, s) }) {
			t.Errorf("no warning says %q; warnings %q", s, w)
		}
	}
	if len(w) != len(want) {
		t.Errorf("warnings %q; want %d", w, len(want))
	}
	if indexOf(sc.lines, "after") < 0 {
		t.Errorf("lines %q; want the script to go on", texts(sc.lines))
	}
	if got := artifactsOf(cl, cmd.UID); len(got) != 0 {
		t.Errorf("the cluster has the artifacts %v; want none", slices.Sorted(maps.Keys(got)))
	}

	failing := scriptCommand(t, bashPreamble+`
echo partial > log.txt
new_octopusartifact log.txt
exit 3
`)
	cl.enqueue(cfg.SubscriptionId, failing)
	sc = cl.waitFinal(t, failing.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandFailed) || sc.exitCode != 3 || sc.err != "The script exited with code 3." {
		t.Errorf("%s %d %q; want the script's own failure", sc.state, sc.exitCode, sc.err)
	}
	if got := artifactsOf(cl, failing.UID); string(got["log.txt"].body) != "partial\n" {
		t.Errorf("the failing script's artifacts %v; want log.txt", slices.Sorted(maps.Keys(got)))
	}
}

// TestArtifactsAreBounded: a command uploads at most maxArtifacts
// artifacts; later declarations are ignored with one warning.
func TestArtifactsAreBounded(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	cmd := scriptCommand(t, bashPreamble+fmt.Sprintf(`
echo x > f.txt
for i in $(seq 1 %d); do new_octopusartifact f.txt "a$i.txt"; done
new_octopusartifact f.txt a1.txt # a name again: not one more
`, maxArtifacts+3))
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 30*time.Second)
	if sc.state != string(cuttle.CommandSuccess) {
		t.Fatalf("%s %q", sc.state, sc.err)
	}
	got := artifactsOf(cl, cmd.UID)
	if len(got) != maxArtifacts {
		t.Errorf("%d artifacts uploaded; want %d", len(got), maxArtifacts)
	}
	if _, ok := got[fmt.Sprintf("a%d.txt", maxArtifacts+1)]; ok {
		t.Errorf("an artifact past the bound was uploaded")
	}
	w := warnings(sc.lines)
	if len(w) != 1 || !strings.Contains(w[0], fmt.Sprintf("at most %d artifacts: a%d.txt and those declared after it are ignored", maxArtifacts, maxArtifacts+1)) {
		t.Errorf("warnings %q; want one about the bound", w)
	}
}

// TestDeployPackageUploadsArtifacts: a package's Deploy.sh, which runs
// after the preamble, declares an artifact: it is uploaded before the
// outcome.
func TestDeployPackageUploadsArtifacts(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	content := tarGz(t, []entry{{"Deploy.sh", "get_octopusvariable Greeting > greeting.txt\nnew_octopusartifact greeting.txt \"Greeting of $(get_octopusvariable Octopus.Action.Package.InstallationDirectoryPath | xargs basename).txt\"\n"}})
	cmd := deployCommand(t, cl, content, ".tar.gz", nil)
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandSuccess) {
		t.Fatalf("%s %q (lines %q)", sc.state, sc.err, texts(sc.lines))
	}
	got := artifactsOf(cl, cmd.UID)
	checkArtifact(t, got, "Greeting of 1.0.0.txt", filepath.Join(a.work, appFolder, "greeting.txt"))
	if string(got["Greeting of 1.0.0.txt"].body) != "Hello" || len(got) != 1 || sc.artifactsAtOutcome != 1 {
		t.Errorf("artifacts %v (%d at the outcome); want the greeting, uploaded before the outcome", slices.Sorted(maps.Keys(got)), sc.artifactsAtOutcome)
	}
	if indexOf(sc.lines, "Uploaded artifact Greeting of 1.0.0.txt (5 bytes)") < 0 {
		t.Errorf("lines %q; want the upload told", texts(sc.lines))
	}
}

func TestParseCreateArtifact(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		line       string
		path, name string
		ok, err    bool
	}{
		{line: "hello"},
		{line: "##octopus[setVariable name='" + b64("x") + "' value='']"},
		{line: "##octopus[createArtifacts path='" + b64("/a") + "']"},
		{line: " ##octopus[createArtifact path='" + b64("/a") + "']"},
		{line: "##octopus[createArtifact path='" + b64("/w/a b.txt") + "' name='" + b64("n.txt") + "']", path: "/w/a b.txt", name: "n.txt", ok: true},
		{line: "##octopus[createArtifact path='" + b64("/w/a") + "' name='" + b64("n") + "' length='" + b64("12") + "']  ", path: "/w/a", name: "n", ok: true},
		{line: "##octopus[createArtifact  name='" + b64("n") + "'   path='" + b64("/w/a") + "' ]", path: "/w/a", name: "n", ok: true},
		{line: "##octopus[createArtifact path='" + b64("rel") + "']", path: "rel", ok: true},
		{line: "##octopus[createArtifact]", ok: true, err: true},
		{line: "##octopus[createArtifact path='" + b64("/a") + "'", ok: true, err: true},
		{line: "##octopus[createArtifact path='%%%']", ok: true, err: true},
		{line: "##octopus[createArtifact path='QQ']", ok: true, err: true},
		{line: "##octopus[createArtifact path=" + b64("/a") + "]", ok: true, err: true},
	} {
		path, name, ok, err := parseCreateArtifact(tc.line)
		if path != tc.path || name != tc.name || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("parseCreateArtifact(%q) = %q, %q, %v, %v; want %q, %q, %v, error %v", tc.line, path, name, ok, err, tc.path, tc.name, tc.ok, tc.err)
		}
	}
}

func TestArtifactNameAndSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, path, want string }{
		{"", "/w/out/a.txt", "a.txt"},
		{"b.txt", "/w/out/a.txt", "b.txt"},
		{"x/y/b.txt", "/w/a.txt", "b.txt"},
		{`C:\logs\b.txt`, "/w/a.txt", "b.txt"},
		{"x/", "/w/a.txt", "a.txt"},
		{"..", "/w/a.txt", "a.txt"},
	} {
		if got := artifactName(tc.name, tc.path); got != tc.want {
			t.Errorf("artifactName(%q, %q) = %q, want %q", tc.name, tc.path, got, tc.want)
		}
	}
	for n, want := range map[int64]string{0: "0 bytes", 1: "1 byte", 1023: "1023 bytes", 1024: "1.0 KiB", 1536: "1.5 KiB", 3 << 20: "3.0 MiB", 5 << 40: "5.0 TiB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
