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
	"github.com/daprshop/suite/services/users/internal/users"
)

// These tests run long attacks on a fake clock: no sleeps, and nothing
// depends on how fast the machine is.

// clock is a fake clock; tests move it by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

// tally counts the answers to a series of logins: checked (the password was
// compared and was wrong), refused (429) and the longest Retry-After.
type tally struct {
	ok, checked, refused int
	longest              time.Duration
}

func (tl *tally) add(t *testing.T, err error) {
	t.Helper()
	var e *apierr.Error
	switch {
	case err == nil:
		tl.ok++
	case apierr.CodeOf(err) == apierr.Unauthenticated:
		tl.checked++
	case errors.As(err, &e) && e.Code == apierr.TooManyRequests:
		if e.RetryAfter <= 0 {
			t.Fatalf("429 without Retry-After: %v", err)
		}
		tl.refused++
		tl.longest = max(tl.longest, e.RetryAfter)
	default:
		t.Fatalf("unexpected answer: %v", err)
	}
}

const (
	adminEmail    = "admin@daprshop.local"
	adminPassword = "admin password"
)

// victim is an account under attack.
type victim struct{ name, email, password string }

var victims = []victim{{"customer", "ada@example.com", "analytical engine"}, {"admin", adminEmail, adminPassword}}

// accounts signs ada and the admin up.
func accounts(t *testing.T, svc *users.Service) {
	t.Helper()
	if _, err := svc.Register(context.Background(), ada, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EnsureAdmin(context.Background(), adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
}

func login(svc *users.Service, email, password, addr string) error {
	_, err := svc.Authenticate(context.Background(), users.Login{Email: email, Password: password}, addr)
	return err
}

// freshAddr is the n-th of many distinct addresses (IPv4, so one each).
func freshAddr(n int) string { return fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255) }

// newPlace is the n-th address the owner has never logged in from (its own
// IPv6 /64 each).
func newPlace(n int) string { return fmt.Sprintf("2001:db8:%x::1", n) }

// An attacker guessing from one address all day never keeps the owner out:
// from an address she has never used, every login of hers succeeds. The
// attacker's password checks stay within the documented bound: 5 free
// failures, then waits of 1, 2, 4, 8, 16, 32 minutes (6 checks in the first
// 63 minutes), then one an hour (22 more by minute 1,383; the next would be
// at 1,443): 33 in 24 hours.
func TestOneAddressCannotKeepTheOwnerOut(t *testing.T) {
	for _, v := range victims {
		t.Run(v.name, func(t *testing.T) {
			c := newClock()
			svc, st, _ := limitedService(c.now, 0)
			accounts(t, svc)
			before := st.lookups
			var attacker tally
			owner := 0
			for sec := range 24 * 3600 {
				attacker.add(t, login(svc, v.email, "guess "+fmt.Sprint(sec), "203.0.113.7"))
				if sec%600 == 0 {
					if err := login(svc, v.email, v.password, newPlace(sec)); err != nil {
						t.Fatalf("after %v of attack, the owner from a new address: %v", time.Duration(sec)*time.Second, err)
					}
					owner++
				}
				c.t = c.t.Add(time.Second)
			}
			if attacker.checked != 33 {
				t.Errorf("the attacker's passwords were checked %d times in 24 h, want 33", attacker.checked)
			}
			if attacker.longest > policy.SourceWaitMax {
				t.Errorf("the attacker was told to wait %v, more than the cap %v", attacker.longest, policy.SourceWaitMax)
			}
			// Refused attempts never reach the store (nor bcrypt after it).
			if got := st.lookups - before; got != attacker.checked+owner {
				t.Errorf("%d store lookups for %d checked guesses and %d owner logins", got, attacker.checked, owner)
			}
		})
	}
}

// An attacker with a new address for every guess, one guess a second all
// day, gets at most FailuresPerAccount + 24 h / AccountInterval password
// checks (20 + 2,880): the account's budget slows it. The budget never
// locks: the attacker keeps getting a check every interval, the owner at an
// address she used before is never refused, and at a new address she is at
// worst told to wait one interval. Memory stays within the stores' bound.
func TestManyAddressesStayBoundedAndTheOwnerGetsIn(t *testing.T) {
	for _, v := range victims {
		t.Run(v.name, func(t *testing.T) {
			c := newClock()
			const maxKeys = 1000
			svc, st, sizes := limitedService(c.now, maxKeys)
			accounts(t, svc)
			const home = "198.51.100.1"
			if err := login(svc, v.email, v.password, home); err != nil {
				t.Fatal(err)
			}
			before := st.lookups
			var attacker, away tally
			for sec := range 24 * 3600 {
				attacker.add(t, login(svc, v.email, "guess "+fmt.Sprint(sec), freshAddr(sec)))
				if sec%600 == 300 {
					if err := login(svc, v.email, v.password, home); err != nil {
						t.Fatalf("after %v of attack, the owner at home: %v", time.Duration(sec)*time.Second, err)
					}
					away.add(t, login(svc, v.email, v.password, newPlace(sec)))
				}
				c.t = c.t.Add(time.Second)
			}
			day := int(24 * time.Hour / policy.AccountInterval)
			if bound := policy.FailuresPerAccount + day; attacker.checked > bound {
				t.Errorf("the attackers' passwords were checked %d times in 24 h, bound %d", attacker.checked, bound)
			}
			if attacker.checked < day {
				t.Errorf("the attackers got %d checks in 24 h, fewer than one per %v: the account is locked, not slowed", attacker.checked, policy.AccountInterval)
			}
			if away.longest > policy.AccountInterval {
				t.Errorf("the owner at a new address was told to wait %v, more than %v", away.longest, policy.AccountInterval)
			}
			if got := st.lookups - before; got != attacker.checked+24*6+away.ok {
				t.Errorf("%d store lookups for %d checked guesses and %d owner logins", got, attacker.checked, 24*6+away.ok)
			}
			for i, n := range sizes() {
				if n > maxKeys {
					t.Errorf("store %d holds %d entries, bound %d", i, n, maxKeys)
				}
			}
		})
	}
}

// A spray of made-up emails from made-up addresses fills the stores but
// neither grows them past their bound nor lets anyone off: the locked
// attacker stays locked, and an account first attacked after the spray is
// still held to its budget.
func TestSprayNeitherGrowsMemoryNorFreesAnAttacker(t *testing.T) {
	c := newClock()
	const maxKeys = 200
	svc, _, sizes := limitedService(c.now, maxKeys)
	accounts(t, svc)
	const attacker = "203.0.113.7"
	for range policy.FailuresPerSource {
		if err := login(svc, "ada@example.com", "wrong password", attacker); apierr.CodeOf(err) != apierr.Unauthenticated {
			t.Fatal(err)
		}
	}
	for i := range 5 * maxKeys {
		if err := login(svc, fmt.Sprintf("nobody%d@example.com", i), "wrong password", freshAddr(i)); apierr.CodeOf(err) != apierr.Unauthenticated {
			t.Fatalf("spray %d: %v", i, err)
		}
	}
	for i, n := range sizes() {
		if n > maxKeys {
			t.Errorf("store %d holds %d entries after the spray, bound %d", i, n, maxKeys)
		}
	}
	if err := login(svc, "ada@example.com", "wrong password", attacker); apierr.CodeOf(err) != apierr.TooManyRequests {
		t.Errorf("the spray let the locked attacker guess again: %v", err)
	}
	// The admin's account, not attacked before the spray, from new addresses.
	var guesses tally
	for i := range 3 * policy.FailuresPerAccount {
		guesses.add(t, login(svc, adminEmail, "wrong password", freshAddr(1<<20+i)))
	}
	if guesses.checked != policy.FailuresPerAccount {
		t.Errorf("after the spray, %d guesses on a new target were checked at once, want %d", guesses.checked, policy.FailuresPerAccount)
	}
}

// A source's waits grow with each failure past the free ones and are
// refused before the password is looked at, the right one included; a
// success from the source resets it.
func TestSourceWaitsGrowAndASuccessResets(t *testing.T) {
	c := newClock()
	svc, st, _ := limitedService(c.now, 0)
	accounts(t, svc)
	const addr = "203.0.113.7"
	wrong := func() error { return login(svc, "ada@example.com", "wrong password", addr) }
	right := func() error { return login(svc, "ada@example.com", "analytical engine", addr) }
	expect := func(err error, code apierr.Code, wait time.Duration) {
		t.Helper()
		var e *apierr.Error
		if code == "" && err == nil {
			return
		}
		if !errors.As(err, &e) || e.Code != code || e.RetryAfter != wait {
			t.Fatalf("got %v, want %q with Retry-After %v", err, code, wait)
		}
	}
	for range policy.FailuresPerSource - 1 {
		expect(wrong(), apierr.Unauthenticated, 0)
	}
	expect(right(), "", 0)
	for range policy.FailuresPerSource {
		expect(wrong(), apierr.Unauthenticated, 0) // the success reset the count
	}
	lookups := st.lookups
	expect(right(), apierr.TooManyRequests, policy.SourceWait)
	if st.lookups != lookups {
		t.Fatal("a refused login reached the store")
	}
	c.t = c.t.Add(policy.SourceWait)
	expect(wrong(), apierr.Unauthenticated, 0)
	expect(wrong(), apierr.TooManyRequests, 2*policy.SourceWait)
	c.t = c.t.Add(2 * policy.SourceWait)
	expect(right(), "", 0)
	for range policy.FailuresPerSource {
		expect(wrong(), apierr.Unauthenticated, 0)
	}
}

// One address gets AttemptsPerAddress logins in a burst, whatever the
// accounts, then one every minute/AttemptsPerAddress; an IPv6 client's whole
// /64 counts as one address.
func TestAddressLimit(t *testing.T) {
	for _, addrs := range [][2]string{{"203.0.113.7", "203.0.113.7"}, {"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"}} {
		c := newClock()
		svc, _, _ := limitedService(c.now, 0)
		accounts(t, svc)
		for i := range policy.AttemptsPerAddress {
			if err := login(svc, fmt.Sprintf("x%d@example.com", i), "whatever pw", addrs[i%2]); apierr.CodeOf(err) != apierr.Unauthenticated {
				t.Fatalf("%s: attempt %d: %v", addrs[0], i, err)
			}
		}
		if err := login(svc, "ada@example.com", "analytical engine", addrs[1]); apierr.CodeOf(err) != apierr.TooManyRequests {
			t.Fatalf("%s: attempt past the burst: %v", addrs[0], err)
		}
		if err := login(svc, "ada@example.com", "analytical engine", "198.51.100.1"); err != nil {
			t.Fatalf("another address: %v", err)
		}
		c.t = c.t.Add(time.Minute / time.Duration(policy.AttemptsPerAddress))
		if err := login(svc, "ada@example.com", "analytical engine", addrs[0]); err != nil {
			t.Fatalf("%s: a token later: %v", addrs[0], err)
		}
	}
}

// TestSignUpsCountAgainstTheAddress: sign-ups from one address are limited
// like its logins (each costs a bcrypt hash and tells whether an email is
// taken), in a bucket of their own, so a client that signs up and logs in
// gets both; other addresses are unaffected.
func TestSignUpsCountAgainstTheAddress(t *testing.T) {
	c := newClock()
	svc, _, _ := limitedService(c.now, 0)
	const addr = "203.0.113.9"
	for i := range policy.AttemptsPerAddress {
		su := users.SignUp{Email: fmt.Sprintf("spray%d@example.com", i), Password: "long enough pw", Name: "S"}
		if _, err := svc.Register(context.Background(), su, addr); err != nil {
			t.Fatalf("sign-up %d: %v", i, err)
		}
	}
	past := users.SignUp{Email: "one-more@example.com", Password: "long enough pw", Name: "S"}
	if _, err := svc.Register(context.Background(), past, addr); apierr.CodeOf(err) != apierr.TooManyRequests {
		t.Fatalf("sign-up past the burst: %v", err)
	}
	if err := login(svc, "spray0@example.com", "long enough pw", addr); err != nil {
		t.Fatalf("a login from the address that used its sign-ups: %v", err)
	}
	if _, err := svc.Register(context.Background(), past, "198.51.100.1"); err != nil {
		t.Fatalf("a sign-up from another address: %v", err)
	}
}

// Parallel guesses stop at the limits: the logins of one account run one at
// a time, each seeing the failures before it.
func TestParallelGuessesStopAtTheLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(i int) string
		want int
	}{
		{"one address", func(int) string { return "203.0.113.7" }, policy.FailuresPerSource},
		{"many addresses", freshAddr, policy.FailuresPerAccount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			svc, _, _ := limitedService(c.now, 0)
			accounts(t, svc)
			n := 2 * policy.FailuresPerAccount
			got := parallelGuesses(t, []*users.Service{svc}, n, tc.addr)
			if got.checked != tc.want || got.refused != n-tc.want {
				t.Fatalf("%d guesses checked, %d refused: want %d and %d", got.checked, got.refused, tc.want, n-tc.want)
			}
		})
	}
}

// parallelGuesses sends n wrong-password logins for ada@example.com at
// once, the i-th to svcs[i%len(svcs)] from addr(i), and tallies the answers.
func parallelGuesses(t *testing.T, svcs []*users.Service, n int, addr func(int) string) tally {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := login(svcs[i%len(svcs)], "ada@example.com", fmt.Sprint("guess ", i), addr(i))
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
		}()
	}
	wg.Wait()
	var got tally
	for _, err := range errs {
		got.add(t, err)
	}
	return got
}

// Right passwords never count as failures, however many arrive at once.
func TestParallelRightPasswordsAreNotFailures(t *testing.T) {
	c := newClock()
	svc, _, _ := limitedService(c.now, 0)
	accounts(t, svc)
	var wg sync.WaitGroup
	errs := make(chan error, 3*policy.FailuresPerSource)
	for range cap(errs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- login(svc, "ada@example.com", "analytical engine", "198.51.100.1")
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

func TestAddressKeyGroupsAnIPv6Network(t *testing.T) {
	if users.AddressKey("2001:db8:1:2::1") != users.AddressKey("2001:db8:1:2:ffff::9") {
		t.Error("one /64 has two keys")
	}
	if users.AddressKey("2001:db8:1:2::1") == users.AddressKey("2001:db8:1:3::1") {
		t.Error("two /64 networks share a key")
	}
	if k := users.AddressKey("10.0.0.1"); k != "10.0.0.1" {
		t.Errorf("IPv4 key %q", k)
	}
}

// One account per address, whatever its case or surrounding space; new
// addresses with invisible or look-alike characters are refused, so no
// account reads as another's.
func TestOneAccountPerEmailWhateverItsSpelling(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService()
	if _, err := svc.EnsureAdmin(ctx, " Admin@DaprShop.local ", adminPassword); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{adminEmail, "ADMIN@daprshop.local", " admin@DAPRSHOP.LOCAL\t", "\u00a0Admin@daprshop.local"} {
		_, err := svc.Register(ctx, users.SignUp{Email: email, Password: "another password", Name: "Mallory"}, "")
		if apierr.CodeOf(err) != apierr.Conflict {
			t.Errorf("sign-up as %q next to %q: %v", email, adminEmail, err)
		}
	}
	for _, email := range []string{
		"admin\u200b@daprshop.local",                    // zero-width space
		"ad\u00admin@daprshop.local",                    // soft hyphen
		"\uff41\uff44\uff4d\uff49\uff4e@daprshop.local", // fullwidth
		"\u0430dmin@daprshop.local",                     // Cyrillic a
	} {
		_, err := svc.Register(ctx, users.SignUp{Email: email, Password: "another password", Name: "Mallory"}, "")
		var e *apierr.Error
		if !errors.As(err, &e) || e.Code != apierr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "email" {
			t.Errorf("sign-up as %q: %v", email, err)
		}
	}
	tok, err := svc.Authenticate(ctx, users.Login{Email: " ADMIN@daprshop.LOCAL ", Password: adminPassword}, "10.0.0.1")
	if err != nil || tok.User.Email != adminEmail {
		t.Fatalf("admin login by another spelling: %+v %v", tok.User, err)
	}
}

// bcrypt reads 72 bytes of a password: a login with more is refused (400)
// before any lookup, rather than matching on its first 72.
func TestLoginRefusesPasswordsBcryptWouldCut(t *testing.T) {
	ctx := context.Background()
	svc, st := newService()
	pw := strings.Repeat("p", 72)
	if _, err := svc.Register(ctx, users.SignUp{Email: "long@example.com", Password: pw, Name: "Long"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, users.Login{Email: "long@example.com", Password: pw}, "10.0.0.1"); err != nil {
		t.Fatalf("the 72-byte password: %v", err)
	}
	lookups := st.lookups
	_, err := svc.Authenticate(ctx, users.Login{Email: "long@example.com", Password: pw + "anything"}, "10.0.0.1")
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "password" {
		t.Fatalf("a password with bytes past the 72nd: %v", err)
	}
	if st.lookups != lookups {
		t.Fatal("a too long password reached the store")
	}
}

func TestMemStoreDropsTheExpiredThenTheLeastRestrictive(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := &users.MemStore{MaxKeys: 3, Now: c.now}
	put := func(k string, n int, life time.Duration) {
		t.Helper()
		if err := s.Put(ctx, k, users.Entry{N: n, Expires: c.t.Add(life)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	has := func(k string) bool {
		_, _, ok, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	put("locked", 9, time.Minute)
	put("soon", 1, time.Minute)
	put("later", 1, time.Hour)
	put("new", 1, time.Hour)
	if !has("locked") || has("soon") || !has("later") || !has("new") || s.Len() != 3 {
		t.Fatalf("full: dropped the wrong entry (locked %v soon %v later %v new %v)", has("locked"), has("soon"), has("later"), has("new"))
	}
	// Expired, "locked" goes first, restrictive as it was.
	c.t = c.t.Add(time.Minute)
	put("newer", 1, time.Hour)
	if s.Len() != 3 || !has("later") || !has("new") || !has("newer") {
		t.Fatal("dropped a live entry while an expired one was there")
	}
	if has("locked") {
		t.Fatal("an expired entry is still there")
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := users.DefaultLoginPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*users.LoginPolicy){
		"no attempts":         func(p *users.LoginPolicy) { p.AttemptsPerAddress = 0 },
		"attempts unbounded":  func(p *users.LoginPolicy) { p.AttemptsPerAddress = 1 << 40 },
		"no failures":         func(p *users.LoginPolicy) { p.FailuresPerSource = 0 },
		"max below wait":      func(p *users.LoginPolicy) { p.SourceWaitMax = p.SourceWait / 2 },
		"forgets while waits": func(p *users.LoginPolicy) { p.SourceMemory = p.SourceWaitMax / 2 },
		"no interval":         func(p *users.LoginPolicy) { p.AccountInterval = 0 },
	} {
		p := users.DefaultLoginPolicy()
		change(&p)
		if p.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
