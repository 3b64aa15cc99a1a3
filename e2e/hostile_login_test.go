package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Login limits through the real gateway, with attacker and owner on
// different source addresses of this machine: on Linux all of 127/8 is
// loopback, so a client bound to 127.0.0.2 reaches the gateway (on
// 127.0.0.1) from another address, which the gateway passes to users as
// X-Forwarded-For. The suite runs users with LOGIN_ATTEMPTS_PER_ADDRESS=100000
// (every other test logs in from 127.0.0.1); the per-account limits are the
// defaults: 5 failures free per account and address, then waits from 1 min;
// 20 failures per account from unfamiliar addresses, then one per 30 s.

// loopbackAlias skips t unless addr can be a source address here.
func loopbackAlias(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Skipf("%s is not a local address here (%v): macOS has only 127.0.0.1 on lo0 by default "+
			"(`sudo ifconfig lo0 alias %s up` adds it); Linux has all of 127/8", addr, err, addr)
	}
	l.Close()
}

// loginFromAddr posts a login to the gateway from source address src and
// returns the status, Retry-After in seconds (0 if none) and the body,
// checked against the gateway's OpenAPI document.
func loginFromAddr(t *testing.T, src, email, pw string) (int, int, []byte) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	req, _ := http.NewRequest("POST", gateway(t, "").base+"/api/login", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("login from %s: %v", src, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	appReq, _ := http.NewRequest("POST", "http://app/api/login", strings.NewReader(string(body)))
	appReq.Header = req.Header.Clone()
	env.spec.checkResponse("gateway", appReq, resp.StatusCode, resp.Header, reply)
	wait := 0
	if h := resp.Header.Get("Retry-After"); h != "" {
		if wait, err = strconv.Atoi(h); err != nil {
			t.Fatalf("Retry-After %q", h)
		}
	}
	return resp.StatusCode, wait, reply
}

// hammer sends n wrong passwords for email from the sources in turn and
// returns how many were checked (401); every other answer must be a 429
// with Retry-After at most maxWait seconds.
func hammer(t *testing.T, email string, n, maxWait int, src func(i int) string) int {
	t.Helper()
	checked := 0
	for i := range n {
		switch status, wait, reply := loginFromAddr(t, src(i), email, fmt.Sprint("guess ", i)); {
		case status == 401:
			checked++
		case status != 429 || wait < 1 || wait > maxWait:
			t.Fatalf("guess %d from %s: %d, Retry-After %d, %s", i, src(i), status, wait, reply)
		}
	}
	return checked
}

// TestHostileLoginOwnerGetsInDuringAttack: an attacker hammering an account
// with wrong passwords from one address is refused (429) after 5 checks,
// the right password included, while the owner logging in from another
// address gets in every time; the admin alike.
func TestHostileLoginOwnerGetsInDuringAttack(t *testing.T) {
	const attacker, owner = "127.0.0.2", "127.0.0.1"
	loopbackAlias(t, attacker)
	email := "e2e-" + randomHex(6) + "@example.com"
	gateway(t, "").mustCall(t, "POST", "/api/users", map[string]string{"email": email, "password": password, "name": "Owner"}, 201, nil)
	start := time.Now()
	checked := 0
	for round := range 6 {
		checked += hammer(t, email, 5, 3600, func(int) string { return attacker })
		if status, _, reply := loginFromAddr(t, owner, email, password); status != 200 {
			t.Fatalf("round %d, after %d checked guesses: the owner from %s: %d %s", round, checked, owner, status, reply)
		}
	}
	// Waits start at a minute: the test is far quicker, or its bound looser.
	if bound := 5 + int(time.Since(start)/time.Minute); checked < 5 || checked > bound {
		t.Fatalf("the attacker's passwords were checked %d times, bound %d", checked, bound)
	}
	if status, _, reply := loginFromAddr(t, attacker, email, password); status != 429 {
		t.Fatalf("the right password from the attacker's address: %d %s, want 429 (refused unchecked)", status, reply)
	}

	// The admin: guessed at from another address, logs in as ever.
	admin := "127.0.0.3"
	loopbackAlias(t, admin)
	adminToken(t) // the admin account exists (users makes it at start-up)
	if got := hammer(t, adminEmail, 10, 3600, func(int) string { return admin }); got < 5 || got > 5+int(time.Since(start)/time.Minute) {
		t.Fatalf("%d guesses at the admin's password checked", got)
	}
	if status, _, reply := loginFromAddr(t, owner, adminEmail, env.secrets["admin-password"]); status != 200 {
		t.Fatalf("the admin after the attack: %d %s", status, reply)
	}
}

// TestHostileLoginManyAddresses: guesses from many addresses, one each, are
// held to the account's budget (20, then one per 30 s): past it they are
// refused unchecked, but only for a while (Retry-After at most 30 s), and
// the owner at the address she logged in from before gets in as ever.
func TestHostileLoginManyAddresses(t *testing.T) {
	loopbackAlias(t, "127.0.1.1")
	email := "e2e-" + randomHex(6) + "@example.com"
	gateway(t, "").mustCall(t, "POST", "/api/users", map[string]string{"email": email, "password": password, "name": "Owner"}, 201, nil)
	login(t, email, password) // from 127.0.0.1: now familiar
	start := time.Now()
	checked := hammer(t, email, 30, 30, func(i int) string { return fmt.Sprintf("127.0.1.%d", i+1) })
	if bound := 20 + int(time.Since(start)/(30*time.Second)); checked < 20 || checked > bound {
		t.Fatalf("guesses from 30 addresses: %d checked, bound %d", checked, bound)
	}
	if status, _, reply := loginFromAddr(t, "127.0.0.1", email, password); status != 200 {
		t.Fatalf("the owner at her usual address: %d %s", status, reply)
	}
}
