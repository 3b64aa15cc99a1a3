package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/tools/runner/runnertest"
)

// TestTwoSuitesNeverCross starts a second copy of the whole suite (the same
// app IDs, the same secrets, a redis-server of its own) while this one runs,
// as `make run` and `make test` on one machine do, and drives both through
// their gateways: an account made in one is unknown to the other, a product
// or an order of one is not found in the other, and each service counts
// exactly the requests its own gateway forwarded (its http_requests_total),
// so no request of one suite reached a process of the other. Neither suite
// holds an mDNS socket. Issue 13: with mDNS, gateways called the other
// suite's users; since each run has its own Sentry such a call fails its TLS
// handshake (a 503), before that it was answered by the wrong suite. It runs
// once, on the redis profile.
func TestTwoSuitesNeverCross(t *testing.T) {
	if env.profile != "redis" {
		t.Skip("runs once, on the redis profile's pass")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("E2E_REQUIRED") != "" {
			t.Fatal("the second suite needs redis-server on PATH")
		}
		t.Skip("the second suite needs redis-server on PATH")
	}
	twin := startTwinSuite(t)
	sides := []*side{
		{name: "this suite", s: env},
		{name: "the second suite", s: twin},
	}

	// What each suite's services have counted before: the other tests
	// called this one already.
	for _, sd := range sides {
		sd.before = sd.counts(t)
	}

	for _, sd := range sides {
		sd.admin = sd.adminToken(t)
		sd.product = sd.newProduct(t)
	}
	for i, sd := range sides {
		other := sides[1-i]
		for range 5 {
			email := "twin-" + randomHex(6) + "@example.com"
			sd.mustSend(t, "", "POST", "/api/users", map[string]string{"email": email, "password": password, "name": "Twin"}, 201, nil)
			sd.login(t, email, password, 200)
			// Unknown there: the other suite's users has its own accounts.
			other.login(t, email, password, 401)
		}
	}
	for i, sd := range sides {
		other := sides[1-i]
		email := "twin-" + randomHex(6) + "@example.com"
		sd.mustSend(t, "", "POST", "/api/users", map[string]string{"email": email, "password": password, "name": "Twin"}, 201, nil)
		tok := sd.login(t, email, password, 200)
		var o order
		sd.mustSend(t, tok, "POST", "/api/orders", map[string]any{"items": []map[string]any{{"product_id": sd.product, "quantity": 1}}}, 201, &o)
		sd.mustSend(t, tok, "GET", "/api/orders/"+o.ID, nil, 200, nil)
		sd.mustSend(t, "", "GET", "/api/products/"+sd.product, nil, 200, nil)

		// The same account in the other suite is a new one: the same email
		// signs up there.
		other.mustSend(t, "", "POST", "/api/users", map[string]string{"email": email, "password": password, "name": "Twin"}, 201, nil)
		otherTok := other.login(t, email, password, 200)
		other.mustSend(t, otherTok, "GET", "/api/orders/"+o.ID, nil, 404, nil)
		other.mustSend(t, "", "GET", "/api/products/"+sd.product, nil, 404, nil)
		other.mustSend(t, otherTok, "POST", "/api/orders", map[string]any{"items": []map[string]any{{"product_id": sd.product, "quantity": 1}}}, 400, nil)
	}

	// Every request a gateway forwarded reached its own suite's service and
	// no other: each service counted exactly what its own gateway sent.
	for _, sd := range sides {
		after := sd.counts(t)
		for _, r := range countedRoutes {
			if got, want := after[r]-sd.before[r], sd.sent[r]; got != want {
				t.Errorf("%s: %s %s %s counted %v requests, its gateway forwarded %v", sd.name, r.app, r.method, r.route, got, want)
			}
		}
		t.Logf("%s: its services counted exactly the requests its gateway forwarded: %v", sd.name, sd.sent)
	}

	for _, sd := range sides {
		udp, err := runnertest.UDP(sd.s.marker)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range udp {
			if u.Addr.Port() == 5353 {
				t.Errorf("%s holds an mDNS socket: %s", sd.name, u)
			}
		}
	}
}

// startTwinSuite starts the second suite: the same apps and secrets as this
// run, the redis profile on a redis-server of its own (the machine's Redis
// would share accounts and events between the suites), every process tagged
// with a marker of its own. It stops when the test ends, leaving nothing.
func startTwinSuite(t *testing.T) *suite {
	t.Helper()
	dir := t.TempDir()
	redis, err := startRedis(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(redis.stop)
	marker := runnertest.NewMarker()
	start := time.Now()
	twin, err := startSuite("redis", filepath.Join(dir, "suite"), marker, env.secrets, redis.addr)
	if err != nil {
		dumpLog(filepath.Join(dir, "suite", "suite.log"))
		t.Fatalf("starting the second suite: %v", err)
	}
	twin.marker = marker
	t.Logf("the second suite started in %.1fs", time.Since(start).Seconds())
	t.Cleanup(func() {
		twin.run.Stop()
		twin.probe.close()
		twin.spans.close()
		if left := runnertest.Tagged(marker); len(left) > 0 {
			t.Errorf("the second suite left processes behind:\n%s", strings.Join(left, "\n"))
		}
		if t.Failed() {
			dumpLog(twin.logPath)
		}
	})
	return twin
}

// route is a route of a service whose requests TestTwoSuitesNeverCross
// counts, and the gateway route that forwards to it.
type route struct {
	app, method, route string // as the service's http_requests_total labels them
	gateway            string // method and path prefix at the gateway
}

var countedRoutes = []route{
	{"users", "POST", "/users", "POST /api/users"},
	{"users", "POST", "/login", "POST /api/login"},
	{"orders", "POST", "/orders", "POST /api/orders"},
	{"products", "POST", "/products", "POST /api/products"},
}

// side is one of the two suites as TestTwoSuitesNeverCross drives it.
type side struct {
	name    string
	s       *suite
	admin   string // an admin's token
	product string // a product of this suite
	before  map[route]float64
	sent    map[route]float64 // requests of countedRoutes sent through this suite's gateway
}

// send calls this suite's gateway and counts the request if a service
// counts it.
func (sd *side) send(t *testing.T, token, method, path string, body any) (int, []byte) {
	t.Helper()
	c := client{app: "gateway", base: fmt.Sprintf("http://127.0.0.1:%d", sd.s.run.App("gateway").AppPort), token: token}
	status, reply := c.call(t, method, path, body)
	for _, r := range countedRoutes {
		if r.gateway == method+" "+path {
			if sd.sent == nil {
				sd.sent = map[route]float64{}
			}
			sd.sent[r]++
		}
	}
	return status, reply
}

func (sd *side) mustSend(t *testing.T, token, method, path string, body any, want int, out any) {
	t.Helper()
	status, reply := sd.send(t, token, method, path, body)
	if status != want {
		t.Fatalf("%s: %s %s: %d %s, want %d", sd.name, method, path, status, reply, want)
	}
	if out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			t.Fatalf("%s: decoding %s: %v", sd.name, reply, err)
		}
	}
}

// login logs in through this suite's gateway, expecting status, and returns
// the token of a 200.
func (sd *side) login(t *testing.T, email, pw string, status int) string {
	t.Helper()
	var l struct{ Token string }
	var out any
	if status == 200 {
		out = &l
	}
	sd.mustSend(t, "", "POST", "/api/login", map[string]string{"email": email, "password": pw}, status, out)
	return l.Token
}

// adminToken logs in as this suite's admin, whom users makes at its start.
func (sd *side) adminToken(t *testing.T) string {
	t.Helper()
	var tok string
	eventually(t, 30*time.Second, func() string {
		status, reply := sd.send(t, "", "POST", "/api/login", map[string]string{"email": adminEmail, "password": sd.s.secrets["admin-password"]})
		if status != 200 {
			return fmt.Sprintf("%s: admin login: %d %s", sd.name, status, reply)
		}
		var l struct{ Token string }
		_ = json.Unmarshal(reply, &l)
		tok = l.Token
		return ""
	})
	return tok
}

func (sd *side) newProduct(t *testing.T) string {
	t.Helper()
	var p product
	sd.mustSend(t, sd.admin, "POST", "/api/products", map[string]any{"name": "Twin " + randomHex(3), "price": 300, "currency": "EUR", "stock": 10}, 201, &p)
	return p.ID
}

// counts reads, from each service of this suite, how many requests of each
// counted route it has served, whatever their status.
func (sd *side) counts(t *testing.T) map[route]float64 {
	t.Helper()
	out := map[route]float64{}
	for _, r := range countedRoutes {
		vs, err := samples(sd.s.run.App(r.app).AppPort, "http_requests_total", `route="`+r.route+`"`, `method="`+r.method+`"`)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			out[r] += v
		}
	}
	return out
}
