package comms

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
)

// FuzzDecodeReport: whatever an agent sends as a report, decodeReport
// either refuses it with a client error or answers a report within
// agentapi's bounds with no NUL left in it.
func FuzzDecodeReport(f *testing.F) {
	for _, seed := range []string{
		`{"State":"Running","Lines":[{"Seq":1,"Time":"2026-01-01T00:00:00Z","Stream":"stdout","Text":"hi\u0000"}]}`,
		`{"State":"Success","ExitCode":0,"Result":{"Size":3,"SHA256":"ab"},"Error":""}`,
		`{"State":"Failed","Error":"` + strings.Repeat("e", 70000) + `"}`,
		`{"Lines":[` + strings.Repeat(`{"Seq":1},`, 1001) + `{"Seq":2}]}`,
		`{"Result":{"a":"\u0000"}}`, `[]`, `{`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		rep, err := decodeReport(http.MaxBytesReader(w, io.NopCloser(bytes.NewReader(body)), agentapi.MaxReportBody))
		if err != nil {
			if !cuttle.IsKind(err, cuttle.KindInvalid) && !cuttle.IsKind(err, cuttle.KindTooLarge) {
				t.Fatalf("decodeReport(%q) failed with %v, not a client error", body, err)
			}
			return
		}
		if len(rep.Lines) > agentapi.MaxReportLines || len(rep.Error) > agentapi.MaxErrorBytes*3 {
			t.Fatalf("a report beyond its bounds was taken: %d lines, an error of %d bytes", len(rep.Lines), len(rep.Error))
		}
		for _, l := range rep.Lines {
			if len(l.Text) > agentapi.MaxLineBytes*3 || strings.ContainsRune(l.Text, 0) {
				t.Fatalf("a line of %d bytes, or with a NUL, was taken", len(l.Text))
			}
		}
		if strings.ContainsRune(rep.Error, 0) || bytes.Contains(rep.Result, []byte(`\u0000`)) {
			t.Fatalf("a NUL is left in %q / %s", rep.Error, rep.Result)
		}
		if len(rep.Result) > 0 && !json.Valid(rep.Result) {
			t.Fatalf("a Result that is not JSON was taken: %q", rep.Result)
		}
	})
}
