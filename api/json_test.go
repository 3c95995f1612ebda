package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cuttledeploy/cuttle"
)

// FuzzDecodeRequest feeds arbitrary bodies to the strict decoder of every
// request type: it must never panic, and must either decode or answer a
// client error that says what is wrong.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"MaxConcurrentTasks": 3}`, `{"IsInMaintenanceMode": true, "Id": "OctopusServerNodes-1"}`,
		`{"HeartbeatFrequencySeconds": 0.5, "StaleTimeoutSeconds": 4}`, `{"MaxConcurrentTasks": "3"}`,
		`{"Colour": 1}`, `{"MaxConcurrentTasks": 3} {}`, `[`, `null`, `{"Links": {"Self": 1}}`,
		`{"LastModifiedOn": "2020-01-01T00:00:00Z"}`, "\xff\xfe", `{"MaxConcurrentTasks": 1e400}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&nodeUpdateBody{}, &clusterUpdateBody{}} {
			err := decodeStrict(body, v)
			if err == nil {
				continue
			}
			e, ok := err.(*cuttle.Error)
			if !ok || e.Kind != cuttle.KindInvalid || e.Message == "" {
				t.Fatalf("decoding %q: %v (%T), want a KindInvalid *cuttle.Error with a message", body, err, err)
			}
		}
		var n nodeUpdateBody
		if decodeStrict(body, &n) == nil {
			cuttle.NodeUpdate{MaxConcurrentTasks: n.MaxConcurrentTasks, IsInMaintenanceMode: n.IsInMaintenanceMode}.Validate()
		}
	})
}

// TestJSONSize: jsonSize is the size encoding/json gives a string without
// HTML escaping, quotes aside.
func TestJSONSize(t *testing.T) {
	for _, s := range []string{"", "plain", "<html>&", "tab\there\nnew\x00nul\x1f", `"quoted" \back`, "line\u2028para\u2029", "é€😀"} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if want := b.Len() - 3; jsonSize(s) != want { // less the quotes and the newline
			t.Errorf("jsonSize(%q) = %d, want %d", s, jsonSize(s), want)
		}
	}
}
