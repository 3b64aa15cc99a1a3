package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/services/users/internal/httpapi"
	"github.com/daprshop/suite/services/users/internal/users"
)

type store struct {
	mu      sync.Mutex
	emails  map[string]string
	records map[string]users.Record
}

func (s *store) ClaimEmail(_ context.Context, e, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.emails[e]; ok {
		return "", apierr.Errorf(apierr.Conflict, "taken")
	}
	s.emails[e] = id
	return "1", nil
}
func (s *store) ReleaseEmail(context.Context, string, string) error { return nil }
func (s *store) UserIDByEmail(_ context.Context, e string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.emails[e]; ok {
		return id, nil
	}
	return "", apierr.Errorf(apierr.NotFound, "none")
}
func (s *store) Put(_ context.Context, r users.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[r.ID] = r
	return nil
}
func (s *store) Get(_ context.Context, id string) (users.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.records[id]; ok {
		return r, nil
	}
	return users.Record{}, apierr.Errorf(apierr.NotFound, "no %s", id)
}

type keys struct{}

func (keys) SigningKey(context.Context) ([]byte, error) { return []byte(strings.Repeat("k", 32)), nil }

func handler() http.Handler {
	svc := &users.Service{Store: &store{emails: map[string]string{}, records: map[string]users.Record{}}, Keys: keys{},
		BcryptCost: 4, TokenTTL: time.Hour, Now: time.Now}
	return httpapi.Routes(svc, metrics.New("users"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
}

func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

func TestAPI(t *testing.T) {
	h := handler()
	w := do(h, "POST", "/users", `{"email":"ada@example.com","password":"analytical engine","name":"Ada"}`)
	var u users.User
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &u) != nil || strings.Contains(w.Body.String(), "password") {
		t.Fatalf("sign-up %d %s", w.Code, w.Body)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"duplicate", "POST", "/users", `{"email":"ada@example.com","password":"analytical engine","name":"Ada"}`, 409, ""},
		{"bad email", "POST", "/users", `{"email":"nope","password":"analytical engine","name":"Ada"}`, 400, "email"},
		{"role smuggled", "POST", "/users", `{"email":"b@example.com","password":"analytical engine","name":"B","role":"admin"}`, 400, "role"},
		{"wrong password", "POST", "/login", `{"email":"ada@example.com","password":"nope nope"}`, 401, ""},
		{"login", "POST", "/login", `{"email":"ada@example.com","password":"analytical engine"}`, 200, ""},
		{"profile", "GET", "/users/" + u.ID, ``, 200, ""},
		{"unknown", "GET", "/users/usr_000000000000000000000000", ``, 404, ""},
		{"malformed", "GET", "/users/whatever", ``, 404, ""},
	}
	for _, tc := range cases {
		w := do(h, tc.method, tc.path, tc.body)
		if w.Code != tc.status {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
		if tc.field != "" && !strings.Contains(w.Body.String(), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %s lacks field %s", tc.name, w.Body, tc.field)
		}
	}
}

// FuzzSignUpAndLogin: no body makes sign-up or login answer 5xx or panic.
func FuzzSignUpAndLogin(f *testing.F) {
	for _, seed := range []string{`{"email":"ada@example.com","password":"analytical engine","name":"Ada"}`, `{"email":"\u0000@x"}`, `{"password":1}`, `}`} {
		f.Add(seed)
	}
	h := handler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/users", "/login"} {
			if w := do(h, "POST", path, body); w.Code >= 500 {
				t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
			}
		}
	})
}

// TestPasswordsNeverLogged: sign-up and logins, good and bad, leave no
// password in the logs.
func TestPasswordsNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := &users.Service{Store: &store{emails: map[string]string{}, records: map[string]users.Record{}}, Keys: keys{},
		BcryptCost: 4, TokenTTL: time.Hour, Now: time.Now}
	h := httpapi.Routes(svc, metrics.New("users"), log, func(context.Context) error { return nil })
	const pw = "zebra-crossing-42"
	for _, c := range []struct{ path, body string }{
		{"/users", `{"email":"ada@example.com","password":"` + pw + `","name":"Ada"}`},
		{"/users", `{"email":"ada@example.com","password":"` + pw + `","name":"Ada"}`},
		{"/users", `{"email":"bad","password":"` + pw + `x","name":""}`},
		{"/login", `{"email":"ada@example.com","password":"` + pw + `"}`},
		{"/login", `{"email":"ada@example.com","password":"` + pw + `y"}`},
		{"/login", `{"email":"ada@example.com","password":` + pw + `}`},
	} {
		do(h, "POST", c.path, c.body)
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged: the test would prove nothing")
	}
	if strings.Contains(logs.String(), pw) {
		t.Fatalf("a password reached the logs:\n%s", logs.String())
	}
}

// TestLoginLimitAnswers: a refused login is a 429 in the error model with
// Retry-After, a password bcrypt would cut a 400 naming the field, and the
// metrics count them as limited and nothing else.
func TestLoginLimitAnswers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	svc := &users.Service{Store: &store{emails: map[string]string{}, records: map[string]users.Record{}}, Keys: keys{},
		BcryptCost: 4, TokenTTL: time.Hour, Now: clock, Limits: users.NewLimits(users.DefaultLoginPolicy(), clock)}
	m := metrics.New("users")
	h := httpapi.Routes(svc, m, slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
	do(h, "POST", "/users", `{"email":"ada@example.com","password":"analytical engine","name":"Ada"}`)
	for range users.DefaultLoginPolicy().FailuresPerSource {
		if w := do(h, "POST", "/login", `{"email":"ada@example.com","password":"wrong password"}`); w.Code != 401 {
			t.Fatalf("wrong password: %d %s", w.Code, w.Body)
		}
	}
	w := do(h, "POST", "/login", `{"email":"ada@example.com","password":"analytical engine"}`)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if w.Code != 429 || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Code != string(apierr.TooManyRequests) {
		t.Fatalf("refused login: %d %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != "60" {
		t.Fatalf("Retry-After %q, want 60", got)
	}
	w = do(h, "POST", "/login", `{"email":"ada@example.com","password":"`+strings.Repeat("p", 73)+`"}`)
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"field":"password"`) {
		t.Fatalf("73-byte password: %d %s", w.Code, w.Body)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{`users_logins_total{outcome="failed",service="users"} 5`, `users_logins_total{outcome="limited",service="users"} 1`, `users_logins_total{outcome="ok",service="users"} 0`} {
		if !strings.Contains(rec.Body.String(), line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}
