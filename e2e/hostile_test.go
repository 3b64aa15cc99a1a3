package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/daprshop/suite/tools/runner/runnertest"
)

// The hostile tests attack the running suite the way issue 12's attacker
// did: curl with paths no client would send, a signed-in customer after
// another's data, a process on the same machine talking to every socket.
// Each test guards a class of hole, not the one example that was found:
// routes come from the gateway's OpenAPI document, sockets from the run's
// processes, topics and subscriptions from the components and the sidecars,
// so what is added later is attacked too. Helpers: hostile_http_test.go,
// hostile_net_test.go.

// gatewayAddr is the public listener.
func gatewayAddr() string { return fmt.Sprintf("127.0.0.1:%d", env.run.App("gateway").AppPort) }

// validID is a real ID of the collection a path parameter names, one the
// attacker does not own when it can be (the victim's).
func validID(collection string, v victim) string {
	switch collection {
	case "orders":
		return v.order.ID
	case "products":
		return v.product.ID
	case "users":
		return v.user.ID
	case "notifications":
		if len(v.notes) > 0 {
			return v.notes[0].ID
		}
	}
	return "x"
}

// TestHostilePaths guards the class "a request the gateway does not route
// as documented reaches something it must not": encoded separators, dots,
// #, ?, NUL and backslashes in a path parameter or in a literal segment,
// dot segments, matrix parameters, overlong and look-alike values, paths to
// sidecar APIs and to other services, and methods no route has (finding 1:
// the signing key read through products' redirect; finding 6: daprd's errors
// and internal paths in replies). Every route of the gateway's OpenAPI
// document is attacked as an anonymous client, a customer and, on admins'
// routes, an admin, over raw TCP so that nothing normalises the request.
// Every reply: a 4xx (or, where a normalising router would land on a
// documented route the caller may use with only public IDs in it, that
// route's answer), never a 3xx or 5xx; errors in the error model; no secret of the
// run, no daprd words, no internal path, no other user's data.
func TestHostilePaths(t *testing.T) {
	routes := gatewayRoutes(t)
	admin := adminToken(t)
	v := newVictim(t, admin)
	_, customer := signUp(t)
	callers := []caller{{"anonymous", "", "public"}, {"a customer", customer, "customer"}, {"an admin", admin, "admin"}}
	lc := leakCheck{secrets: runSecrets(), victim: v.data()}
	addr := gatewayAddr()
	t.Cleanup(func() {
		if t.Failed() {
			awaitInvocation(t)
		}
	})
	valid := func(_, coll string) string { return validID(coll, v) }
	// A 2xx is legitimate only where a normalising router would land on a
	// route the caller may use, naming only what is public (a product).
	allowed := func(c caller, method, target string) bool {
		r, ok := resolves(method, target, routes, map[string]bool{v.product.ID: true})
		return ok && c.may(r)
	}

	// Every trick is a group of cases (all routes, all callers), reported as
	// a subtest; all cases run in one pool, so the slowest reply of a group
	// holds up no other.
	type hcase struct {
		who      string
		rq       rawRequest
		allow2xx bool
	}
	type group struct {
		name  string
		cases []hcase
		f     findings
	}
	var groups []*group
	for _, tr := range paramTricks(v, routes) {
		g := &group{name: "param " + tr.name}
		for _, r := range routes {
			for _, p := range r.params {
				target := r.fill(func(name, coll string) string {
					if name == p {
						return tr.value(validID(coll, v))
					}
					return validID(coll, v)
				})
				for _, c := range callersOf(r, callers) {
					g.cases = append(g.cases, hcase{c.name, rawRequest{method: r.method, target: target, header: bearer(c.token), body: r.body}, allowed(c, r.method, target)})
				}
			}
		}
		groups = append(groups, g)
	}
	for _, tr := range pathTricks() {
		g := &group{name: "path " + tr.name}
		for _, r := range routes {
			target := tr.apply(r.fill(valid))
			for _, c := range callersOf(r, callers) {
				g.cases = append(g.cases, hcase{c.name, rawRequest{method: r.method, target: target, header: bearer(c.token)}, allowed(c, r.method, target)})
			}
		}
		groups = append(groups, g)
	}
	absolute := &group{name: "path absolute-form targets naming a sidecar"}
	for _, a := range env.run.Apps {
		for _, p := range []string{"/v1.0/metadata", "/v1.0/secrets/secrets/jwt-signing-key", "/v1.0/invoke/payments/method/provider"} {
			for _, c := range callers {
				absolute.cases = append(absolute.cases, hcase{c.name, rawRequest{method: "GET", target: fmt.Sprintf("http://127.0.0.1:%d%s", a.DaprHTTPPort, p), header: bearer(c.token)}, false})
			}
		}
	}
	groups = append(groups, absolute)
	methods := map[string][]string{} // template -> its methods
	for _, r := range routes {
		methods[r.template] = append(methods[r.template], r.method)
	}
	for _, m := range []string{"TRACE", "PROPFIND", "CONNECT", "OPTIONS", "PATCH", "DELETE", "PUT", "POST", "GET", "get", "post", "HACK"} {
		g := &group{name: "method " + m}
		for _, tmpl := range slices.Sorted(maps.Keys(methods)) {
			if slices.Contains(methods[tmpl], m) {
				continue
			}
			target := apiRoute{template: tmpl}.fill(valid)
			for _, c := range callers {
				g.cases = append(g.cases, hcase{c.name, rawRequest{method: m, target: target, header: bearer(c.token)}, allowed(c, m, target)})
			}
		}
		groups = append(groups, g)
	}

	var jobs []func()
	for _, g := range groups {
		for _, k := range g.cases {
			jobs = append(jobs, func() { lc.verdict(&g.f, k.who, k.rq, sendRaw(addr, k.rq, 20*time.Second), k.allow2xx) })
		}
	}
	inParallel(32, jobs)
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			if len(g.cases) == 0 {
				t.Skip("no route this trick applies to")
			}
			g.f.report(t, 3)
		})
	}
}

// paramTrick is a value put in a path parameter, made from a valid one.
type paramTrick struct {
	name  string
	value func(valid string) string
}

// paramTricks are the values an attacker puts in a path parameter: each
// special character in one, two and three encodings, alone and after a
// valid ID; an encoded slash and each literal segment of the routes after a
// valid ID (another route of the service behind, e.g. .../ord_x%252fcancel);
// dot segments; matrix parameters; overlong values; look-alikes; and paths
// that climb out to a sidecar's API or to another service's routes (the
// run's secret names included).
func paramTricks(v victim, routes []apiRoute) []paramTrick {
	var out []paramTrick
	fixed := func(name, s string) { out = append(out, paramTrick{name, func(string) string { return s }}) }
	after := func(s string) { out = append(out, paramTrick{"ID" + s, func(id string) string { return id + s }}) }
	for _, e := range []string{"%2e", "%252e", "%2f", "%2F", "%252f", "%25252f", "%5c", "%255c", "%23", "%2523", "%3f", "%3F", "%253f",
		"%00", "%2500", "%3b", "%0d%0a", "%0a", "%09", "%20", "%25", "%26", "%3d", "%c0%ae", "%c0%af", "#", "?", `\`} {
		fixed(e, e)
		after(e)
	}
	for _, d := range []string{"..", ".", "%2e%2e", ".%2e", "%2e.", "%2E%2E", "%252e%252e", "..;", "..%3b", "...", "..%00", "..%2f", "..%252f",
		"..%5c", `..\`, "%2e%2e%2f%2e%2e", ".%252e", ";", "%ef%bc%8e%ef%bc%8e", "%e2%80%a4%e2%80%a4", "%ef%bc%8f", "%e2%88%95",
		"%e2%81%84", "%ef%bc%bc", "．．", "／", "%e2%80%ae"} {
		fixed(d, d)
	}
	for _, s := range []string{"/..", "/.", "/../", "%2f..", "%2f..%2f..", "%252f..%252f..", ";x=1", ";user_id=" + v.user.ID, "%3bx=1",
		"%ef%bc%8f..", "%e2%88%95..", "．", "%252f..%252f..%252fv1.0%252fmetadata"} {
		after(s)
	}
	segments := map[string]bool{}
	for _, r := range routes {
		for _, seg := range strings.Split(r.template, "/") {
			if seg != "" && seg != "api" && !strings.HasPrefix(seg, "{") {
				segments[seg] = true
			}
		}
	}
	for _, seg := range slices.Sorted(maps.Keys(segments)) {
		after("%2f" + seg)
		after("%252f" + seg)
	}
	long := strings.Repeat("a", 8<<10)
	fixed("8 KiB", long)
	out = append(out,
		paramTrick{"ID + 8 KiB", func(id string) string { return id + long }},
		paramTrick{"8 KiB of %2e", func(string) string { return strings.Repeat("%2e", 8<<10/3) }},
		paramTrick{"ID in upper case", strings.ToUpper},
		paramTrick{"ID with a Cyrillic o", func(id string) string { return strings.Replace(id, "o", "о", 1) }},
		paramTrick{"ID with an encoded Cyrillic o", func(id string) string { return strings.Replace(id, "o", "%d0%be", 1) }},
	)
	// Climbing out to a sidecar's API or to another service, as issue 12's
	// first finding did.
	for _, s := range []string{
		"..%252fv1.0%252fmetadata", "..%252f..%252fv1.0%252fmetadata", "..%2f..%2fv1.0%2fmetadata", "%2e%2e%252f%2e%2e%252fv1.0%252fmetadata",
		"..%2f..%2fv1.0%2finvoke%2fpayments%2fmethod%2fprovider", "..%252f..%252fv1.0%252finvoke%252fpayments%252fmethod%252fprovider",
		"..%252f..%252f..%252fv1.0%252finvoke%252fpayments%252fmethod%252fprovider",
		"..%252f..%252fv1.0%252fstate%252forders-store%252forder:" + v.order.ID, "..%252f..%252fv1.0%252fpublish%252fevents%252forders",
		"..%252fusers%252f" + v.user.ID, "..%252f..%252fusers%252f" + v.user.ID, "..%2f..%2fusers%2f" + v.user.ID,
		"..%252f..%252forders%253fuser_id%253d" + v.user.ID, "..%252f..%252fnotifications%253fuser_id%253d" + v.user.ID,
		"..%252f..%252fprovider", "..%252f..%252forders%252f" + v.order.ID,
	} {
		fixed(s, s)
	}
	for _, name := range slices.Sorted(maps.Keys(env.secrets)) {
		for _, s := range []string{"..%252fv1.0%252fsecrets%252fsecrets%252f", "..%252f..%252fv1.0%252fsecrets%252fsecrets%252f", "..%2f..%2fv1.0%2fsecrets%2fsecrets%2f"} {
			fixed(s+name, s+name)
		}
	}
	return out
}

// pathTrick rewrites a route's path (/api/...).
type pathTrick struct {
	name  string
	apply func(p string) string
}

func pathTricks() []pathTrick {
	rest := func(p string) string { return strings.TrimPrefix(p, "/api") } // "/products/..."
	long := strings.Repeat("a", 8<<10)
	return []pathTrick{
		{"/api/./", func(p string) string { return "/api/." + rest(p) }},
		{"/. at the end", func(p string) string { return p + "/." }},
		{"/api//", func(p string) string { return "/api/" + rest(p) }},
		{"// first", func(p string) string { return "/" + p }},
		{"/api/%2e/", func(p string) string { return "/api/%2e" + rest(p) }},
		{"/api/%252e/", func(p string) string { return "/api/%252e" + rest(p) }},
		{"/api/x/../", func(p string) string { return "/api/x/.." + rest(p) }},
		{"/api/x/%2e%2e/", func(p string) string { return "/api/x/%2e%2e" + rest(p) }},
		{"/api/x/.%2e/", func(p string) string { return "/api/x/.%2e" + rest(p) }},
		{"/api/x/%252e%252e/", func(p string) string { return "/api/x/%252e%252e" + rest(p) }},
		{"/api/x/..;/", func(p string) string { return "/api/x/..;" + rest(p) }},
		{"/api/x/%ef%bc%8e%ef%bc%8e/", func(p string) string { return "/api/x/%ef%bc%8e%ef%bc%8e" + rest(p) }},
		{"/api%2f", func(p string) string { return "/api%2f" + rest(p)[1:] }},
		{"/api%252f", func(p string) string { return "/api%252f" + rest(p)[1:] }},
		{`/api\`, func(p string) string { return `/api\` + rest(p)[1:] }},
		{"/api%5c", func(p string) string { return "/api%5c" + rest(p)[1:] }},
		{"/api%c0%af", func(p string) string { return "/api%c0%af" + rest(p)[1:] }},
		{"/API", func(p string) string { return "/API" + rest(p) }},
		{"/api;x=1", func(p string) string { return "/api;x=1" + rest(p) }},
		{"/ at the end", func(p string) string { return p + "/" }},
		{"%2f at the end", func(p string) string { return p + "%2f" }},
		{";x=1 at the end", func(p string) string { return p + ";x=1" }},
		{"%00 at the end", func(p string) string { return p + "%00" }},
		{"%23 at the end", func(p string) string { return p + "%23" }},
		{"#x at the end", func(p string) string { return p + "#x" }},
		{"%3f at the end", func(p string) string { return p + "%3f" }},
		{"%2e at the end", func(p string) string { return p + "%2e" }},
		{"/%2e%2e/users at the end", func(p string) string { return p + "/%2e%2e/users" }},
		{"/../../users at the end", func(p string) string { return p + "/../../users" }},
		{"/..%2f..%2fv1.0%2fmetadata at the end", func(p string) string { return p + "/..%2f..%2fv1.0%2fmetadata" }},
		{"/api/..%252fv1.0%252fmetadata", func(string) string { return "/api/..%252fv1.0%252fmetadata" }},
		{"/api/..%2f..%2fv1.0%2fsecrets%2fsecrets%2fjwt-signing-key", func(string) string {
			return "/api/..%2f..%2fv1.0%2fsecrets%2fsecrets%2fjwt-signing-key"
		}},
		{"8 KiB segment at the end", func(p string) string { return p + "/" + long }},
		{"4096 x /. first", func(p string) string { return "/api" + strings.Repeat("/.", 4096) + rest(p) }},
	}
}

// TestHostileSockets guards the class "a process on the machine reaches a
// service or a sidecar without this run's credentials" (finding 2: daprd's
// internal gRPC port on every interface accepting a plaintext CallLocal, to
// which daprd adds the app token; finding 6: metrics ports on every
// interface). Every TCP socket the run's processes listen on, found from
// /proc or lsof (not from a list of ports), must be bound to loopback and refuse an
// attacker in every protocol it speaks: HTTP/1.1 (sensitive paths of the
// sidecar APIs and of every service, without tokens: only the probe paths
// may answer 2xx), gRPC without TLS (the Dapr API and the internal
// CallLocal, without token), gRPC over TLS without a client certificate and
// with a self-signed one (CallLocal, Sentry's SignCertificate without a
// valid token). A metrics server may answer any path with its metrics. A
// socket speaking none of these fails the test until the test learns to
// attack it.
func TestHostileSockets(t *testing.T) {
	victimUser, _ := signUp(t)
	ls := runListeners(t)
	public := fmt.Sprintf("127.0.0.1:%d", env.run.App("gateway").AppPort)
	if !slices.ContainsFunc(ls, func(l listener) bool { return l.dial() == public }) {
		t.Fatalf("the gateway's public port is not among the %d listeners found: finding the run's sockets failed", len(ls))
	}
	// mDNS believes any answer: anyone who can send to UDP 5353 could point
	// the run's app IDs elsewhere. The run resolves names on its own.
	udp, err := runnertest.UDP(env.marker)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range udp {
		if u.Addr.Port() == 5353 {
			t.Errorf("a process of the run holds an mDNS socket: %s", u)
		}
	}
	probes := attackerCalls(t, victimUser.ID)
	selfSigned := selfSignedClient(t, "payments")
	httpProbes := socketHTTPProbes(victimUser.ID)
	secrets := leakCheck{secrets: runSecrets()}

	type result struct {
		spoke []string
		f     findings
	}
	results := make([]*result, len(ls))
	jobs := make([]func(), len(ls))
	for i, l := range ls {
		res := &result{}
		results[i] = res
		jobs[i] = func() {
			f := &res.f
			if !l.addr.Addr().Unmap().IsLoopback() {
				f.add("bound beyond loopback", "listens on %s: every listener must bind to 127.0.0.1 or ::1", l.addr)
			}
			addr := l.dial()
			if l.process == "jaeger" {
				// The run's Jaeger, as make observe's: its viewer and query
				// API are open to the machine's users by design (on
				// loopback: checked above); what it holds is spans.
				res.spoke = append(res.spoke, "Jaeger's (not attacked)")
				return
			}
			checkHTTP := func(proto string, send func(rawRequest) rawReply) {
				for _, rq := range httpProbes {
					rep := send(rq)
					if rep.err != nil {
						continue // refused, or gave up: either way no answer
					}
					target, _, _ := strings.Cut(rq.target, "?")
					// A metrics server may answer every path with its metrics;
					// the public edge (every gateway instance), the storefront's
					// page and files.
					if rep.status/100 == 2 && !probePath[target] && !metricsText(rep) && !(l.process == "gateway" && storefrontFile(target, rep)) {
						f.add("answers a caller without credentials", "%s %s %s -> %d %s", proto, rq.method, rq.target, rep.status, clip(string(rep.body), 160))
					}
					secrets.secretLeaks(f, proto+" "+rq.method+" "+rq.target, rep.body)
				}
			}
			if rep := sendRaw(addr, rawRequest{method: "GET", target: "/v1.0/metadata"}, 3*time.Second); rep.err == nil {
				res.spoke = append(res.spoke, "HTTP/1.1")
				checkHTTP("HTTP", func(rq rawRequest) rawReply { return sendRaw(addr, rq, 5*time.Second) })
			}
			if spoke, reached := grpcAnswers(addr, insecureCreds(), probes); spoke {
				res.spoke = append(res.spoke, "gRPC without TLS")
				for _, r := range reached {
					f.add("a gRPC call without credentials succeeded", "without TLS: %s", r)
				}
			}
			if speaksTLS(addr) {
				res.spoke = append(res.spoke, "TLS")
				for _, c := range []struct {
					name  string
					creds func() (bool, []string)
				}{
					{"TLS without a client certificate", func() (bool, []string) { return grpcAnswers(addr, tlsCreds(), probes) }},
					{"TLS with a self-signed client certificate", func() (bool, []string) { return grpcAnswers(addr, tlsCreds(selfSigned), probes) }},
				} {
					_, reached := c.creds()
					for _, r := range reached {
						f.add("a gRPC call without credentials succeeded", "%s: %s", c.name, r)
					}
				}
				checkHTTP("HTTPS", func(rq rawRequest) rawReply { return sendRawTLS(addr, rq, 5*time.Second) })
			}
			if len(res.spoke) == 0 {
				f.add("speaks no protocol this test can attack", "answers %s to HTTP/1.1 and neither gRPC (with or without TLS) nor TLS: teach TestHostileSockets its protocol", firstBytes(addr))
			}
		}
	}
	inParallel(8, jobs)
	for i, l := range ls {
		t.Run(l.name(), func(t *testing.T) {
			t.Logf("speaks %s", strings.Join(results[i].spoke, ", "))
			results[i].f.report(t, 5)
		})
	}
}

// probePath are the paths a socket may answer without credentials: health
// and metrics, for the runner, Kubernetes and Prometheus.
var probePath = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/v1.0/healthz": true, "/v1.0/healthz/outbound": true}

// storefrontFile reports whether rep is one of the storefront's static
// files, which the gateway serves to anyone at / and /assets/.
func storefrontFile(target string, rep rawReply) bool {
	ct := rep.header.Get("Content-Type")
	return (target == "/" && strings.HasPrefix(ct, "text/html")) ||
		(strings.HasPrefix(target, "/assets/") && (strings.HasPrefix(ct, "text/javascript") || strings.HasPrefix(ct, "text/css")))
}

// metricsText reports whether rep is Prometheus' text exposition, what the
// probe path /metrics answers.
func metricsText(rep rawReply) bool {
	ct := rep.header.Get("Content-Type")
	return strings.HasPrefix(ct, "text/plain; version=0.0.4") || strings.HasPrefix(ct, "application/openmetrics-text") ||
		strings.HasPrefix(string(rep.body), "# HELP ")
}

// socketHTTPProbes are what a local attacker asks any HTTP socket, without a
// token: the sidecar APIs (metadata, every secret, every app's state store,
// invocation, publishing) and every service's sensitive routes.
func socketHTTPProbes(victimUser string) []rawRequest {
	// The owner header too, as the gateway sends it to customers' routes.
	rq := func(method, target, body string) rawRequest {
		return rawRequest{method: method, target: target, body: body, header: [][2]string{{"X-User-ID", victimUser}}}
	}
	out := []rawRequest{
		rq("GET", "/v1.0/metadata", ""),
		rq("PUT", "/v1.0/metadata/hostile", `"x"`),
		rq("GET", "/v1.0/secrets/secrets/bulk", ""),
		rq("POST", "/v1.0/state/orders-store", `[{"key":"hostile-probe","value":1}]`),
		rq("GET", "/v1.0/invoke/payments/method/provider", ""),
		rq("GET", "/v1.0/invoke/orders/method/orders?user_id="+victimUser, ""),
		rq("POST", "/v1.0/publish/events/orders?metadata.cloudevent.id="+poisonPrefix+"hostile-"+randomHex(4), `{}`),
		rq("GET", "/orders?user_id="+victimUser, ""),
		rq("GET", "/orders/ord_000000000000000000000000", ""),
		rq("POST", "/orders", `{}`),
		rq("GET", "/provider", ""),
		rq("PUT", "/provider", `{"failure_rate":0}`),
		rq("GET", "/users/"+victimUser, ""),
		rq("POST", "/login", `{}`),
		rq("GET", "/notifications?user_id="+victimUser, ""),
		rq("GET", "/charges/ch_00000000000000000000", ""),
		rq("POST", "/charges", `{}`),
		rq("POST", "/refunds", `{}`),
		rq("POST", "/events/payments", `{}`),
		rq("POST", "/events/orders", `{}`),
		rq("GET", "/products", ""),
		rq("POST", "/products", `{}`),
		rq("GET", "/dapr/subscribe", ""),
		rq("GET", "/dapr/config", ""),
		rq("GET", "/debug/pprof/", ""),
		rq("GET", "/", ""),
	}
	for _, name := range slices.Sorted(maps.Keys(env.secrets)) {
		out = append(out, rq("GET", "/v1.0/secrets/secrets/"+name, ""))
	}
	for _, a := range env.run.Apps {
		out = append(out, rq("GET", "/v1.0/state/"+a.ID+"-store/x", ""))
	}
	for p := range probePath {
		out = append(out, rq("GET", p, ""))
	}
	return out
}

// TestHostileForgedEvents guards the class "an app that is not a topic's
// publisher makes its subscribers act": a forged event onto every topic
// (orders, payments, their dead-letter topics, the outbox topics) from every
// sidecar but the topic's publishers, with that sidecar's own token, over
// the HTTP and the gRPC API, must be refused (403 / PermissionDenied) and
// reach no subscriber; and a forged event delivered by service invocation
// to every subscription route of every app (what each sidecar's metadata
// lists), through every other sidecar, must be refused (403 /
// PermissionDenied) and change nothing: the victim's order, its payment,
// its stock and its notifications stay what the real events made them.
func TestHostileForgedEvents(t *testing.T) {
	admin := adminToken(t)
	a, aTok := signUp(t)
	p := newProduct(t, admin, 800, 10)
	placed, o, reply := placeOrder(t, aTok, orderItem{ProductID: p.ID, Quantity: 2})
	if placed != 201 || o.Status != "paid" {
		t.Fatalf("victim's order: %d %s", placed, reply)
	}
	mark := randomHex(6)
	forged := "e2e-forged-" + mark + "-"
	conns := sidecarConns(t)
	t.Cleanup(func() {
		if t.Failed() {
			awaitInvocation(t)
		}
	})
	data := func(typ string) map[string]any {
		return map[string]any{"type": typ, "order_id": o.ID, "user_id": a.ID, "status": statusOf(typ),
			"items": []any{map[string]any{"product_id": p.ID, "quantity": 2, "unit_price": 800}}, "total": 1600, "currency": "EUR",
			"charge_id": "ch_" + randomHex(10), "amount": 1600, "reason": "forged " + mark, "at": time.Now().UTC().Format(time.RFC3339Nano)}
	}

	// First the deliveries by invocation, while the victim's order is paid
	// and not yet confirmed: a forged payment.succeeded or order.cancelled
	// would still change it.
	t.Run("subscription routes refuse events delivered by service invocation", func(t *testing.T) {
		subs := subscriptionRoutes(t)
		var (
			f    findings
			jobs []func()
			n    int
		)
		for _, s := range subs {
			for _, typ := range eventTypes(s.topic) {
				for _, from := range env.run.Apps {
					if from.ID == s.app {
						continue
					}
					n++
					id := fmt.Sprintf("%s%d", forged, n)
					ev, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": s.topic, "type": typ, "topic": s.topic,
						"pubsubname": s.pubsub, "datacontenttype": "application/json", "data": data(typ)})
					method := strings.TrimPrefix(s.path, "/")
					what := fmt.Sprintf("%s to %s %s (topic %s) through %s's sidecar", typ, s.app, s.path, s.topic, from.ID)
					jobs = append(jobs, func() {
						url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/%s", from.DaprHTTPPort, s.app, method)
						code, body, err := post(url, string(ev), from.APIToken)
						if err != nil || code != http.StatusForbidden {
							f.add("a forged event delivered by HTTP invocation was not refused with 403", "%s: %d %s %v", what, code, clip(string(body), 160), err)
						}
					}, func() {
						ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "dapr-api-token", from.APIToken), 10*time.Second)
						defer cancel()
						_, err := runtimev1.NewDaprClient(conns[from.ID]).InvokeService(ctx, &runtimev1.InvokeServiceRequest{Id: s.app,
							Message: &commonv1.InvokeRequest{Method: method, ContentType: "application/json", Data: &anypb.Any{Value: ev},
								HttpExtension: &commonv1.HTTPExtension{Verb: commonv1.HTTPExtension_POST}}})
						if status.Code(err) != codes.PermissionDenied {
							f.add("a forged event delivered by gRPC invocation was not refused with PermissionDenied", "%s: %v", what, err)
						}
					})
				}
			}
		}
		inParallel(16, jobs)
		f.report(t, 4)
	})

	t.Run("topics refuse every publisher but their own", func(t *testing.T) {
		publishers, topics := pubsubScopes(t)
		var (
			f    findings
			jobs []func()
			n    int
		)
		for _, topic := range topics {
			typ := "order.cancelled"
			if strings.HasPrefix(topic, "payments") {
				typ = "payment.succeeded"
			}
			body, _ := json.Marshal(data(typ))
			for _, from := range env.run.Apps {
				if from.ID == "e2e-probe" || slices.Contains(publishers[from.ID], topic) {
					continue // the probe is the tests' own publisher
				}
				n++
				id := fmt.Sprintf("%s%d", forged, n)
				what := fmt.Sprintf("%s onto %s through %s's sidecar", typ, topic, from.ID)
				jobs = append(jobs, func() {
					url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/publish/events/%s?metadata.cloudevent.id=%s&metadata.cloudevent.type=%s", from.DaprHTTPPort, topic, id, typ)
					code, reply, err := post(url, string(body), from.APIToken)
					if err != nil || code != http.StatusForbidden {
						f.add("a forged event published over HTTP was not refused with 403", "%s: %d %s %v", what, code, clip(string(reply), 160), err)
					}
				}, func() {
					ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "dapr-api-token", from.APIToken), 10*time.Second)
					defer cancel()
					_, err := runtimev1.NewDaprClient(conns[from.ID]).PublishEvent(ctx, &runtimev1.PublishEventRequest{PubsubName: "events", Topic: topic,
						Data: body, DataContentType: "application/json", Metadata: map[string]string{"cloudevent.id": id + "g", "cloudevent.type": typ}})
					if status.Code(err) != codes.PermissionDenied {
						f.add("a forged event published over gRPC was not refused with PermissionDenied", "%s: %v", what, err)
					}
				})
			}
		}
		inParallel(16, jobs)
		// None reached a subscriber: events the probe's sidecar (a legitimate
		// publisher) sends after the forgeries arrive, the forgeries do not.
		sentinels := map[string]bool{}
		for _, topic := range probeTopics {
			id := "e2e-sentinel-" + mark + "-" + topic
			publish(t, topic, id, sentinelData(topic))
			sentinels[id] = true
		}
		eventually(t, 30*time.Second, func() string {
			missing := maps.Clone(sentinels)
			for _, ev := range env.probe.all() {
				delete(missing, ev.ID)
			}
			if len(missing) > 0 {
				return fmt.Sprintf("the probe has not received %v", slices.Sorted(maps.Keys(missing)))
			}
			return ""
		})
		for _, ev := range env.probe.all() {
			if strings.HasPrefix(ev.ID, forged) || bytes.Contains(ev.Data, []byte("forged "+mark)) {
				f.add("a forged event reached a subscriber", "event %s (%s) on %s", ev.ID, ev.Type, ev.Topic)
			}
		}
		f.report(t, 4)
	})

	t.Run("the victim's order, stock and notifications are what real events made them", func(t *testing.T) {
		cur := confirmedUncancelled(t, aTok, o.ID, "the victim's order")
		if cur.PaymentID != o.PaymentID {
			t.Errorf("the victim's order was settled with payment %s, not its own %s", cur.PaymentID, o.PaymentID)
		}
		if s := stockOf(t, p.ID); s != 8 {
			t.Errorf("stock %d after the victim's order of 2 from 10: a forged event moved it", s)
		}
		var (
			l struct{ Notifications []notification }
			f findings
		)
		gateway(t, aTok).mustCall(t, "GET", "/api/notifications", nil, 200, &l)
		for _, n := range l.Notifications {
			if strings.HasPrefix(n.ID, forged) {
				f.add("the victim got a forged notification", "%s %s: %s", n.ID, n.EventType, n.Message)
			}
		}
		f.report(t, 4)
	})
}

// confirmedUncancelled waits for the order id (what, in messages), read
// with its owner's token, to be confirmed, failing at once if it was
// cancelled, and returns it.
func confirmedUncancelled(t *testing.T, token, id, what string) order {
	t.Helper()
	var cur order
	eventually(t, 30*time.Second, func() string {
		gateway(t, token).mustCall(t, "GET", "/api/orders/"+id, nil, 200, &cur)
		if cur.Status == "cancelled" {
			t.Fatalf("%s was cancelled: %+v", what, cur)
		}
		if cur.Status != "confirmed" {
			return what + " is " + cur.Status
		}
		return ""
	})
	return cur
}

// statusOf is the order status an orders event type announces.
func statusOf(typ string) string {
	switch typ {
	case "order.created":
		return "pending"
	case "order.paid":
		return "paid"
	case "order.confirmed":
		return "confirmed"
	case "order.cancelled":
		return "cancelled"
	}
	return ""
}

// sentinelData is a valid, harmless event for topic: about an order and a
// user that do not exist, of a type the subscribers only record.
func sentinelData(topic string) map[string]any {
	at := time.Now().UTC().Format(time.RFC3339Nano)
	if strings.HasPrefix(topic, "payments") {
		return map[string]any{"type": "payment.declined", "charge_id": "ch_" + randomHex(10), "order_id": "ord_" + randomHex(12),
			"user_id": "usr_" + randomHex(12), "amount": 1, "currency": "EUR", "reason": "e2e sentinel", "at": at}
	}
	if strings.HasPrefix(topic, "shipments") {
		return map[string]any{"type": "shipment.delivered", "shipment_id": "shp_" + randomHex(12), "order_id": "ord_" + randomHex(12),
			"user_id": "usr_" + randomHex(12), "status": "delivered", "tracking_number": "DS0000000000000000", "at": at}
	}
	return map[string]any{"type": "order.paid", "order_id": "ord_" + randomHex(12), "user_id": "usr_" + randomHex(12), "status": "paid",
		"items": []any{}, "total": 1, "currency": "EUR", "at": at}
}

// post sends body to url with dapr-api-token, off the test's goroutine.
func post(url, body, token string) (int, []byte, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("dapr-api-token", token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), nil
}

// sidecarConns are gRPC connections to every sidecar's API, closed with the test.
func sidecarConns(t *testing.T) map[string]*grpc.ClientConn {
	t.Helper()
	out := map[string]*grpc.ClientConn{}
	for _, a := range env.run.Apps {
		cc, err := grpc.NewClient(fmt.Sprintf("passthrough:///127.0.0.1:%d", a.DaprGRPCPort), grpc.WithTransportCredentials(insecureCreds()))
		if err != nil {
			t.Fatal(err)
		}
		out[a.ID] = cc
		t.Cleanup(func() { cc.Close() })
	}
	return out
}

// subscription is one route an app's sidecar delivers a topic's events to.
type subscription struct{ app, pubsub, topic, path string }

// subscriptionRoutes asks every app's sidecar (but the probe's) which
// routes it delivers events to.
func subscriptionRoutes(t *testing.T) []subscription {
	t.Helper()
	var out []subscription
	for _, a := range env.run.Apps {
		if a.ID == "e2e-probe" {
			continue
		}
		status, body := sidecarGet(t, a.ID, "/v1.0/metadata")
		var md struct {
			Subscriptions []struct {
				PubsubName string `json:"pubsubname"`
				Topic      string `json:"topic"`
				Rules      []struct {
					Path string `json:"path"`
				} `json:"rules"`
			} `json:"subscriptions"`
		}
		if status != 200 || json.Unmarshal(body, &md) != nil {
			t.Fatalf("%s's metadata: %d %s", a.ID, status, body)
		}
		for _, s := range md.Subscriptions {
			for _, r := range s.Rules {
				out = append(out, subscription{a.ID, s.PubsubName, s.Topic, r.Path})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no sidecar lists a subscription: asking their metadata failed")
	}
	return out
}

// eventTypes are the event types of topic's JSON Schema
// (services/<topic>/events.schema.json), or a pair that matters to the
// subscribers for a topic without one.
func eventTypes(topic string) []string {
	publisher := map[string]string{"shipments": "shipping"}[topic]
	b, err := os.ReadFile(filepath.Join("..", "services", cmp.Or(publisher, topic), "events.schema.json"))
	var s struct {
		Properties struct {
			Type struct {
				Enum []string `json:"enum"`
			} `json:"type"`
		} `json:"properties"`
	}
	if err != nil || json.Unmarshal(b, &s) != nil || len(s.Properties.Type.Enum) == 0 {
		return []string{"order.cancelled", "payment.succeeded"}
	}
	return s.Properties.Type.Enum
}

// pubsubScopes reads the profile's pub/sub component as the repository
// ships it: who may publish which topic (publishingScopes), and every topic
// either scope names, plus the probe's.
func pubsubScopes(t *testing.T) (publishers map[string][]string, topics []string) {
	t.Helper()
	profile := env.profile
	if profile == faultsPass {
		profile = "redis"
	}
	files, _ := filepath.Glob(filepath.Join("..", "components", profile, "*.yaml"))
	set := map[string]bool{}
	for _, tp := range probeTopics {
		set[tp] = true
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			name := strings.TrimSpace(l)
			if (name != "- name: publishingScopes" && name != "- name: subscriptionScopes") || i+1 >= len(lines) {
				continue
			}
			value := strings.Trim(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[i+1]), "value:")), `"`)
			for _, entry := range strings.Split(value, ";") {
				app, list, _ := strings.Cut(entry, "=")
				var ts []string
				for _, tp := range strings.Split(list, ",") {
					if tp = strings.TrimSpace(tp); tp != "" {
						ts = append(ts, tp)
						set[tp] = true
					}
				}
				if name == "- name: publishingScopes" {
					if publishers == nil {
						publishers = map[string][]string{}
					}
					publishers[strings.TrimSpace(app)] = ts
				}
			}
		}
	}
	if publishers == nil {
		t.Fatalf("no publishingScopes in the %s profile's components: every app could publish every topic", profile)
	}
	topics = slices.Sorted(maps.Keys(set))
	return publishers, topics
}

// TestHostileCrossCustomer guards the class "a customer reaches another
// customer's data" (finding 3: GET /api/orders/<someone else's ID>%23
// returned their order). Customer B attacks every customers' route of the
// gateway's OpenAPI document with customer A's IDs, alone and followed by
// tricks that displace or cut what the gateway appends (%23, %3F, %2F..,
// #, ?user_id=A ...), with user_id=A in the query and in bodies, and with
// headers naming A (X-User-ID): B never sees A's data (a 2xx carries none
// of it, even what B sent), never acts on A's order (A's order and stock
// are what A's own actions made them), and every reply passes
// TestHostilePaths' checks.
func TestHostileCrossCustomer(t *testing.T) {
	var routes []apiRoute
	for _, r := range gatewayRoutes(t) {
		if r.access == "customer" {
			routes = append(routes, r)
		}
	}
	if len(routes) == 0 {
		t.Fatal("the gateway's OpenAPI document has no customers' routes")
	}
	admin := adminToken(t)
	a, aTok := signUp(t)
	b, bTok := signUp(t)
	p := newProduct(t, admin, 700, 10)   // A's
	q := newProduct(t, admin, 100, 1000) // what B orders
	status, o, reply := placeOrder(t, aTok, orderItem{ProductID: p.ID, Quantity: 2})
	if status != 201 || o.Status != "paid" {
		t.Fatalf("A's order: %d %s", status, reply)
	}
	aData := map[string]string{"email": a.Email, "user ID": a.ID, "order ID": o.ID, "payment ID": o.PaymentID}
	lc := leakCheck{secrets: runSecrets(), victim: aData}
	t.Cleanup(func() {
		if t.Failed() {
			awaitInvocation(t)
		}
	})

	type xcase struct {
		rq       rawRequest
		allow2xx bool
	}
	var cases []xcase
	headers := [][][2]string{nil, {{"X-User-ID", a.ID}}, {{"X-User-Id", a.ID}, {"X-Forwarded-User", a.ID}, {"X-Owner", a.ID}}}
	for _, r := range routes {
		bodies := []string{r.body}
		if r.method == "POST" || r.method == "PUT" {
			bodies = ownerBodies(r.body, q.ID, a.ID)
		}
		add := func(target string, queries []string, hs [][][2]string, allow bool) {
			for _, qs := range queries {
				for _, h := range hs {
					for _, body := range bodies {
						cases = append(cases, xcase{rawRequest{method: r.method, target: target + qs, header: append(bearer(bTok), h...), body: body}, allow})
					}
				}
			}
		}
		if len(r.params) == 0 {
			add(r.template, []string{"", "?user_id=" + a.ID, "?user_id=" + a.ID + "&user_id=" + a.ID, "?userId=" + a.ID, "?owner=" + a.ID}, headers, true)
			continue
		}
		for _, suffix := range crossTricks(a.ID) {
			target := r.fill(func(_, coll string) string {
				switch coll {
				case "orders":
					return o.ID + suffix
				case "users":
					return a.ID + suffix
				case "products":
					return p.ID + suffix
				}
				return o.ID + suffix
			})
			add(target, []string{"", "?user_id=" + a.ID}, headers[:2], false)
		}
	}

	t.Run(fmt.Sprintf("B attacks %d customers' routes in %d requests", len(routes), len(cases)), func(t *testing.T) {
		var f findings
		jobs := make([]func(), len(cases))
		for i, k := range cases {
			jobs[i] = func() {
				rep := sendRaw(gatewayAddr(), k.rq, 20*time.Second)
				lc.verdict(&f, "customer B", k.rq, rep, k.allow2xx)
				if rep.err == nil && rep.status/100 == 2 {
					for _, what := range slices.Sorted(maps.Keys(aData)) {
						if strings.Contains(string(rep.body), aData[what]) {
							f.add("A's data in a 2xx to B", "%s %s -> %d with A's %s: %s", k.rq.method, clip(k.rq.target, 120), rep.status, what, clip(string(rep.body), 200))
							break
						}
					}
					if strings.Contains(string(rep.body), `"user_id":"`) && !strings.Contains(string(rep.body), b.ID) {
						f.add("a 2xx to B about someone else", "%s %s -> %d %s", k.rq.method, clip(k.rq.target, 120), rep.status, clip(string(rep.body), 200))
					}
				}
			}
		}
		inParallel(16, jobs)
		f.report(t, 4)
	})

	t.Run("A's order and stock are what A did", func(t *testing.T) {
		cur := confirmedUncancelled(t, aTok, o.ID, "A's order")
		if cur.UserID != a.ID || cur.PaymentID != o.PaymentID {
			t.Errorf("A's order changed hands or payment: %+v", cur)
		}
		if s := stockOf(t, p.ID); s != 8 {
			t.Errorf("stock of A's product %d, want 8 (10 less A's 2)", s)
		}
	})
}

// crossTricks are what B appends to A's ID to displace or cut what the
// gateway adds after it (the owner): fragments, second queries, climbs.
func crossTricks(aUser string) []string {
	return []string{"", "%23", "%3F", "%3f", "%3F&", "%3Fuser_id=" + aUser, "%3F&user_id=" + aUser, "%23user_id=" + aUser,
		"%2F..", "%2f..%2f", "%252F..", "%252f..%252f", "%2F%2E%2E", "#", "#/..", "?user_id=" + aUser, "%3B", ";user_id=" + aUser,
		"%00", "%2500", "%26user_id%3D" + aUser, "%2523", "%253F", "%253Fuser_id%253D" + aUser, "%0d%0aX-User-ID:%20" + aUser,
		"/", "/.", "%09", "%20"}
}

// ownerBodies are the bodies B sends to a writing route: the route's own
// example (its product IDs set to product), and the same with user_id set
// to A at the top, inside each item, and twice.
func ownerBodies(example, product, aUser string) []string {
	out := []string{`{"user_id":"` + aUser + `"}`}
	var m map[string]any
	if example == "" || json.Unmarshal([]byte(example), &m) != nil {
		return append(out, "")
	}
	var setProduct func(v any)
	setProduct = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "product_id" {
					x[k] = product
				} else {
					setProduct(e)
				}
			}
		case []any:
			for _, e := range x {
				setProduct(e)
			}
		}
	}
	setProduct(m)
	own, _ := json.Marshal(m)
	out = append(out, string(own))
	m["user_id"] = aUser
	withUser, _ := json.Marshal(m)
	out = append(out, string(withUser))
	out = append(out, strings.TrimSuffix(string(withUser), "}")+`,"user_id":"`+aUser+`"}`)
	if items, ok := m["items"].([]any); ok {
		delete(m, "user_id")
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				im["user_id"] = aUser
			}
		}
		inItems, _ := json.Marshal(m)
		out = append(out, string(inItems))
	}
	return out
}

// TestHostileClientErrorsOpenNoBreaker guards the class "a client's mistake
// counts as a failure of the service" (finding 4: two GET
// /api/products?limit=0 made every catalog read answer 503 for 10 s; an
// admin's validation error came back as 503): client errors, in bursts,
// each get their own 4xx, the next valid request succeeds, orders' circuit
// breakers stay closed, and no sidecar opened a breaker or retried a call
// to an app meanwhile.
func TestHostileClientErrorsOpenNoBreaker(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	p := newProduct(t, admin, 100, 1000)
	short := newProduct(t, admin, 100, 1)
	before := resiliencyTrips(t)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// Leave no breaker open behind: the sidecars' close once they reach
		// the apps again, orders' own once an order goes through.
		awaitInvocation(t)
		eventually(t, 45*time.Second, func() string {
			if status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 1}); status != 201 || o.Status != "paid" {
				return fmt.Sprintf("an order after the test: %d %s", status, reply)
			}
			return ""
		})
	})
	expect := func(f *findings, what string, status int, reply []byte, want int, code string) {
		if got, _ := errorCode(reply); status != want || got != code {
			f.add("a client error not answered as one", "%s: %d %s, want %d %s", what, status, clip(string(reply), 160), want, code)
		}
	}

	t.Run("catalog: 20 x limit=0, then a page", func(t *testing.T) {
		var f findings
		for i := range 20 {
			status, reply := gateway(t, "").call(t, "GET", "/api/products?limit=0", nil)
			expect(&f, fmt.Sprintf("GET /api/products?limit=0 #%d", i+1), status, reply, 400, "invalid")
		}
		if status, reply := gateway(t, "").call(t, "GET", "/api/products", nil); status != 200 {
			f.add("a valid request refused after client errors", "GET /api/products: %d %s", status, clip(string(reply), 160))
		}
		f.report(t, 3)
	})

	t.Run("admin: 20 invalid products, then a valid one", func(t *testing.T) {
		var f findings
		for i := range 20 {
			status, reply := gateway(t, admin).call(t, "POST", "/api/products", map[string]any{"name": "x", "price": -1, "currency": "EUR", "stock": 1})
			expect(&f, fmt.Sprintf("POST /api/products with price -1 #%d", i+1), status, reply, 400, "invalid")
		}
		if status, reply := gateway(t, admin).call(t, "POST", "/api/products", map[string]any{"name": "E2E valid " + randomHex(3), "price": 1, "currency": "EUR", "stock": 1}); status != 201 {
			f.add("a valid request refused after client errors", "POST /api/products: %d %s", status, clip(string(reply), 160))
		}
		f.report(t, 3)
	})

	t.Run("orders: 20 that products refuses, then a valid one", func(t *testing.T) {
		var f findings
		// One unknown product for all: Dapr keys its breakers by endpoint.
		unknown := "prd_" + randomHex(12)
		for i := range 10 {
			status, _, reply := placeOrder(t, tok, orderItem{ProductID: unknown, Quantity: 1})
			expect(&f, fmt.Sprintf("an order of an unknown product #%d", i+1), status, reply, 400, "invalid")
		}
		for i := range 10 {
			// Stock short: refused as a conflict, or cancelled "out of stock".
			status, o, reply := placeOrder(t, tok, orderItem{ProductID: short.ID, Quantity: 2})
			code, _ := errorCode(reply)
			if !(status == 409 && code == "conflict") && !(status == 201 && o.Status == "cancelled" && strings.HasPrefix(o.CancelReason, "out of stock")) {
				f.add("a client error not answered as one", "an order above stock #%d: %d %s, want 409 conflict or 201 cancelled out of stock", i+1, status, clip(string(reply), 160))
			}
		}
		if status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 1}); status != 201 || o.Status != "paid" {
			f.add("a valid request refused after client errors", "an order in stock: %d %s", status, clip(string(reply), 160))
		}
		vs, err := samples(env.run.App("orders").AppPort, "circuit_breaker_state")
		if err != nil || len(vs) == 0 {
			f.add("orders' breaker state unreadable", "circuit_breaker_state on orders' /metrics: %v %v", vs, err)
		}
		for _, v := range vs {
			if v != 0 {
				f.add("orders' circuit breaker opened on client errors", "circuit_breaker_state %v (0 closed, 1 half-open, 2 open)", vs)
				break
			}
		}
		f.report(t, 3)
	})

	t.Run("no sidecar opened a breaker or retried a call to an app", func(t *testing.T) {
		after := resiliencyTrips(t)
		for _, id := range slices.Sorted(maps.Keys(after)) {
			d := [2]float64{after[id][0] - before[id][0], after[id][1] - before[id][1]}
			if d[0] > 0 {
				t.Errorf("%s's sidecar opened a circuit breaker %.0f time(s) on client errors", id, d[0])
			}
			if d[1] > 0 {
				t.Errorf("%s's sidecar retried calls to apps %.0f time(s) on client errors", id, d[1])
			}
		}
	})
}

// resiliencyTrips reads, per sidecar, how often a circuit breaker opened and
// how often a call to an app was retried (dapr_resiliency_activations_total).
func resiliencyTrips(t *testing.T) map[string][2]float64 {
	t.Helper()
	out := map[string][2]float64{}
	for _, a := range env.run.Apps {
		opened, err := samples(a.MetricsPort, "dapr_resiliency_activations_total", `policy="circuitbreaker"`, `status="open"`)
		if err != nil {
			t.Fatal(err)
		}
		retried, err := samples(a.MetricsPort, "dapr_resiliency_activations_total", `policy="retry"`, `target="app_`)
		if err != nil {
			t.Fatal(err)
		}
		out[a.ID] = [2]float64{sum(opened), sum(retried)}
	}
	return out
}

func sum(vs []float64) float64 {
	s := 0.0
	for _, v := range vs {
		s += v
	}
	return s
}
