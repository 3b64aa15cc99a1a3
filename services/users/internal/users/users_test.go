package users_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/auth"
	"github.com/daprshop/suite/services/users/internal/users"
)

// memStore is an in-memory users.Store; failPut makes the next Put fail.
type memStore struct {
	mu      sync.Mutex
	emails  map[string]string
	records map[string]users.Record
	failPut error
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
	s.mu.Lock()
	defer s.mu.Unlock()
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
	u, err := svc.Register(context.Background(), ada)
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
	if _, err := svc.Register(context.Background(), ada); err != nil {
		t.Fatal(err)
	}
	again := ada
	again.Email = "ada@example.com"
	if _, err := svc.Register(context.Background(), again); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("duplicate: %v", err)
	}
	bob := users.SignUp{Email: "bob@example.com", Password: "secret password", Name: "Bob"}
	st.failPut = apierr.Errorf(apierr.Unavailable, "store down")
	if _, err := svc.Register(context.Background(), bob); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("failed put: %v", err)
	}
	if _, err := svc.Register(context.Background(), bob); err != nil {
		t.Fatalf("email not released after a failed sign-up: %v", err)
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	svc, _ := newService()
	_, _ = svc.Register(context.Background(), ada)
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
	_, _ = svc.Register(ctx, ada)
	if _, err := svc.EnsureAdmin(ctx, "ada@example.com", "whatever password"); err == nil {
		t.Fatal("customer promoted to admin")
	}
}

func TestLoginLimits(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	svc, _ := newService()
	svc.FailuresPerAccount = &users.Limiter{Max: 3, Window: 15 * time.Minute, Now: clock}
	svc.AttemptsPerAddress = &users.Limiter{Max: 10, Window: time.Minute, Now: clock}
	_, _ = svc.Register(ctx, ada)
	wrong := users.Login{Email: "ada@example.com", Password: "wrong password"}
	right := users.Login{Email: "ada@example.com", Password: "analytical engine"}
	for i := range 3 {
		if _, err := svc.Authenticate(ctx, wrong, "10.0.0.1"); apierr.CodeOf(err) != apierr.Unauthenticated {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// The account is locked for everyone, even with the right password.
	_, err := svc.Authenticate(ctx, right, "10.0.0.2")
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.TooManyRequests || e.RetryAfter <= 0 || e.RetryAfter > 15*time.Minute {
		t.Fatalf("locked account: %v", err)
	}
	now = now.Add(16 * time.Minute)
	if _, err := svc.Authenticate(ctx, right, "10.0.0.2"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// Per address: the 11th attempt within a minute is refused, whatever the account.
	for i := range 10 {
		if _, err := svc.Authenticate(ctx, users.Login{Email: fmt.Sprintf("x%d@example.com", i), Password: "whatever pw"}, "10.0.0.9"); apierr.CodeOf(err) != apierr.Unauthenticated {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := svc.Authenticate(ctx, right, "10.0.0.9"); apierr.CodeOf(err) != apierr.TooManyRequests {
		t.Fatalf("11th attempt from one address: %v", err)
	}
	if _, err := svc.Authenticate(ctx, right, "10.0.0.3"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestLimiterForgetsEndedWindows(t *testing.T) {
	now := time.Unix(0, 0)
	l := &users.Limiter{Max: 1, Window: time.Second, Now: func() time.Time { return now }}
	if ok, _ := l.Take("a"); !ok {
		t.Fatal("the first event refused")
	}
	if blocked, wait := l.Blocked("a"); !blocked || wait != time.Second {
		t.Fatalf("blocked %v wait %v", blocked, wait)
	}
	now = now.Add(time.Second)
	if blocked, _ := l.Blocked("a"); blocked {
		t.Fatal("still blocked after the window")
	}
}

func TestParallelGuessesStopAtTheAccountLimit(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService()
	svc.FailuresPerAccount = &users.Limiter{Max: 5, Window: 15 * time.Minute, Now: time.Now}
	_, _ = svc.Register(ctx, ada)
	var (
		wg           sync.WaitGroup
		mu           sync.Mutex
		tried, shown int
	)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.Authenticate(ctx, users.Login{Email: "ada@example.com", Password: fmt.Sprint("guess ", i)}, fmt.Sprint("10.0.1.", i))
			mu.Lock()
			defer mu.Unlock()
			switch apierr.CodeOf(err) {
			case apierr.Unauthenticated:
				tried++
			case apierr.TooManyRequests:
				shown++
			default:
				t.Errorf("guess %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if tried != 5 || shown != 25 {
		t.Fatalf("%d guesses compared, %d refused: want 5 and 25", tried, shown)
	}
}

func TestLimiterHoldsAtMostMaxKeys(t *testing.T) {
	now := time.Unix(0, 0)
	l := &users.Limiter{Max: 1, Window: time.Minute, MaxKeys: 3, Now: func() time.Time { return now }}
	for _, k := range []string{"a", "b", "c"} {
		if ok, _ := l.Take(k); !ok {
			t.Fatalf("%s refused with room left", k)
		}
	}
	// Full: a new key goes through, uncounted, however often.
	for range 3 {
		if ok, _ := l.Take("d"); !ok {
			t.Fatal("a new key refused because the limiter is full: a spray would lock honest users out")
		}
	}
	if blocked, _ := l.Blocked("d"); blocked {
		t.Fatal("an uncounted key is blocked")
	}
	if ok, _ := l.Take("a"); ok {
		t.Fatal("a known key's limit no longer holds")
	}
	now = now.Add(time.Minute)
	if ok, _ := l.Take("d"); !ok {
		t.Fatal("refused after every window ended")
	}
	if blocked, _ := l.Blocked("d"); !blocked {
		t.Fatal("with room again, d is not counted")
	}
}

func TestAddressKeyGroupsAnIPv6Network(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"},
	} {
		if users.AddressKey(c.a) != users.AddressKey(c.b) {
			t.Errorf("%s and %s are one /64: %s vs %s", c.a, c.b, users.AddressKey(c.a), users.AddressKey(c.b))
		}
	}
	if users.AddressKey("2001:db8:1:2::1") == users.AddressKey("2001:db8:1:3::1") {
		t.Error("two /64 networks share a key")
	}
	if k := users.AddressKey("10.0.0.1"); k != "10.0.0.1" {
		t.Errorf("IPv4 key %q", k)
	}
}

func TestParallelRightPasswordsAreNotFailures(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService()
	svc.FailuresPerAccount = &users.Limiter{Max: 2, Window: 15 * time.Minute, Now: time.Now}
	_, _ = svc.Register(ctx, ada)
	right := users.Login{Email: "ada@example.com", Password: "analytical engine"}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.Authenticate(ctx, right, fmt.Sprint("10.0.2.", i))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a right password refused among parallel logins: %v", err)
		}
	}
}
