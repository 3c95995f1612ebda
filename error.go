package cuttle

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an Error. The api package maps each kind to one HTTP status.
type Kind int

const (
	KindInternal     Kind = iota // a fault of the server; its cause is logged, never shown
	KindInvalid                  // the request is malformed or breaks a rule (400)
	KindUnauthorized             // no valid credentials (401)
	KindForbidden                // credentials lack a permission (403)
	KindNotFound                 // the resource does not exist (404)
	KindConflict                 // the resource's state forbids the change (409)
	KindTooLarge                 // the request body is too large (413)
	KindBusy                     // a bound on concurrent work is reached: try again shortly (429)
	KindUnavailable              // the node cannot serve now, for example without its database (503)
)

// HTTPStatus returns the HTTP status that answers an error of the kind:
// the one place that maps kinds to statuses.
func (k Kind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindUnauthorized:
		return http.StatusUnauthorized
	case KindForbidden:
		return http.StatusForbidden
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindBusy:
		return http.StatusTooManyRequests
	case KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is the error type of cuttle. Message is safe to show to a client;
// Err, the cause, is only logged.
type Error struct {
	Kind    Kind
	Message string
	Details []string // further client-safe messages, such as one per invalid field
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		if e.Message == "" {
			return e.Err.Error()
		}
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error of the given kind with a formatted client-safe message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an internal Error whose cause is err; message says what was being done.
// It returns nil when err is nil, and err itself when it already is an *Error.
func Wrap(err error, message string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: KindInternal, Message: message, Err: err}
}

// KindOf returns the kind of err: KindInternal unless err is or wraps an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err is an *Error of the given kind.
func IsKind(err error, kind Kind) bool { return err != nil && KindOf(err) == kind }
