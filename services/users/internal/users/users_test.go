package users_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/auth"
	"github.com/daprshop/suite/services/users/internal/users"
)

// memStore is an in-memory users.Store; failPut makes the next Put fail.
// lookups counts UserIDByEmail calls: every login that gets past the limits
// makes one, before its bcrypt comparison.
type memStore struct {
	mu      sync.Mutex
	emails  map[string]string
	records map[string]users.Record
	failPut error
	lookups int
	// beforeLookup, when set, runs before each UserIDByEmail, outside the
	// lock: a test stops a login there, admitted and not yet checked.
	beforeLookup func()
}

var _ users.Store = (*memStore)(nil)

func newStore() *memStore {
	return &memStore{emails: map[string]string{}, records: map[string]users.Record{}}
}

func (s *memStore) ClaimEmail(_ context.Context, email, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.emails[email]; ok {
		return "", apierr.Errorf(apierr.Conflict, "taken")
	}
	s.emails[email] = id
	return "1", nil
}

func (s *memStore) ReleaseEmail(_ context.Context, email, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.emails, email)
	return nil
}

func (s *memStore) UserIDByEmail(_ context.Context, email string) (string, error) {
	if s.beforeLookup != nil {
		s.beforeLookup()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	id, ok := s.emails[email]
	if !ok {
		return "", apierr.Errorf(apierr.NotFound, "none")
	}
	return id, nil
}

func (s *memStore) Put(_ context.Context, r users.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failPut; err != nil {
		s.failPut = nil
		return err
	}
	s.records[r.ID] = r
	return nil
}

func (s *memStore) Get(_ context.Context, id string) (users.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok {
		return r, apierr.Errorf(apierr.NotFound, "no %s", id)
	}
	return r, nil
}

type keys []byte

func (k keys) SigningKey(context.Context) ([]byte, error) { return k, nil }

var key = keys(strings.Repeat("k", 32))

func newService() (*users.Service, *memStore) {
	st := newStore()
	return &users.Service{Store: st, Keys: key, BcryptCost: 4, TokenTTL: time.Hour, Now: time.Now}, st
}

var ada = users.SignUp{Email: "Ada@Example.com", Password: "analytical engine", Name: " Ada Lovelace "}

func TestRegisterAndLogin(t *testing.T) {
	svc, st := newService()
	u, err := svc.Register(context.Background(), ada, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.ID, "usr_") || u.Email != "ada@example.com" || u.Name != "Ada Lovelace" || u.Role != auth.RoleCustomer {
		t.Fatalf("user %+v", u)
	}
	if rec := st.records[u.ID]; rec.PasswordHash == "" || strings.Contains(rec.PasswordHash, "analytical") {
		t.Fatalf("password not hashed: %q", rec.PasswordHash)
	}
	tok, err := svc.Authenticate(context.Background(), users.Login{Email: "ADA@example.com", Password: "analytical engine"}, "10.0.0.1")
	if err != nil || tok.TokenType != "Bearer" || tok.User.ID != u.ID {
		t.Fatalf("login %+v %v", tok, err)
	}
	c, err := auth.Verify(key, tok.Token, time.Now())
	if err != nil || c.UserID != u.ID || c.Role != auth.RoleCustomer || !c.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("claims %+v %v", c, err)
	}
	got, err := svc.Get(context.Background(), u.ID)
	if err != nil || got != u {
		t.Fatalf("get %+v %v", got, err)
	}
}

func TestRegisterDuplicateAndRollback(t *testing.T) {
	svc, st := newService()
	if _, err := svc.Register(context.Background(), ada, ""); err != nil {
		t.Fatal(err)
	}
	again := ada
	again.Email = "ada@example.com"
	if _, err := svc.Register(context.Background(), again, ""); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("duplicate: %v", err)
	}
	bob := users.SignUp{Email: "bob@example.com", Password: "secret password", Name: "Bob"}
	st.failPut = apierr.Errorf(apierr.Unavailable, "store down")
	if _, err := svc.Register(context.Background(), bob, ""); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("failed put: %v", err)
	}
	if _, err := svc.Register(context.Background(), bob, ""); err != nil {
		t.Fatalf("email not released after a failed sign-up: %v", err)
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	svc, _ := newService()
	_, _ = svc.Register(context.Background(), ada, "")
	var msgs []string
	for _, l := range []users.Login{
		{Email: "ada@example.com", Password: "wrong password"},
		{Email: "nobody@example.com", Password: "analytical engine"},
		{Email: "not an email", Password: "x"},
	} {
		_, err := svc.Authenticate(context.Background(), l, "10.0.0.1")
		var e *apierr.Error
		if !errors.As(err, &e) || e.Code != apierr.Unauthenticated {
			t.Fatalf("%+v: %v", l, err)
		}
		msgs = append(msgs, e.Message)
	}
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
		t.Fatalf("messages differ: %q", msgs)
	}
}

func TestValidate(t *testing.T) {
	err := users.SignUp{Email: "Ada <ada@example.com>", Password: "short", Name: "  "}.Validate()
	var e *apierr.Error
	if !errors.As(err, &e) || len(e.Fields) != 3 {
		t.Fatalf("err = %v", err)
	}
	for i, f := range []string{"email", "password", "name"} {
		if e.Fields[i].Field != f {
			t.Errorf("field %d = %s", i, e.Fields[i].Field)
		}
	}
	long := users.SignUp{Email: "a@example.com", Password: strings.Repeat("p", 73), Name: "A"}
	if err := long.Validate(); err == nil {
		t.Fatal("73-byte password accepted (bcrypt ignores bytes past 72)")
	}
}

func TestGetMalformedIDIsNotFound(t *testing.T) {
	svc, _ := newService()
	for _, id := range []string{"", "usr_x", "../x", "usr_000000000000000000000000"} {
		if _, err := svc.Get(context.Background(), id); apierr.CodeOf(err) != apierr.NotFound {
			t.Errorf("%q: %v", id, err)
		}
	}
}

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService()
	changed, err := svc.EnsureAdmin(ctx, "admin@daprshop.local", "admin password")
	if err != nil || !changed {
		t.Fatalf("first: %v %v", changed, err)
	}
	if changed, err = svc.EnsureAdmin(ctx, "admin@daprshop.local", "admin password"); err != nil || changed {
		t.Fatalf("second: %v %v", changed, err)
	}
	tok, err := svc.Authenticate(ctx, users.Login{Email: "admin@daprshop.local", Password: "admin password"}, "10.0.0.1")
	if err != nil || tok.User.Role != auth.RoleAdmin {
		t.Fatalf("admin login %+v %v", tok.User, err)
	}
	// A new password in the secret store replaces the old one.
	if changed, err = svc.EnsureAdmin(ctx, "admin@daprshop.local", "rotated password"); err != nil || !changed {
		t.Fatalf("rotation: %v %v", changed, err)
	}
	if _, err := svc.Authenticate(ctx, users.Login{Email: "admin@daprshop.local", Password: "admin password"}, "10.0.0.1"); err == nil {
		t.Fatal("old admin password still accepted")
	}
	if _, err := svc.Authenticate(ctx, users.Login{Email: "admin@daprshop.local", Password: "rotated password"}, "10.0.0.1"); err != nil {
		t.Fatalf("new admin password: %v", err)
	}
	if _, err := svc.EnsureAdmin(ctx, "admin@daprshop.local", "short"); err == nil {
		t.Fatal("short admin password accepted")
	}
	// A customer's account is never promoted.
	_, _ = svc.Register(ctx, ada, "")
	if _, err := svc.EnsureAdmin(ctx, "ada@example.com", "whatever password"); err == nil {
		t.Fatal("customer promoted to admin")
	}
}
