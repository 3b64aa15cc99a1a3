package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/auth"
)

var key = []byte(strings.Repeat("k", 32))

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok, exp, err := auth.Issue(key, auth.Claims{UserID: "usr_1", Email: "a@b.c", Role: auth.RoleAdmin}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := auth.Verify(key, tok, now.Add(30*time.Minute))
	if err != nil || c.UserID != "usr_1" || c.Role != auth.RoleAdmin || c.Email != "a@b.c" || !c.ExpiresAt.Equal(exp) {
		t.Fatalf("claims %+v err %v", c, err)
	}
	cases := map[string]struct {
		key []byte
		tok string
		at  time.Time
	}{
		"expired":   {key, tok, now.Add(2 * time.Hour)},
		"wrong key": {[]byte(strings.Repeat("x", 32)), tok, now},
		"tampered":  {key, tok[:len(tok)-2] + "xx", now},
		"garbage":   {key, "not.a.token", now},
		"empty":     {key, "", now},
	}
	for name, tc := range cases {
		if _, err := auth.Verify(tc.key, tc.tok, tc.at); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestNoneAlgorithmRejected(t *testing.T) {
	// {"alg":"none"} header with valid-looking claims.
	tok := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1c3JfMSIsInJvbGUiOiJhZG1pbiIsImlzcyI6ImRhcHJzaG9wLXVzZXJzIiwiYXVkIjpbImRhcHJzaG9wIl0sImV4cCI6OTk5OTk5OTk5OX0."
	if _, err := auth.Verify(key, tok, time.Unix(1_700_000_000, 0)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("alg none accepted: %v", err)
	}
}

func TestShortKeyRefused(t *testing.T) {
	if _, _, err := auth.Issue([]byte("short"), auth.Claims{UserID: "u", Role: auth.RoleCustomer}, time.Now(), time.Hour); err == nil {
		t.Fatal("short key accepted")
	}
}
