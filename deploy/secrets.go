package deploy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/variables"
)

// This file keeps a deployment's sensitive values out of the database in
// clear (DESIGN.md 12): the lines of an agent's output are redacted by the
// node that receives them, before they are stored (Redactor), and the
// sensitive output variables in the checkpoint are sealed.

// scriptPayload is what an agent command of a deployment carries, sealed:
// the script and the sensitive values its output must not show.
type scriptPayload struct {
	Body   string
	Syntax string
	// Mask lists the deployment's sensitive values: the node that receives
	// the command's output masks them before storing it.
	Mask []string `json:",omitempty"`
}

// outputPurpose names the master key's use for sealed output variables.
const outputPurpose = "output variable"

// serviceMessage is a line by which a script sets an output variable:
// ##octopus[setVariable name='<base64>' value='<base64>' sensitive='<base64>'],
// as Octopus's script functions print it. A node that stored the line of
// a sensitive one replaced value with sealed: the value sealed with the
// master key.
var serviceMessage = regexp.MustCompile(`^##octopus\[setVariable name='([A-Za-z0-9+/=]*)' (value|sealed)='([A-Za-z0-9+/=]*)'(?: sensitive='([A-Za-z0-9+/=]*)')?\]\s*$`)

// serviceLine is a parsed service message.
type serviceLine struct {
	name, value string // value: base64, sealed or not
	sealed      bool
	sensitive   bool
	sensitiveB  string // the sensitive attribute as printed
}

func parseServiceLine(line string) (serviceLine, bool) {
	if !strings.HasPrefix(line, "##octopus[") {
		return serviceLine{}, false
	}
	m := serviceMessage.FindStringSubmatch(line)
	if m == nil {
		return serviceLine{}, false
	}
	n, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil || len(n) == 0 {
		return serviceLine{}, false
	}
	sl := serviceLine{name: string(n), value: m[3], sealed: m[2] == "sealed", sensitiveB: m[4]}
	if m[4] != "" {
		s, _ := base64.StdEncoding.DecodeString(m[4])
		sl.sensitive, _ = strconv.ParseBool(string(s))
	}
	return sl, true
}

// artifactMessage is a line by which a script keeps a file as an artifact:
// ##octopus[createArtifact path='<base64>' name='<base64>'] (the
// preamble's new_octopusartifact).
var artifactMessage = regexp.MustCompile(`^##octopus\[createArtifact path='([A-Za-z0-9+/=]*)' name='([A-Za-z0-9+/=]*)'(?: length='[A-Za-z0-9+/=]*')?\]\s*$`)

// parseArtifactMessage returns the file and name a createArtifact line
// names.
func parseArtifactMessage(line string) (path, name string, ok bool) {
	m := artifactMessage.FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	p, err1 := base64.StdEncoding.DecodeString(m[1])
	n, err2 := base64.StdEncoding.DecodeString(m[2])
	if err1 != nil || err2 != nil || len(p) == 0 {
		return "", "", false
	}
	return string(p), string(n), true
}

// parseServiceMessage returns the output variable a line sets, if it is a
// service message; a sealed value is opened with key.
func parseServiceMessage(key masterkey.Key, line string) (name, value string, sensitive, ok bool) {
	sl, ok := parseServiceLine(line)
	if !ok {
		return "", "", false, false
	}
	raw, err := base64.StdEncoding.DecodeString(sl.value)
	if err != nil {
		return "", "", false, false
	}
	if sl.sealed {
		if raw, err = key.Open(outputPurpose, raw); err != nil {
			return "", "", false, false
		}
		sl.sensitive = true
	}
	return sl.name, string(raw), sl.sensitive, true
}

// Redactor returns, for the node that receives agents' output (comms),
// what each line of a command's output becomes before it is stored, given
// the command's opened payload: a deployment's sensitive values masked
// (the payload's Mask), and the value of a service message that sets a
// sensitive output variable sealed with key. nil for a payload that is
// not a deployment's script.
func Redactor(key masterkey.Key) func(payload json.RawMessage) func(string) string {
	return func(payload json.RawMessage) func(string) string {
		var p struct {
			Body, PackageID string
			Mask            []string
		}
		if json.Unmarshal(payload, &p) != nil || (p.Body == "" && p.PackageID == "") {
			return nil // not a deployment's script or package
		}
		masker := variables.NewMasker(p.Mask)
		return func(line string) string {
			if sl, ok := parseServiceLine(line); ok && sl.sensitive && !sl.sealed {
				if raw, err := base64.StdEncoding.DecodeString(sl.value); err == nil {
					if sealed, err := key.Seal(outputPurpose, raw); err == nil {
						return fmt.Sprintf("##octopus[setVariable name='%s' sealed='%s' sensitive='%s']",
							base64.StdEncoding.EncodeToString([]byte(sl.name)), base64.StdEncoding.EncodeToString(sealed), sl.sensitiveB)
					}
				}
				return "##octopus[setVariable: a sensitive value that could not be sealed was dropped]"
			}
			return masker.Apply(line)
		}
	}
}

// produced collects the output variables an action sets as its script
// runs: plain ones, and sensitive ones (which the checkpoint keeps sealed);
// and the files it declares artifacts (a script on a node: an agent
// uploads its own).
type produced struct {
	mu            sync.Mutex
	plain, secret map[string]string
	artifacts     []declared
}

// declared is a file a script declared an artifact.
type declared struct{ path, name string }

func (p *produced) declare(path, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.artifacts = append(p.artifacts, declared{path, name})
}

func newProduced() *produced {
	return &produced{plain: map[string]string{}, secret: map[string]string{}}
}

func (p *produced) set(name, value string, sensitive bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.plain, name)
	delete(p.secret, name)
	if sensitive {
		p.secret[name] = value
	} else {
		p.plain[name] = value
	}
}

// seal returns the sensitive output variables sealed with key, base64.
func sealOutputs(key masterkey.Key, secret map[string]string) (map[string]string, error) {
	if len(secret) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(secret))
	for name, value := range secret {
		b, err := key.Seal(outputPurpose, []byte(value))
		if err != nil {
			return nil, err
		}
		out[name] = base64.StdEncoding.EncodeToString(b)
	}
	return out, nil
}

// openOutputs opens every action's sealed output variables of the
// checkpoint into its secret outputs, and returns their values.
func openOutputs(key masterkey.Key, p *progress) ([]string, error) {
	var values []string
	for i := range p.Steps {
		for t := range p.Steps[i].Targets {
			for a := range p.Steps[i].Targets[t].Actions {
				ap := &p.Steps[i].Targets[t].Actions[a]
				for name, sealed := range ap.Sealed {
					raw, err := base64.StdEncoding.DecodeString(sealed)
					if err == nil {
						raw, err = key.Open(outputPurpose, raw)
					}
					if err != nil {
						return nil, fmt.Errorf("the sensitive output variable %s of %s cannot be opened: %v", name, ap.Name, err)
					}
					if ap.secret == nil {
						ap.secret = map[string]string{}
					}
					ap.secret[name] = string(raw)
					values = append(values, string(raw))
				}
			}
		}
	}
	return values, nil
}
