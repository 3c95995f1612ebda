package variables

import (
	"fmt"
	"strings"
	"testing"
)

func value(name, v string, scope Scope) Variable {
	return Variable{Name: name, Value: &v, Scope: scope}
}

// TestMostSpecificWins: of the values whose scope applies, the most
// specific wins, whatever the order they were added in.
func TestMostSpecificWins(t *testing.T) {
	s := NewSet([]Variable{
		value("ConnectionString", "unscoped", Scope{}),
		value("connectionstring", "production", Scope{Environment: []string{"Environments-2"}}),
		value("ConnectionString", "web role", Scope{Role: []string{"web"}}),
		value("ConnectionString", "web-1 in production", Scope{Machine: []string{"Machines-1"}, Environment: []string{"Environments-2"}}),
		value("ConnectionString", "step in test", Scope{Action: []string{"Actions-1"}, Environment: []string{"Environments-1"}}),
		value("ConnectionString", "channel", Scope{Channel: []string{"Channels-9"}}),
	})
	for _, c := range []struct {
		name string
		ctx  Context
		want string
	}{
		{"nothing matches a scope", Context{Environment: "Environments-3"}, "unscoped"},
		{"environment", Context{Environment: "Environments-2"}, "production"},
		{"role over environment", Context{Environment: "Environments-2", Machine: "Machines-7", Roles: []string{"db", "WEB"}}, "web role"},
		{"machine over role", Context{Environment: "Environments-2", Machine: "Machines-1", Roles: []string{"web"}}, "web-1 in production"},
		{"a scope that names a machine needs the environment it names too", Context{Environment: "Environments-1", Machine: "Machines-1"}, "unscoped"},
		{"action and environment over environment alone", Context{Environment: "Environments-1", Action: "Actions-1"}, "step in test"},
		{"channel over unscoped", Context{Channel: "Channels-9"}, "channel"},
	} {
		if got, ok := s.Get("CONNECTIONSTRING", c.ctx); !ok || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
	if _, ok := s.Get("Missing", Context{}); ok {
		t.Error("a missing variable was found")
	}
	onlyScoped := NewSet([]Variable{value("Port", "80", Scope{Environment: []string{"Environments-2"}})})
	if _, ok := onlyScoped.Get("Port", Context{Environment: "Environments-1"}); ok {
		t.Error("a value scoped to another environment applied")
	}
}

func TestEqualSpecificityFirstWins(t *testing.T) {
	s := NewSet([]Variable{value("A", "first", Scope{Role: []string{"web"}}), value("A", "second", Scope{Role: []string{"api"}})})
	if got, _ := s.Get("A", Context{Roles: []string{"api", "web"}}); got != "first" {
		t.Errorf("got %q, want the value added first", got)
	}
	if names := s.Names(); len(names) != 1 || names[0] != "A" {
		t.Errorf("Names = %v", names)
	}
}

func TestSensitive(t *testing.T) {
	if !(Variable{Type: "Sensitive"}).Sensitive() || !(Variable{IsSensitive: true}).Sensitive() || (Variable{Type: "String"}).Sensitive() {
		t.Error("Sensitive: Type Sensitive or IsSensitive")
	}
}

func TestMasker(t *testing.T) {
	m := NewMasker([]string{"hunter2", "hunter2-and-more", "", "x", "hunter2"})
	for in, want := range map[string]string{
		"password is hunter2.":           "password is ********.",
		"key=hunter2-and-more;":          "key=********;",
		"hunter2hunter2":                 "****************",
		"nothing secret, x marks a spot": "nothing secret, x marks a spot",
	} {
		if got := m.Apply(in); got != want {
			t.Errorf("Apply(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (Masker{}).Apply("hunter2"); got != "hunter2" {
		t.Errorf("the zero Masker changed %q", got)
	}
}

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for k, v := range vars {
			if strings.EqualFold(k, name) {
				return v, true
			}
		}
		return "", false
	}
}

func TestEvaluate(t *testing.T) {
	vars := lookup(map[string]string{
		"Octopus.Environment.Name":               "Production",
		"Octopus.Machine.Name":                   "web-1",
		"Octopus.Action[Deploy web].Output.Port": "8080",
		"Greeting":                               "Hello from #{Octopus.Machine.Name}",
		"Loop":                                   "#{Loop}!",
		"Servers":                                "web-1, web-2,web-3",
		"Enabled":                                "True",
		"Disabled":                               "false",
		"Quote":                                  `say "hi" <b>`,
	})
	for _, c := range []struct{ tmpl, want string }{
		{"deploy to #{Octopus.Environment.Name}", "deploy to Production"},
		{"#{octopus.environment.name | ToLower | ToUpper}", "PRODUCTION"},
		{"port #{Octopus.Action[Deploy web].Output.Port}", "port 8080"},
		{"#{Greeting}", "Hello from web-1"},
		{"#{Unknown} stays", "#{Unknown} stays"},
		{"#{Octopus.Environment.Name | NoSuchFilter}", "#{Octopus.Environment.Name | NoSuchFilter}"},
		{"##{Octopus.Environment.Name} is literal", "#{Octopus.Environment.Name} is literal"},
		{"#{if Enabled}on#{else}off#{/if}", "on"},
		{"#{if Disabled}on#{else}off#{/if}", "off"},
		{"#{if Missing}on#{/if}.", "."},
		{"#{unless Disabled}not disabled#{/unless}", "not disabled"},
		{`#{if Octopus.Environment.Name == "production"}prod#{else}other#{/if}`, "prod"},
		{`#{if Octopus.Environment.Name != "Production"}other#{/if}=`, "="},
		{"#{if Octopus.Machine.Name == Octopus.Machine.Name}same#{/if}", "same"},
		{"#{each s in Servers}#{s}#{unless Octopus.Template.Each.Last},#{/unless}#{/each}", "web-1,web-2,web-3"},
		{"#{each s in Servers}#{if Octopus.Template.Each.First}[#{/if}#{Octopus.Template.Each.Index}#{/each}", "[012"},
		{"#{Quote | JsonEscape}|#{Quote | HtmlEscape}", `say \"hi\" <b>|say &#34;hi&#34; &lt;b&gt;`},
		{"#{Octopus.Machine.Name | ToBase64 | FromBase64}", "web-1"},
		{"unclosed #{ brace", "unclosed #{ brace"},
	} {
		got, err := Evaluate(c.tmpl, vars)
		if err != nil || got != c.want {
			t.Errorf("Evaluate(%q) = %q, %v; want %q", c.tmpl, got, err, c.want)
		}
	}
	// A variable that refers to itself ends.
	if got, err := Evaluate("#{Loop}", vars); err != nil || !strings.HasPrefix(got, "#{Loop}") {
		t.Errorf("a self-referring variable: %q, %v", got, err)
	}
	// Values that double at each level stop growing.
	doubling := map[string]string{"x0": "ab"}
	for i := 1; i <= 30; i++ {
		doubling[fmt.Sprintf("x%d", i)] = fmt.Sprintf("#{x%d}#{x%d}", i-1, i-1)
	}
	if got, _ := Evaluate("#{x30}", lookup(doubling)); len(got) > 4*maxExpanded {
		t.Errorf("a doubling template grew to %d bytes", len(got))
	}
	for _, bad := range []string{"#{if Enabled}never closed", "#{/if}", "#{each x}#{/each}", "#{if Enabled}a#{/each}"} {
		if got, err := Evaluate(bad, vars); err == nil || got != bad {
			t.Errorf("Evaluate(%q) = %q, %v; want it unchanged, with an error", bad, got, err)
		}
	}
}

func FuzzEvaluate(f *testing.F) {
	for _, seed := range []string{"#{a}", "#{if a}x#{else}y#{/if}", "#{each i in a}#{i}#{/each}", "##{a}", "#{a | ToBase64}", "#{"} {
		f.Add(seed)
	}
	vars := lookup(map[string]string{"a": "1,2,#{a}", "b": "#{a}#{b}"})
	f.Fuzz(func(t *testing.T, tmpl string) {
		out, err := Evaluate(tmpl, vars)
		if err != nil && out != tmpl {
			t.Fatalf("a template that does not parse came back changed: %q -> %q", tmpl, out)
		}
	})
}
