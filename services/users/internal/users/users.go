// Package users is the account domain: sign-up with a hashed password, login
// that issues a signed bearer token, and profiles. Passwords and their hashes
// never leave this package's store records.
package users

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/auth"
	"github.com/daprshop/suite/lib/id"
)

// User is an account as clients see it.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Record is an account as it is stored.
type Record struct {
	User
	PasswordHash string `json:"password_hash"`
}

// SignUp is a request for a new account.
type SignUp struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// Login is a request for a token.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Token is a login's answer.
type Token struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// Password lengths, in bytes. bcrypt ignores every byte past the 72nd, so a
// longer password is refused rather than silently cut: at sign-up, and at
// login, where it could otherwise match by its first 72 bytes alone.
const (
	minPassword = 8
	maxPassword = 72
)

// normalEmail returns the canonical form of a bare address, or "": the one
// place emails are normalised (surrounding space trimmed, lower case), for
// sign-up, login and the admin alike, so that " ADMIN@x.com" and
// "admin@x.com" are one account.
func normalEmail(s string) string {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > 254 || !strings.Contains(s[strings.LastIndexByte(s, '@'):], ".") {
		return ""
	}
	return strings.ToLower(s)
}

// printableASCII reports whether s, once trimmed, is printable ASCII. New
// addresses must be: an invisible character (a zero-width space, a soft
// hyphen) or a look-alike letter (fullwidth, Cyrillic) would otherwise make
// an account that reads as another's ("admin\u200b@..." next to "admin@...").
func printableASCII(s string) bool {
	for _, r := range strings.TrimSpace(s) {
		if r < ' ' || r > '~' {
			return false
		}
	}
	return true
}

// Validate reports every invalid field of r at once.
func (r SignUp) Validate() error {
	var fields apierr.FieldErrors
	switch {
	case normalEmail(r.Email) == "":
		fields.Add("email", "must be an email address such as ada@example.com")
	case !printableASCII(r.Email):
		fields.Add("email", "must be printable ASCII (no invisible or look-alike characters)")
	}
	if n := len(r.Password); n < minPassword || n > maxPassword {
		fields.Add("password", "must be 8 to 72 bytes long")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(r.Name)); n < 1 || n > 100 {
		fields.Add("name", "must be 1 to 100 characters")
	}
	return fields.Err("sign-up")
}

// Store keeps accounts. ClaimEmail reserves an address for a user ID (insert
// only: apierr Conflict when taken) and returns the claim's ETag, which
// ReleaseEmail needs.
type Store interface {
	ClaimEmail(ctx context.Context, email, userID string) (etag string, err error)
	ReleaseEmail(ctx context.Context, email, etag string) error
	UserIDByEmail(ctx context.Context, email string) (string, error)
	Put(ctx context.Context, r Record) error
	Get(ctx context.Context, id string) (Record, error)
}

// Keys yields the token signing key.
type Keys interface {
	SigningKey(ctx context.Context) ([]byte, error)
}

// Service manages accounts.
type Service struct {
	Store      Store
	Keys       Keys
	BcryptCost int
	TokenTTL   time.Duration
	Now        func() time.Time
	// Limits decides which logins get their password checked; nil: all.
	Limits *Limits

	dummyOnce sync.Once
	dummy     []byte
}

// Register creates a customer account for a client at address addr. Sign-ups
// from one address are limited like its logins (a bucket of their own, of the
// same size; see Limits), before bcrypt: each costs a hash, and each answer
// says whether an email is taken.
func (s *Service) Register(ctx context.Context, r SignUp, addr string) (User, error) {
	if err := r.Validate(); err != nil {
		return User{}, err
	}
	if s.Limits != nil {
		if err := s.Limits.takeAddress(ctx, 'u', AddressKey(addr)); err != nil {
			return User{}, err
		}
	}
	return s.create(ctx, normalEmail(r.Email), r.Password, strings.TrimSpace(r.Name), auth.RoleCustomer)
}

// create stores a new account: the email claim first (so two sign-ups with one
// address cannot both win), then the record, giving the claim back if the
// record cannot be written.
func (s *Service) create(ctx context.Context, email, password, name, role string) (User, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.BcryptCost)
	if err != nil {
		return User{}, err
	}
	u := User{ID: id.User.New(), Email: email, Name: name, Role: role, CreatedAt: s.Now().UTC()}
	etag, err := s.Store.ClaimEmail(ctx, email, u.ID)
	if err != nil {
		if apierr.CodeOf(err) == apierr.Conflict {
			return User{}, apierr.Errorf(apierr.Conflict, "an account with this email exists")
		}
		return User{}, err
	}
	if err := s.Store.Put(ctx, Record{User: u, PasswordHash: string(hash)}); err != nil {
		return User{}, errors.Join(err, s.Store.ReleaseEmail(ctx, email, etag))
	}
	return u, nil
}

// dummyHash is compared against when the email is unknown, so a login takes
// as long whether or not the account exists. bcrypt's time follows the cost
// stored in the hash: it is made once, at the service's cost.
func (s *Service) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a real password"), s.BcryptCost)
	})
	return s.dummy
}

// Authenticate checks a login from client address addr and issues a token.
// Limits may refuse it first (see Limits), before the password is looked at.
func (s *Service) Authenticate(ctx context.Context, l Login, addr string) (Token, error) {
	// bcrypt looks at 72 bytes only: a longer password would be checked by
	// its first 72, and a sign-up never sets one (see SignUp.Validate).
	if len(l.Password) > maxPassword {
		var fields apierr.FieldErrors
		fields.Add("password", "must be at most 72 bytes long")
		return Token{}, fields.Err("login")
	}
	email := normalEmail(l.Email)
	if s.Limits == nil {
		return s.authenticate(ctx, email, l.Password)
	}
	a, err := s.Limits.admit(ctx, email, addr)
	if err != nil {
		return Token{}, err
	}
	tok, err := s.authenticate(ctx, email, l.Password)
	switch {
	case err == nil:
		if err := a.succeeded(ctx); err != nil {
			return Token{}, err
		}
	case apierr.CodeOf(err) == apierr.Unauthenticated:
		if err := a.failed(ctx); err != nil {
			return Token{}, err
		}
	default:
		a.release(ctx) // the store failed: nothing was learnt about the password
	}
	return tok, err
}

func (s *Service) authenticate(ctx context.Context, email, password string) (Token, error) {
	denied := apierr.Errorf(apierr.Unauthenticated, "wrong email or password")
	var rec Record
	id, err := "", error(nil)
	if email != "" {
		id, err = s.Store.UserIDByEmail(ctx, email)
	}
	switch {
	case err != nil && apierr.CodeOf(err) != apierr.NotFound:
		return Token{}, err
	case err == nil && id != "":
		if rec, err = s.Store.Get(ctx, id); err != nil && apierr.CodeOf(err) != apierr.NotFound {
			return Token{}, err
		}
	}
	if rec.ID == "" {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return Token{}, denied
	}
	if bcrypt.CompareHashAndPassword([]byte(rec.PasswordHash), []byte(password)) != nil {
		return Token{}, denied
	}
	key, err := s.Keys.SigningKey(ctx)
	if err != nil {
		return Token{}, err
	}
	tok, exp, err := auth.Issue(key, auth.Claims{UserID: rec.ID, Email: rec.Email, Role: rec.Role}, s.Now(), s.TokenTTL)
	if err != nil {
		return Token{}, apierr.Unavailablef(err, "token signing unavailable")
	}
	return Token{Token: tok, TokenType: "Bearer", ExpiresAt: exp, User: rec.User}, nil
}

// Get returns a user's profile.
func (s *Service) Get(ctx context.Context, userID string) (User, error) {
	if !id.User.Valid(userID) {
		return User{}, apierr.Errorf(apierr.NotFound, "no such user")
	}
	r, err := s.Store.Get(ctx, userID)
	return r.User, err
}

// EnsureAdmin makes the secret store the source of truth for the admin
// account: it creates the account email with password, or, if it exists,
// resets its password to password. An account of that email that is not an
// admin is left alone (an error). It reports whether it changed anything.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (bool, error) {
	email = normalEmail(email)
	if email == "" || len(password) < minPassword || len(password) > maxPassword {
		return false, errors.New("admin email or password invalid")
	}
	id, err := s.Store.UserIDByEmail(ctx, email)
	if apierr.CodeOf(err) == apierr.NotFound {
		_, err := s.create(ctx, email, password, "Administrator", auth.RoleAdmin)
		if apierr.CodeOf(err) == apierr.Conflict {
			return false, nil // another replica was faster
		}
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	rec, err := s.Store.Get(ctx, id)
	if err != nil {
		return false, err
	}
	if rec.Role != auth.RoleAdmin {
		return false, fmt.Errorf("%s belongs to a %s account; not making it an admin", email, rec.Role)
	}
	if bcrypt.CompareHashAndPassword([]byte(rec.PasswordHash), []byte(password)) == nil {
		return false, nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.BcryptCost)
	if err != nil {
		return false, err
	}
	rec.PasswordHash = string(hash)
	return true, s.Store.Put(ctx, rec)
}
