package cuttle

import (
	"encoding/json"
	"strings"
	"testing"
)

func script(name, syntax, body string, onServer bool) DeploymentAction {
	props := map[string]PropertyValue{PropScriptSyntax: {Value: syntax}, PropScriptBody: {Value: body}}
	if onServer {
		props[PropRunOnServer] = PropertyValue{Value: "True"}
	}
	return DeploymentAction{Name: name, ActionType: ActionScript, Properties: props}
}

func step(name string, props map[string]string, actions ...DeploymentAction) DeploymentStep {
	s := DeploymentStep{Name: name, Properties: map[string]PropertyValue{}, Actions: actions}
	for k, v := range props {
		s.Properties[k] = PropertyValue{Value: v}
	}
	return s
}

func TestValidateSteps(t *testing.T) {
	web := map[string]string{PropTargetRoles: "web, api"}
	good := []DeploymentStep{
		step("Take out", nil, script("Drain", "Bash", "echo drain", true)),
		step("Deploy", map[string]string{PropTargetRoles: "web", PropMaxParallelism: "2"},
			script("Install", "Bash", "echo install", false), script("Back in", "Bash", "echo back", true)),
		step("Approve", nil, DeploymentAction{Name: "Check one", ActionType: ActionManual}),
		step("Later", map[string]string{PropTargetRoles: "web", PropMaxParallelism: "#{Window}"}, script("Again", "PowerShell", "Write-Host hi", false)),
	}
	good[3].StartTrigger = StartWithPrevious
	NormalizeSteps(good)
	if err := ValidateSteps(good); err != nil {
		t.Fatalf("a good process: %v", err)
	}
	if good[0].Id == "" || good[0].Actions[0].Id == "" || good[0].Condition != StepSuccess || good[0].Actions[0].Environments == nil {
		t.Errorf("NormalizeSteps left %+v", good[0])
	}

	for _, c := range []struct {
		why   string
		steps []DeploymentStep
		want  string
	}{
		{"no name", []DeploymentStep{step(" ", web, script("a", "Bash", "x", false))}, "Step 1 has no name"},
		{"duplicate step names", []DeploymentStep{step("One", web, script("a", "Bash", "x", false)), step("one", web, script("b", "Bash", "x", false))}, `"one": another step`},
		{"duplicate action names", []DeploymentStep{step("One", web, script("a", "Bash", "x", false)), step("Two", web, script("A", "Bash", "x", false))}, `"Two": another action`},
		{"unknown type", []DeploymentStep{step("One", web, DeploymentAction{Name: "a", ActionType: "Octopus.AzureWebApp"})}, `"Octopus.AzureWebApp" is not one cuttle runs`},
		{"package step without a package", []DeploymentStep{step("One", web, DeploymentAction{Name: "a", ActionType: ActionPackage})}, "names none"},
		{"package of another feed", []DeploymentStep{step("One", web, DeploymentAction{Name: "a", ActionType: ActionPackage,
			Packages: []PackageReference{{PackageId: "app", FeedId: "feeds-nuget"}}})}, `feed "feeds-nuget"`},
		{"no roles", []DeploymentStep{step("One", nil, script("a", "Bash", "x", false))}, `"One": it runs on deployment targets but names no target roles`},
		{"window zero", []DeploymentStep{step("One", map[string]string{PropTargetRoles: "web", PropMaxParallelism: "0"}, script("a", "Bash", "x", false))}, "window"},
		{"window not a number", []DeploymentStep{step("One", map[string]string{PropTargetRoles: "web", PropMaxParallelism: "two"}, script("a", "Bash", "x", false))}, "window"},
		{"no actions", []DeploymentStep{step("One", web)}, "no action"},
		{"syntax", []DeploymentStep{step("One", web, script("a", "Python", "x", false))}, `syntax "Python"`},
		{"no body", []DeploymentStep{step("One", web, script("a", "Bash", " ", false))}, "no script body"},
		{"variable condition without its expression", []DeploymentStep{{Name: "One", Condition: StepVariable, Properties: map[string]PropertyValue{PropTargetRoles: {Value: "web"}}, Actions: []DeploymentAction{script("a", "Bash", "x", false)}}}, "ConditionVariableExpression"},
		{"first with previous", []DeploymentStep{{Name: "One", StartTrigger: StartWithPrevious, Properties: web2(), Actions: []DeploymentAction{script("a", "Bash", "x", false)}}}, "first step"},
	} {
		NormalizeSteps(c.steps)
		err := ValidateSteps(c.steps)
		if !IsKind(err, KindInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want KindInvalid saying %q", c.why, err, c.want)
		}
	}
}

func web2() map[string]PropertyValue {
	return map[string]PropertyValue{PropTargetRoles: {Value: "web"}}
}

func TestPropertyValueJSON(t *testing.T) {
	var props map[string]PropertyValue
	if err := json.Unmarshal([]byte(`{"a": "plain", "b": {"HasValue": true, "NewValue": "secret"}}`), &props); err != nil {
		t.Fatal(err)
	}
	if props["a"].Value != "plain" || props["b"].Sensitive == nil || *props["b"].Sensitive.NewValue != "secret" {
		t.Errorf("decoded %+v", props)
	}
	b, _ := json.Marshal(map[string]PropertyValue{"a": {Value: "plain"}, "b": {Sensitive: &SensitiveValue{HasValue: true}}})
	if string(b) != `{"a":"plain","b":{"HasValue":true}}` {
		t.Errorf("encoded %s", b)
	}
	for _, bad := range []string{`{"a": 1}`, `{"a": true}`, `{"a": ["x"]}`} {
		if err := json.Unmarshal([]byte(bad), &props); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}
