package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/variables"
)

// Properties and features of a package action that cuttle reads.
const (
	propFeatures         = "Octopus.Action.EnabledFeatures"
	propCustomFolder     = "Octopus.Action.Package.CustomInstallationDirectory"
	propPurgeCustom      = "Octopus.Action.Package.CustomInstallationDirectoryShouldBePurgedBeforeDeployment"
	propSubstituteFiles  = "Octopus.Action.SubstituteInFiles.TargetFiles"
	propJSONFiles        = "Octopus.Action.Package.JsonConfigurationVariablesTargets"
	featureCustomFolder  = "Octopus.Features.CustomDirectory"
	featureSubstitute    = "Octopus.Features.SubstituteInFiles"
	featureJSONVariables = "Octopus.Features.JsonConfigurationVariables"
	// outputInstallationDirectory is the output variable a package action
	// sets: Octopus.Action[Name].Output.Package.InstallationDirectoryPath.
	outputInstallationDirectory = "Package.InstallationDirectoryPath"
)

// packagePayload is a DeployPackage command's payload, with the
// deployment's sensitive values for the node that stores its output (see
// scriptPayload).
type packagePayload struct {
	agentapi.DeployPackage
	Mask []string `json:",omitempty"`
}

// acquire deploys the package ref of an action on target t's agent: the
// version the release chose is sent from shared storage unless the agent
// has it in its cache, and extracted into a new folder; for an
// Octopus.TentaclePackage action (extractOnly false) its variables are
// substituted and its scripts run (agentapi.DeployPackage), and the
// action's output variable Package.InstallationDirectoryPath is the folder.
func (r *run) acquire(ctx context.Context, i, a int, s cuttle.DeploymentStep, act cuttle.DeploymentAction, t target, attempt int, output *produced,
	ref cuttle.PackageReference, extractOnly bool) (agentapi.DeployPackageResult, error) {
	var res agentapi.DeployPackageResult
	p, err := r.chosenPackage(ctx, act, ref)
	if err != nil {
		return res, err
	}
	get := r.lookup(s, act, t)
	names := r.names(s, act, t)
	vars := make(map[string]string, len(names)+2)
	for _, n := range names {
		if v, ok := get(n); ok {
			vars[n] = v
		}
	}
	vars["Octopus.Action.Package.PackageId"], vars["Octopus.Action.Package.PackageVersion"] = p.PackageId, p.PackageVersion
	names = append(names, "Octopus.Action.Package.PackageId", "Octopus.Action.Package.PackageVersion")
	features := splitList(cuttle.Prop(act.Properties, propFeatures))
	cmd := agentapi.DeployPackage{
		PackageID: p.PackageId, Version: p.PackageVersion, Extension: p.FileExtension, Size: p.PackageSizeBytes, SHA256: p.Hash,
		Source: p.StorageKey, Folder: strings.Join([]string{"Applications", pathPart(r.env.Name), pathPart(p.PackageId), pathPart(p.PackageVersion)}, "/"),
		Variables: vars, Names: names, Syntax: "Bash", ExtractOnly: extractOnly,
	}
	if slices.Contains(features, featureCustomFolder) && !extractOnly {
		if cmd.CustomFolder, err = r.evaluated(act, propCustomFolder, get); err != nil {
			return res, err
		}
		cmd.PurgeCustomFolder = strings.EqualFold(cuttle.Prop(act.Properties, propPurgeCustom), "True")
	}
	if slices.Contains(features, featureSubstitute) && !extractOnly {
		files, err := r.evaluated(act, propSubstituteFiles, get)
		if err != nil {
			return res, err
		}
		cmd.Substitute = lines(files)
	}
	if slices.Contains(features, featureJSONVariables) && !extractOnly {
		files, err := r.evaluated(act, propJSONFiles, get)
		if err != nil {
			return res, err
		}
		cmd.JSONFiles = lines(files)
	}
	part := ""
	if extractOnly {
		part = "package/" + pathPart(ref.Name)
	}
	r.mu.Lock()
	mask := slices.Clone(r.sensitive)
	r.mu.Unlock()
	done, err := r.sendCommand(ctx, i, a, s, act, t, attempt, part, cuttle.CommandDeployPackage, packagePayload{DeployPackage: cmd, Mask: mask}, output)
	if err != nil {
		return res, err
	}
	if done.State != cuttle.CommandSuccess {
		if done.Error != "" {
			return res, errors.New(done.Error)
		}
		return res, fmt.Errorf("deploying %s %s ended %s", p.PackageId, p.PackageVersion, done.State)
	}
	if err := json.Unmarshal(done.Result, &res); err != nil {
		return res, fmt.Errorf("the agent's report of %s cannot be read: %v", act.Name, err)
	}
	how := fmt.Sprintf("sent (%s", cuttle.FormatSize(p.PackageSizeBytes))
	if res.Resumes > 0 {
		how += fmt.Sprintf(", resumed %d time(s)", res.Resumes)
	}
	how += ")"
	if res.FromCache {
		how = "found in cache, nothing sent"
	}
	// Once in the log, though a node taking the deployment over reads the
	// command's result again.
	r.x.Log.Write(tasklog.Line{Category: tasklog.Info, Block: r.block(s, t), Source: "outcome/" + done.UID, Seq: 1,
		Text: fmt.Sprintf("Package %s %s %s; %d files extracted to %s on %s.", p.PackageId, p.PackageVersion, how, res.Files, res.InstallationDirectory, t.Name)})
	if !extractOnly {
		output.set(outputInstallationDirectory, res.InstallationDirectory, false)
	}
	return res, nil
}

// referencedPackages extracts, on target t, the packages a script action
// references (its Packages), one command each, and returns the variables
// that name their folders: Octopus.Action.Package[<name>].ExtractedPath,
// with .PackageId and .PackageVersion.
func (r *run) referencedPackages(ctx context.Context, i, a int, s cuttle.DeploymentStep, act cuttle.DeploymentAction, t target, attempt int, output *produced) (map[string]string, error) {
	vars := map[string]string{}
	for _, ref := range act.Packages {
		if ref.PackageId == "" {
			continue
		}
		res, err := r.acquire(ctx, i, a, s, act, t, attempt, output, ref, true)
		if err != nil {
			return nil, err
		}
		prefix := "Octopus.Action.Package[" + ref.Name + "]."
		vars[prefix+"ExtractedPath"], vars[prefix+"PackageId"] = res.InstallationDirectory, ref.PackageId
		for _, sp := range r.release.SelectedPackages {
			if strings.EqualFold(sp.ActionName, act.Name) && strings.EqualFold(sp.PackageReferenceName, ref.Name) {
				vars[prefix+"PackageVersion"] = sp.Version
			}
		}
	}
	return vars, nil
}

// chosenPackage returns the package version the release chose for an
// action's package reference.
func (r *run) chosenPackage(ctx context.Context, act cuttle.DeploymentAction, ref cuttle.PackageReference) (cuttle.Package, error) {
	version := ""
	for _, sp := range r.release.SelectedPackages {
		if strings.EqualFold(sp.ActionName, act.Name) && strings.EqualFold(sp.PackageReferenceName, ref.Name) {
			version = sp.Version
		}
	}
	if version == "" {
		return cuttle.Package{}, fmt.Errorf("the release %s chose no version of %s for %s: create a release of the current process", r.release.Version, ref.PackageId, act.Name)
	}
	var p cuttle.Package
	err := r.cfg.Store.Read(ctx, func(tx *collection.Tx) error {
		ps, _, err := resources.Packages.List(ctx, tx, collection.Query{Space: r.release.SpaceID, Take: 1,
			Where: map[string]any{"identity": cuttle.PackageIdentity(ref.PackageId, version)}})
		if err == nil && len(ps) == 1 {
			p = ps[0]
		} else if err == nil {
			err = fmt.Errorf("the built-in feed no longer has %s %s, which the release %s chose", ref.PackageId, version, r.release.Version)
		}
		return err
	})
	return p, err
}

// evaluated returns an action's property with its #{...} templates
// replaced.
func (r *run) evaluated(act cuttle.DeploymentAction, prop string, get func(string) (string, bool)) (string, error) {
	v, err := variables.Evaluate(cuttle.Prop(act.Properties, prop), get)
	if err != nil {
		return "", fmt.Errorf("the %s of %s does not parse: %v", prop, act.Name, err)
	}
	return v, nil
}

// lines returns the non-blank lines of s, trimmed: Octopus lists files one
// per line.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// pathPart returns s as one part of a folder path on any system: letters,
// digits, '.', '-' and '_' kept, anything else '_', never "." or "..".
func pathPart(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if out := string(b); out != "" && out != "." && out != ".." {
		return out
	}
	return "_"
}

// maxArtifacts bounds the artifacts one script on a node keeps.
const maxArtifacts = 100

// keepArtifacts stores the files a script that ran on this node declared
// artifacts (new_octopusartifact), under
// artifacts/<task>/<node>/<name>, and records them. A file that cannot be
// kept is a warning: Octopus does not fail a deployment for an artifact.
func (r *run) keepArtifacts(ctx context.Context, block string, output *produced) {
	output.mu.Lock()
	files := slices.Clone(output.artifacts)
	output.mu.Unlock()
	warn := func(format string, args ...any) {
		r.x.Log.Write(tasklog.Line{Category: tasklog.Warning, Block: block, Text: fmt.Sprintf(format, args...)})
	}
	if len(files) > maxArtifacts {
		warn("The script declared %d artifacts; the first %d are kept.", len(files), maxArtifacts)
		files = files[:maxArtifacts]
	}
	for _, f := range files {
		name := pathPart(filepath.Base(f.name))
		if f.name == "" {
			name = pathPart(filepath.Base(f.path))
		}
		file, err := os.Open(f.path)
		var info os.FileInfo
		if err == nil {
			info, err = file.Stat()
			if err == nil && !info.Mode().IsRegular() {
				err = errors.New("it is not a regular file")
			}
		}
		if err != nil {
			warn("The artifact %s cannot be kept: %v", f.path, err)
			if file != nil {
				file.Close()
			}
			continue
		}
		key := blob.ArtifactsKey + r.deployment.TaskId + "/" + pathPart(r.x.Node) + "/" + name
		stored, err := r.cfg.Files.Put(ctx, key, file)
		file.Close()
		if err == nil {
			a := cuttle.Artifact{Resource: cuttle.Resource{SpaceID: r.deployment.SpaceID}, Filename: name, ServerTaskId: r.deployment.TaskId,
				Source: r.x.Node, Created: time.Now().UTC(), LogCorrelationId: block, Length: stored.Size, StorageKey: key}
			err = r.cfg.Store.Update(ctx, func(tx *collection.Tx) error { return resources.KeepArtifact(ctx, tx, &a) })
		}
		if err != nil {
			warn("The artifact %s cannot be kept: %v", f.path, err)
			continue
		}
		r.x.Log.Write(tasklog.Line{Category: tasklog.Info, Block: block, Text: fmt.Sprintf("Kept the artifact %s (%s).", name, cuttle.FormatSize(stored.Size))})
	}
}
