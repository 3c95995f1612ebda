package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/cuttledeploy/cuttle"
)

// errorBody is the Octopus error document.
type errorBody struct {
	ErrorMessage string
	Errors       []string `json:",omitempty"`
}

// writeError answers with the Octopus error body. A client sees the message of
// a *cuttle.Error that is not internal; anything else is logged and answered
// with a generic message.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *cuttle.Error
	if !errors.As(err, &e) {
		e = &cuttle.Error{Kind: cuttle.KindInternal, Err: err}
	}
	status := e.Kind.HTTPStatus()
	body := errorBody{ErrorMessage: e.Message, Errors: e.Details}
	switch {
	case e.Kind == cuttle.KindInternal:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		body = errorBody{ErrorMessage: "The server failed to handle the request; the cause is in its log."}
	case e.Kind == cuttle.KindUnavailable:
		log.Warn("request failed: unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		if body.ErrorMessage == "" || e.Err != nil {
			body.ErrorMessage = "The server cannot serve this request now (its database may be unreachable); try again."
		}
	case e.Err != nil:
		log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	// Official clients turn a 404 into their typed not-found error only when
	// Errors is absent; for every other status Errors lists what went wrong.
	if body.Errors == nil && e.Kind != cuttle.KindNotFound {
		body.Errors = []string{body.ErrorMessage}
	}
	writeJSON(w, status, body)
}
