// Package capture records what a handler wrote to its response, for the
// middleware that reports on the request after it (metrics, the edge's span).
package capture

import "net/http"

// Status is a ResponseWriter that remembers the status code written through
// it (200 when the handler wrote none).
type Status struct {
	http.ResponseWriter
	Code int
}

// New wraps w.
func New(w http.ResponseWriter) *Status { return &Status{ResponseWriter: w, Code: http.StatusOK} }

// WriteHeader records code and writes it.
func (s *Status) WriteHeader(code int) {
	s.Code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (s *Status) Unwrap() http.ResponseWriter { return s.ResponseWriter }
