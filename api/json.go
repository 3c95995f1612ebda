package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cuttledeploy/cuttle"
)

// maxBodyBytes bounds every JSON request body: 1 MiB.
const maxBodyBytes = 1 << 20

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"ErrorMessage":"The server failed to encode its answer.","Errors":["The server failed to encode its answer."]}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// decodeJSON reads one JSON object from the request body into v. It refuses
// a body over maxBodyBytes, unknown fields, values of the wrong type, and
// anything after the object, each with a KindInvalid or KindTooLarge error.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return cuttle.Errorf(cuttle.KindTooLarge, "The request body is larger than %d bytes.", maxBodyBytes)
		}
		return &cuttle.Error{Kind: cuttle.KindInvalid, Message: "The request body could not be read.", Err: err}
	}
	return decodeStrict(body, v)
}

// decodeStrict decodes exactly one JSON value from body into v, refusing
// unknown fields and trailing data.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return cuttle.Errorf(cuttle.KindInvalid, "The request body is empty; a JSON object was expected.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &cuttle.Error{Kind: cuttle.KindInvalid, Message: describeJSONError(err), Err: err}
	}
	if dec.More() {
		return cuttle.Errorf(cuttle.KindInvalid, "The request body holds more than one JSON value.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return cuttle.Errorf(cuttle.KindInvalid, "The request body holds data after its JSON value.")
	}
	return nil
}

// describeJSONError turns a decoding error into a message a client can act on.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("The request body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("The field %s must be a JSON %s, not %s.", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("The request body must be a JSON %s, not %s.", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "The request body ends in the middle of its JSON value."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Sprintf("The request body has an unknown field %s.", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return "The request body is not valid JSON."
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	default:
		return "object"
	}
}
