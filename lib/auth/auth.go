// Package auth is the suite's bearer token: a JWT (HS256) that users issues
// and the gateway verifies, both with the signing key from the secret store.
package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Roles a user can have.
const (
	RoleCustomer = "customer"
	RoleAdmin    = "admin"
)

const (
	issuer   = "daprshop-users"
	audience = "daprshop"
)

// MinKeyBytes is the shortest signing key accepted (HS256 wants 256 bits).
const MinKeyBytes = 32

// Claims are what a token says about its holder.
type Claims struct {
	UserID string
	Email  string
	Role   string
	// ExpiresAt is when the token stops being accepted.
	ExpiresAt time.Time
}

type jwtClaims struct {
	Email string `json:"email"`
	Role  string `json:"role"`
	jwt.RegisteredClaims
}

// Issue signs a token for c valid for ttl from now.
func Issue(key []byte, c Claims, now time.Time, ttl time.Duration) (string, time.Time, error) {
	if len(key) < MinKeyBytes {
		return "", time.Time{}, fmt.Errorf("signing key has %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	exp := now.Add(ttl).UTC().Truncate(time.Second)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		Email: c.Email,
		Role:  c.Role,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   c.UserID,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        hex.EncodeToString(jti[:]),
		},
	})
	s, err := tok.SignedString(key)
	return s, exp, err
}

// ErrInvalidToken is returned for any token that is not accepted: malformed,
// badly signed, expired, or for another audience. Callers answer 401.
var ErrInvalidToken = errors.New("invalid or expired token")

// Verify checks token and returns its claims.
func Verify(key []byte, token string, now time.Time) (Claims, error) {
	var c jwtClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return Claims{}, errors.Join(ErrInvalidToken, err)
	}
	if c.Subject == "" || (c.Role != RoleCustomer && c.Role != RoleAdmin) {
		return Claims{}, fmt.Errorf("%w: missing subject or unknown role", ErrInvalidToken)
	}
	return Claims{UserID: c.Subject, Email: c.Email, Role: c.Role, ExpiresAt: c.ExpiresAt.Time}, nil
}
