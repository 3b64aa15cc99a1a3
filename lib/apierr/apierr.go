// Package apierr is the suite's one error model: a small set of codes, an Error
// type that carries a code, a client-safe message and field errors, and the one
// table that maps codes to HTTP statuses and back.
package apierr

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Code classifies an error for clients and for retry decisions.
type Code string

// The codes every service uses. Add a code here and to the table below, nowhere else.
const (
	Invalid          Code = "invalid"            // the client sent something wrong
	Unauthenticated  Code = "unauthenticated"    // no or bad credentials
	Forbidden        Code = "forbidden"          // credentials fine, action not allowed
	NotFound         Code = "not_found"          // no such resource
	MethodNotAllowed Code = "method_not_allowed" // the resource exists, not for this method
	Conflict         Code = "conflict"           // state changed under the caller, or duplicate
	TooManyRequests  Code = "too_many_requests"  // the caller must slow down
	Unavailable      Code = "unavailable"        // an upstream dependency cannot answer now
	Internal         Code = "internal"           // a bug or an unexpected failure
)

// statuses is the one place where codes meet HTTP.
var statuses = map[Code]int{
	Invalid:          http.StatusBadRequest,
	Unauthenticated:  http.StatusUnauthorized,
	Forbidden:        http.StatusForbidden,
	NotFound:         http.StatusNotFound,
	MethodNotAllowed: http.StatusMethodNotAllowed,
	Conflict:         http.StatusConflict,
	TooManyRequests:  http.StatusTooManyRequests,
	Unavailable:      http.StatusServiceUnavailable,
	Internal:         http.StatusInternalServerError,
}

// FieldError names one invalid field of a request and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldErrors collects what is wrong with a request, field by field, so a
// client learns about every mistake at once.
type FieldErrors []FieldError

// Add records that field is invalid.
func (f *FieldErrors) Add(field, message string) {
	*f = append(*f, FieldError{Field: field, Message: message})
}

// Err returns nil when nothing was added, otherwise an Invalid error about
// what ("order", "charge"...) that names every field.
func (f FieldErrors) Err(what string) error {
	if len(f) == 0 {
		return nil
	}
	names := make([]string, len(f))
	for i, fe := range f {
		names[i] = fe.Field
	}
	return &Error{Code: Invalid, Message: "invalid " + what + ": " + strings.Join(names, ", "), Fields: f}
}

// Error is an error that is safe to show to a client.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	// RetryAfter, when set on an Unavailable error, tells the client when to try again.
	RetryAfter time.Duration
	// Cause is the underlying failure: logged, never shown to the client.
	Cause error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Error implements error.
func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Code, e.Message)
	if len(e.Fields) > 0 {
		msg += fmt.Sprintf(" %v", e.Fields)
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unavailablef returns an Unavailable error with a client-safe message and the cause.
func Unavailablef(cause error, format string, args ...any) *Error {
	return &Error{Code: Unavailable, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// Errorf returns an Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an Invalid error for a single field.
func Invalidf(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Code: Invalid, Message: field + ": " + msg, Fields: []FieldError{{Field: field, Message: msg}}}
}

// CodeOf returns the code of err, Internal for errors that are not an *Error,
// and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Codes returns every code, sorted: what an API document's error code
// enumeration must list.
func Codes() []Code { return slices.Sorted(maps.Keys(statuses)) }

// Status returns the HTTP status for a code.
func Status(code Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// FromStatus returns the code for an HTTP status received from another service.
// Server-side failures of a dependency are Unavailable to the caller: the caller
// did nothing wrong, and a later try may succeed. Every other 4xx is Invalid:
// the request was refused, so it must never count as a failure of the
// dependency (lib/breaker) nor be sent again.
func FromStatus(status int) Code {
	for c, s := range statuses {
		if s == status && c != Internal {
			return c
		}
	}
	switch {
	case status >= 500:
		return Unavailable
	case status >= 400:
		return Invalid
	default:
		return Internal
	}
}
