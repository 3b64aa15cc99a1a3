package users

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"net"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/optimistic"
	"github.com/daprshop/suite/lib/retry"
)

// LoginPolicy holds the numbers of the login limits (see Limits).
type LoginPolicy struct {
	// AttemptsPerAddress logins a minute from one address, whatever the
	// accounts: a burst of that many, then one every minute/AttemptsPerAddress.
	AttemptsPerAddress int
	// FailuresPerSource failures of one account from one address are free;
	// then that address waits SourceWait for that account, twice as long
	// after each further failure, at most SourceWaitMax. A success resets
	// it; so does SourceMemory without a failure.
	FailuresPerSource int
	SourceWait        time.Duration
	SourceWaitMax     time.Duration
	SourceMemory      time.Duration
	// FailuresPerAccount failures of one account from unfamiliar addresses
	// in a burst, then one every AccountInterval, however many addresses
	// try.
	FailuresPerAccount int
	AccountInterval    time.Duration
	// FamiliarFor is how long an address a login succeeded from stays
	// familiar to that account (exempt from the account's budget).
	FamiliarFor time.Duration
}

// DefaultLoginPolicy is the production policy; Limits states its bounds.
func DefaultLoginPolicy() LoginPolicy {
	return LoginPolicy{
		AttemptsPerAddress: 30,
		FailuresPerSource:  5,
		SourceWait:         time.Minute,
		SourceWaitMax:      time.Hour,
		SourceMemory:       24 * time.Hour,
		FailuresPerAccount: 20,
		AccountInterval:    30 * time.Second,
		FamiliarFor:        30 * 24 * time.Hour,
	}
}

// Validate reports a policy that would not limit anything.
func (p LoginPolicy) Validate() error {
	var errs []error
	if p.AttemptsPerAddress < 1 || p.FailuresPerSource < 1 || p.FailuresPerAccount < 1 {
		errs = append(errs, errors.New("attempts and failures allowed must be at least 1"))
	}
	if p.AttemptsPerAddress > 1_000_000 {
		errs = append(errs, errors.New("attempts per address must be at most 1,000,000 a minute"))
	}
	if p.SourceWait <= 0 || p.SourceWaitMax < p.SourceWait || p.SourceMemory < p.SourceWaitMax {
		errs = append(errs, errors.New("source waits must satisfy 0 < wait <= max wait <= memory"))
	}
	if p.AccountInterval <= 0 || p.FamiliarFor <= 0 {
		errs = append(errs, errors.New("the account interval and familiar time must be positive"))
	}
	return errors.Join(errs...)
}

// sourceWait is how long a source waits after its n-th straight failure.
func (p LoginPolicy) sourceWait(n int) time.Duration {
	if n < p.FailuresPerSource {
		return 0
	}
	w := p.SourceWait
	for i := p.FailuresPerSource; i < n && w < p.SourceWaitMax; i++ {
		w *= 2
	}
	return min(w, p.SourceWaitMax)
}

// Limits decides which logins may have their password checked, so that
// guessing stays bounded while a stranger cannot keep an owner out. A
// source is a client address (an IPv6 client's /64, see AddressKey).
//
// With DefaultLoginPolicy:
//
//   - Per source, over all accounts: 30 attempts in a burst, then one every
//     2 s (30 a minute).
//   - Per account and source: 5 failures free; then that source waits 1 min
//     for that account, 2 after the next failure, then 4, 8, 16, 32 and 60
//     at most. One address gets at most 33 password checks of an account in
//     its first 24 h, 24 a day after. A success from that source resets it;
//     other sources are not affected: the owner elsewhere never waits for it.
//   - Per account, failures from unfamiliar sources: a burst of 20, then one
//     every 30 s, however many addresses share the work: at most
//     20 + ⌊t / 30 s⌋ failed checks in any time t (2,900 a day). This
//     slows, it never locks: an unfamiliar source waits at most 30 s for the
//     next check. A source is familiar to an account for 30 days after a
//     login to it succeeded from there; familiar sources are exempt from the
//     account's budget, so an attack from elsewhere never delays the owner
//     at an address she used before (only at a new address, while attackers
//     drain the budget, may she wait, 30 s at most per try, and compete with
//     them for the next check).
//
// Refused attempts never reach bcrypt and never count as failures; right
// passwords never count as failures.
//
// The limits hold across replicas: their entries live in LimitStores the
// replicas share (the users state store), each changed over the version it
// read (optimistic.Update), so no attempt goes uncounted. The logins of one
// account run one at a time, whatever the replica: an admitted login holds
// the account's lease (lib/lease, a short record in the shared store) from
// its check to its outcome, so parallel guesses stop at the limits, each
// seeing the failures before it. A login the limits refuse is refused
// before it takes the lease: attempts on an account under attack never keep
// its owner waiting for the lease.
type Limits struct {
	Policy LoginPolicy
	Now    func() time.Time
	// Addresses holds the per-source buckets, Failures the per-account and
	// per-account-and-source failures, Familiar the familiar sources. They
	// are apart so that a spray filling one cannot push out the others.
	Addresses, Failures, Familiar LimitStore
	// Leases runs the logins of one account one at a time. Its Wait is how
	// long a login waits for the account's previous one (then 429).
	Leases *lease.Manager
}

// LeaseTTL is how long an account's login lease lasts: far longer than a
// login (a bcrypt comparison and a few store calls), short enough that a
// replica that died mid-login holds up its account's logins only briefly.
const LeaseTTL = 10 * time.Second

// NewLimits returns Limits with policy p on MemStores of DefaultMaxKeys each
// and leases in memory: the limits of one process, for tests.
func NewLimits(p LoginPolicy, now func() time.Time) *Limits {
	return &Limits{Policy: p, Now: now,
		Addresses: &MemStore{Now: now}, Failures: &MemStore{Now: now}, Familiar: &MemStore{Now: now},
		Leases: &lease.Manager{Store: &lease.MemStore{}, TTL: LeaseTTL, Now: now, Wait: LeaseWait()}}
}

// LeaseWait is how a login waits for the one before it on its account: at
// most 3 s, looking again every few milliseconds.
func LeaseWait() retry.Policy {
	return retry.Policy{Retries: math.MaxInt32, Initial: 2 * time.Millisecond, Max: 50 * time.Millisecond,
		Jitter: retry.DefaultJitter, Total: 3 * time.Second}
}

// bucket is a token bucket of size burst regaining one token every every,
// kept as one time: when it is full again (GCRA's theoretical arrival time).
// Of any events, at most burst + ⌊t/every⌋ within a time t are taken.
type bucket struct {
	burst int
	every time.Duration
}

// wait is how long until the bucket that is full at full has a token.
func (b bucket) wait(full, now time.Time) time.Duration {
	if !full.After(now) {
		return 0
	}
	return max(0, full.Sub(now)-time.Duration(b.burst-1)*b.every)
}

// take is the bucket's entry after one token is taken at now.
func (b bucket) take(full, now time.Time) Entry {
	if full.Before(now) {
		full = now
	}
	full = full.Add(b.every)
	return Entry{N: int((full.Sub(now) + b.every - 1) / b.every), At: full, Expires: full}
}

func (l *Limits) addressBucket() bucket {
	return bucket{l.Policy.AttemptsPerAddress, time.Minute / time.Duration(l.Policy.AttemptsPerAddress)}
}

func (l *Limits) accountBucket() bucket {
	return bucket{l.Policy.FailuresPerAccount, l.Policy.AccountInterval}
}

// attempt is a login the limits let through; done records how it went.
type attempt struct {
	l                     *Limits
	account, pair, friend string // store keys; "" without an account
	lease                 *lease.Lease
	// What check read, under the lease: the entries and their versions,
	// which the outcome is written over.
	pairE, acctE read
	familiar     bool
	friendE      read
}

// read is an entry as read, with its version.
type read struct {
	e       Entry
	version string
}

// admit counts a login for email (normalised, "" if not an address) from
// addr, or refuses it with TooManyRequests and how long to wait. An admitted
// login holds its account's lease until done.
func (l *Limits) admit(ctx context.Context, email, addr string) (*attempt, error) {
	src := AddressKey(addr)
	if err := l.takeAddress(ctx, 's', src); err != nil {
		return nil, err
	}
	a := &attempt{l: l}
	if email == "" {
		return a, nil
	}
	a.account, a.pair, a.friend = digest('a', email), digest('p', email, src), digest('f', email, src)
	// Refused before the lease, then checked again under it: what another
	// login of the account did meanwhile counts.
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	held, err := l.Leases.Acquire(ctx, "login:"+hex.EncodeToString([]byte(a.account)))
	if errors.As(err, new(*lease.HeldError)) {
		return nil, tooMany(time.Second)
	}
	if err != nil {
		return nil, err
	}
	a.lease = held
	if err := a.check(ctx); err != nil {
		a.release(ctx)
		return nil, err
	}
	return a, nil
}

// takeAddress counts one attempt of kind ('s' a login, 'u' a sign-up: a
// bucket each, of the same size) from src unless its bucket is empty.
func (l *Limits) takeAddress(ctx context.Context, kind byte, src string) error {
	key := digest(kind, src)
	_, err := l.update(ctx, l.Addresses, key, nil, func(e *Entry) error {
		now, b := l.Now(), l.addressBucket()
		if wait := b.wait(e.At, now); wait > 0 {
			return tooMany(wait)
		}
		*e = b.take(e.At, now)
		return nil
	})
	return err
}

// update changes key's entry in s over the version it read: one
// optimistic.Update cycle. known, when set, is the entry as read already
// (under the account's lease): the first attempt writes over it without
// reading again.
func (l *Limits) update(ctx context.Context, s LimitStore, key string, known *read, change func(*Entry) error) (Entry, error) {
	return optimistic.Update(ctx, optimistic.Policy(), "login limits",
		func(ctx context.Context) (Entry, string, error) {
			if known != nil {
				r := *known
				known = nil
				return r.e, r.version, nil
			}
			e, version, _, err := s.Get(ctx, key)
			return e, version, err
		},
		change,
		func(ctx context.Context, e Entry, version string) error { return s.Put(ctx, key, e, version) })
}

// check refuses the attempt, with how long to wait, while its source must
// wait on the account or, from an unfamiliar source, the account's budget
// is spent.
func (a *attempt) check(ctx context.Context) error {
	l := a.l
	now := l.Now()
	var err error
	if a.pairE, err = get(ctx, l.Failures, a.pair); err != nil {
		return err
	}
	var wait time.Duration
	if a.pairE.e.At.After(now) {
		wait = a.pairE.e.At.Sub(now)
	}
	var found bool
	if a.friendE, found, err = getFound(ctx, l.Familiar, a.friend); err != nil {
		return err
	}
	a.familiar = found
	if !a.familiar {
		if a.acctE, err = get(ctx, l.Failures, a.account); err != nil {
			return err
		}
		wait = max(wait, l.accountBucket().wait(a.acctE.e.At, now))
	}
	if wait > 0 {
		return tooMany(wait)
	}
	return nil
}

func get(ctx context.Context, s LimitStore, key string) (read, error) {
	r, _, err := getFound(ctx, s, key)
	return r, err
}

func getFound(ctx context.Context, s LimitStore, key string) (read, bool, error) {
	e, version, found, err := s.Get(ctx, key)
	return read{e, version}, found, err
}

// release gives the account's lease up (one not released expires).
func (a *attempt) release(ctx context.Context) {
	if a.lease != nil {
		_ = a.lease.Release(ctx)
	}
}

// failed counts a wrong password against the source on the account and,
// from an unfamiliar source, against the account's budget.
func (a *attempt) failed(ctx context.Context) error {
	defer a.release(ctx)
	if a.account == "" {
		return nil
	}
	l := a.l
	now := l.Now()
	if _, err := l.update(ctx, l.Failures, a.pair, &a.pairE, func(pair *Entry) error {
		pair.N++
		pair.At = now.Add(l.Policy.sourceWait(pair.N))
		pair.Expires = pair.At.Add(l.Policy.SourceMemory)
		return nil
	}); err != nil || a.familiar {
		return err
	}
	_, err := l.update(ctx, l.Failures, a.account, &a.acctE, func(acct *Entry) error {
		*acct = l.accountBucket().take(acct.At, now)
		return nil
	})
	return err
}

// succeeded clears the source's failures on the account and makes the
// source familiar to it. The account's budget stays: others' failures on it
// were not the owner's typos.
func (a *attempt) succeeded(ctx context.Context) error {
	defer a.release(ctx)
	if a.account == "" {
		return nil
	}
	l := a.l
	if a.pairE.version != "" {
		if err := l.Failures.Delete(ctx, a.pair); err != nil {
			return err
		}
	}
	now := l.Now()
	_, err := l.update(ctx, l.Familiar, a.friend, &a.friendE, func(e *Entry) error {
		*e = Entry{At: now, Expires: now.Add(l.Policy.FamiliarFor)}
		return nil
	})
	return err
}

// digest is a store key of fixed size for kind and parts, so that no input
// (a 254-byte email, an odd X-Forwarded-For) makes an entry larger.
func digest(kind byte, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return string(kind) + string(h.Sum(nil)[:16])
}

func tooMany(wait time.Duration) error {
	return &apierr.Error{Code: apierr.TooManyRequests, Message: "too many attempts, try again later", RetryAfter: wait}
}

// AddressKey is the key a client address is limited by: the address itself
// for IPv4, its /64 network for IPv6, where one client commonly holds a
// whole /64 and could otherwise rotate through it.
func AddressKey(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
