package apierr_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/daprshop/suite/lib/apierr"
)

func TestStatusRoundTrip(t *testing.T) {
	for _, code := range []apierr.Code{apierr.Invalid, apierr.Unauthenticated, apierr.Forbidden,
		apierr.NotFound, apierr.Conflict, apierr.TooManyRequests, apierr.Unavailable} {
		if got := apierr.FromStatus(apierr.Status(code)); got != code {
			t.Errorf("FromStatus(Status(%s)) = %s", code, got)
		}
	}
}

func TestFromStatusUpstreamFailureIsUnavailable(t *testing.T) {
	for _, s := range []int{500, 502, 504} {
		if got := apierr.FromStatus(s); got != apierr.Unavailable {
			t.Errorf("FromStatus(%d) = %s, want unavailable", s, got)
		}
	}
	if got := apierr.FromStatus(http.StatusRequestEntityTooLarge); got != apierr.Invalid {
		t.Errorf("FromStatus(413) = %s, want invalid", got)
	}
}

// TestFromStatusEveryClientErrorStaysOne: no 4xx a dependency answers becomes
// a code that counts as its failure (lib/breaker) or invites a retry.
func TestFromStatusEveryClientErrorStaysOne(t *testing.T) {
	for s := 400; s < 500; s++ {
		if got := apierr.FromStatus(s); got == apierr.Unavailable || got == apierr.Internal {
			t.Errorf("FromStatus(%d) = %s, want a client error", s, got)
		}
	}
}

func TestCodeOf(t *testing.T) {
	wrapped := fmt.Errorf("saving: %w", apierr.Errorf(apierr.Conflict, "etag mismatch"))
	cases := map[string]struct {
		err  error
		want apierr.Code
	}{
		"nil":     {nil, ""},
		"plain":   {errors.New("boom"), apierr.Internal},
		"wrapped": {wrapped, apierr.Conflict},
		"field":   {apierr.Invalidf("user_id", "is required"), apierr.Invalid},
	}
	for name, tc := range cases {
		if got := apierr.CodeOf(tc.err); got != tc.want {
			t.Errorf("%s: CodeOf = %q, want %q", name, got, tc.want)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	var fe apierr.FieldErrors
	if fe.Err("order") != nil {
		t.Fatal("no fields, yet an error")
	}
	fe.Add("user_id", "is required")
	fe.Add("items", "must not be empty")
	var e *apierr.Error
	if !errors.As(fe.Err("order"), &e) || e.Code != apierr.Invalid || e.Message != "invalid order: user_id, items" || len(e.Fields) != 2 {
		t.Fatalf("err = %+v", e)
	}
}

func TestInvalidfNamesField(t *testing.T) {
	err := apierr.Invalidf("items[0].quantity", "must be at least %d", 1)
	if len(err.Fields) != 1 || err.Fields[0].Field != "items[0].quantity" || err.Fields[0].Message != "must be at least 1" {
		t.Fatalf("fields = %+v", err.Fields)
	}
}
