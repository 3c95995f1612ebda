package packagefile_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle/packagefile"
)

// lookupOf answers from vars, ignoring case as variables.Set does.
func lookupOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for k, v := range vars {
			if strings.EqualFold(k, name) {
				return v, true
			}
		}
		return "", false
	}
}

func TestJSONConfigurationVariables(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		vars map[string]string
		out  string // "" for unchanged
	}{
		{
			name: "nested property, any case",
			in:   `{"Logging": {"LogLevel": {"Default": "Warning", "System": "Error"}}, "AllowedHosts": "*"}`,
			vars: map[string]string{"logging:loglevel:default": "Debug", "Unrelated": "x"},
			out:  "{\n  \"Logging\": {\n    \"LogLevel\": {\n      \"Default\": \"Debug\",\n      \"System\": \"Error\"\n    }\n  },\n  \"AllowedHosts\": \"*\"\n}",
		},
		{
			name: "order of properties kept",
			in:   `{"z": 1, "a": 2, "m": {"y": 1, "b": 2}}`,
			vars: map[string]string{"m:b": "3"},
			out:  "{\n  \"z\": 1,\n  \"a\": 2,\n  \"m\": {\n    \"y\": 1,\n    \"b\": 3\n  }\n}",
		},
		{
			name: "array items by index",
			in:   `{"Items": [{"Name": "a"}, {"Name": "b"}, "c"]}`,
			vars: map[string]string{"Items:0:Name": "A", "Items:2": "C"},
			out:  "{\n  \"Items\": [\n    {\n      \"Name\": \"A\"\n    },\n    {\n      \"Name\": \"b\"\n    },\n    \"C\"\n  ]\n}",
		},
		{
			name: "top-level array",
			in:   `[{"Name": "a"}]`,
			vars: map[string]string{"0:Name": "b"},
			out:  "[\n  {\n    \"Name\": \"b\"\n  }\n]",
		},
		{
			name: "an object replaced by a JSON object, order of the value kept",
			in:   `{"Api": {"Url": "http://old"}}`,
			vars: map[string]string{"Api": ` {"Url": "https://new", "Key": 5, "Tags": []} `},
			out:  "{\n  \"Api\": {\n    \"Url\": \"https://new\",\n    \"Key\": 5,\n    \"Tags\": []\n  }\n}",
		},
		{
			name: "a string replaced by an array",
			in:   `{"Hosts": "a"}`,
			vars: map[string]string{"Hosts": `["a", "b"]`},
			out:  "{\n  \"Hosts\": [\n    \"a\",\n    \"b\"\n  ]\n}",
		},
		{
			name: "the outermost match wins",
			in:   `{"Logging": {"Level": "Warning"}}`,
			vars: map[string]string{"Logging": "off", "Logging:Level": "Debug"},
			out:  "{\n  \"Logging\": \"off\"\n}",
		},
		{
			name: "strings stay strings",
			in:   `{"Code": "1", "Flag": "no", "Empty": "x", "Obj": "{}"}`,
			vars: map[string]string{"Code": "007", "Flag": "true", "Empty": "null", "Obj": "{not json"},
			out:  "{\n  \"Code\": \"007\",\n  \"Flag\": \"true\",\n  \"Empty\": \"null\",\n  \"Obj\": \"{not json\"\n}",
		},
		{
			name: "numbers, booleans and nulls keep their kind",
			in:   `{"Port": 80, "On": true, "Off": null, "Ratio": 0.5, "Big": 1, "Name": 1, "Blank": 2}`,
			vars: map[string]string{"Port": "8080", "On": "false", "Off": " 1.50 ", "Ratio": "1e3", "Big": "123456789012345678901234567890", "Name": "eight", "Blank": ""},
			out:  "{\n  \"Port\": 8080,\n  \"On\": false,\n  \"Off\": 1.50,\n  \"Ratio\": 1e3,\n  \"Big\": 123456789012345678901234567890,\n  \"Name\": \"eight\",\n  \"Blank\": \"\"\n}",
		},
		{
			name: "an object replaced by a number",
			in:   `{"A": {"b": 1}}`,
			vars: map[string]string{"A": "2"},
			out:  "{\n  \"A\": 2\n}",
		},
		{
			name: "strings written with the escapes JSON needs only",
			in:   `{"Html": "x", "Quote": "x", "Tab": "x", "Key \"q\" <b>": "\u00e9", "Url": "x"}`,
			vars: map[string]string{"Html": "<b>&amp;</b>", "Quote": `say "hi" \ there`, "Tab": "a\tb\n", "Url": "https://example.com/?a=1&b=2"},
			out:  "{\n  \"Html\": \"<b>&amp;</b>\",\n  \"Quote\": \"say \\\"hi\\\" \\\\ there\",\n  \"Tab\": \"a\\tb\\n\",\n  \"Key \\\"q\\\" <b>\": \"é\",\n  \"Url\": \"https://example.com/?a=1&b=2\"\n}",
		},
		{
			name: "duplicate properties both replaced",
			in:   `{"a": 1, "a": 2}`,
			vars: map[string]string{"a": "3"},
			out:  "{\n  \"a\": 3,\n  \"a\": 3\n}",
		},
		{
			name: "a path through a colon in a name",
			in:   `{"a:b": 1, "a": {"b": 2}}`,
			vars: map[string]string{"a:b": "3"},
			out:  "{\n  \"a:b\": 3,\n  \"a\": {\n    \"b\": 3\n  }\n}",
		},
		{
			name: "comments and trailing commas read, not written",
			in:   "// settings\n{\n  /* the level */ \"Level\": \"Warning\", // for now\n  \"Url\": \"http://x//y/*z*/\",\n  \"List\": [1, 2,],\n}\n",
			vars: map[string]string{"Level": "Debug"},
			out:  "{\n  \"Level\": \"Debug\",\n  \"Url\": \"http://x//y/*z*/\",\n  \"List\": [\n    1,\n    2\n  ]\n}\n",
		},
		{
			name: "byte order mark, CRLF and a final line break kept",
			in:   "\xef\xbb\xbf{\r\n  \"a\": 1\r\n}\r\n",
			vars: map[string]string{"a": "2"},
			out:  "\xef\xbb\xbf{\r\n  \"a\": 2\r\n}\r\n",
		},
		{
			name: "empty object and array kept",
			in:   `{"a": {}, "b": [], "c": 1}`,
			vars: map[string]string{"c": "2"},
			out:  "{\n  \"a\": {},\n  \"b\": [],\n  \"c\": 2\n}",
		},
		{
			name: "nothing matches: left as it is",
			in:   "{ \"a\" : 1 , // keep\n \"b\": [ ] }",
			vars: map[string]string{"c": "2", "a:x": "3"},
		},
		{
			name: "a scalar file has no properties",
			in:   `"a"`,
			vars: map[string]string{"": "b"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"appsettings.json": tc.in})
			changed, unmatched, err := packagefile.JSONConfigurationVariables(dir, []string{"appsettings.json"}, lookupOf(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			if len(unmatched) != 0 {
				t.Errorf("unmatched %q", unmatched)
			}
			want, wantChanged := tc.out, []string{"appsettings.json"}
			if want == "" {
				want, wantChanged = tc.in, nil
			}
			if !slices.Equal(changed, wantChanged) {
				t.Errorf("changed %q, want %q", changed, wantChanged)
			}
			got, _ := os.ReadFile(filepath.Join(dir, "appsettings.json"))
			if string(got) != want {
				t.Errorf("the file holds\n%s\nwant\n%s", got, want)
			}
			if tc.out != "" && !json.Valid([]byte(strings.TrimPrefix(string(got), "\xef\xbb\xbf"))) {
				t.Errorf("the file is not JSON:\n%s", got)
			}
		})
	}
}

func TestJSONConfigurationVariablesFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"appsettings.json":            `{"Env": "dev"}`,
		"appsettings.Production.json": `{"Env": "dev", "Other": 1}`,
		"config/nested.json":          `{"Env": "dev"}`,
		"run.sh*":                     "#!/bin/sh",
	})
	os.Chmod(filepath.Join(dir, "config", "nested.json"), 0o600)
	changed, unmatched, err := packagefile.JSONConfigurationVariables(dir, []string{"appsettings*.json", "**/nested.json", "missing/*.json"}, lookupOf(map[string]string{"Env": "prod"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"appsettings.Production.json", "appsettings.json", "config/nested.json"}; !slices.Equal(changed, want) {
		t.Errorf("changed %q, want %q", changed, want)
	}
	if want := []string{"missing/*.json"}; !slices.Equal(unmatched, want) {
		t.Errorf("unmatched %q, want %q", unmatched, want)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "config", "nested.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("nested.json has mode %v, want 0600", fi.Mode())
	}
	if got := tree(t, dir); len(got) != 5 {
		t.Errorf("the folder holds %q", got)
	}
}

func TestJSONConfigurationVariablesRefuses(t *testing.T) {
	for _, tc := range []struct{ in, message string }{
		{`{"a": 1,, "b": 2}`, "line 1"},
		{"{\n\"a\": 1\n\"b\": 2}", "line 3"},
		{`{"a": 1} {"b": 2}`, "more than one value"},
		{`{"a": 1`, "it ends before its last value does"},
		{`{"a": [1, {"b": `, "it ends before its last value does"},
		{"  \n", "it is empty"},
		{"", "it is empty"},
		{"{\n/* open", "line 2: a /* comment is not closed"},
		{`<xml/>`, "line 1"},
	} {
		dir := writeTree(t, map[string]string{"a.json": `{"a": 1}`, "b.json": tc.in, "c.json": `{"a": 1}`})
		changed, _, err := packagefile.JSONConfigurationVariables(dir, []string{"*.json"}, lookupOf(map[string]string{"a": "2"}))
		if err == nil || !strings.Contains(err.Error(), "The file b.json is not JSON") || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("JSONConfigurationVariables of %q: %v; want it to say b.json is not JSON, %s", tc.in, err, tc.message)
		}
		if !slices.Equal(changed, []string{"a.json"}) {
			t.Errorf("changed %q, want a.json only", changed)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "c.json")); string(got) != `{"a": 1}` {
			t.Errorf("c.json, after the file that failed, changed to %q", got)
		}
	}
	if _, _, err := packagefile.JSONConfigurationVariables(t.TempDir(), []string{"../*.json"}, lookupOf(nil)); err == nil {
		t.Error("JSONConfigurationVariables took a pattern with ..")
	}
}
