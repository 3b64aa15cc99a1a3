package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// What the hostile tests (hostile_test.go) share for talking HTTP the way an
// attacker does and for judging what comes back.

// rawRequest is one HTTP/1.1 request written byte for byte: nothing on the
// way normalises its target (curl --path-as-is).
type rawRequest struct {
	method, target string
	header         [][2]string
	body           string
}

// rawReply is what came back (err: nothing usable did).
type rawReply struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// sendRaw writes rq on a new connection to addr and reads the reply, giving
// up after timeout.
func sendRaw(addr string, rq rawRequest, timeout time.Duration) rawReply {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return rawReply{err: err}
	}
	defer conn.Close()
	return sendOn(conn, addr, rq, timeout)
}

// sendOn is sendRaw on an open connection.
func sendOn(conn net.Conn, addr string, rq rawRequest, timeout time.Duration) rawReply {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: e2e-hostile\r\n", rq.method, rq.target, addr)
	for _, h := range rq.header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if rq.body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(rq.body))
	}
	b.WriteString("\r\n")
	b.WriteString(rq.body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return rawReply{err: err}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.ToUpper(rq.method)})
	if err != nil {
		return rawReply{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return rawReply{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

// bearer is the Authorization header of token ("" for none).
func bearer(token string) [][2]string {
	if token == "" {
		return nil
	}
	return [][2]string{{"Authorization", "Bearer " + token}}
}

// findings collects failures by class and reports only the first few of
// each, so that a hole hit by a thousand requests stays readable.
type findings struct {
	mu      sync.Mutex
	byClass map[string][]string
}

// add records one failure of class.
func (f *findings) add(class, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byClass == nil {
		f.byClass = map[string][]string{}
	}
	f.byClass[class] = append(f.byClass[class], fmt.Sprintf(format, args...))
}

// report fails t once per class with at most limit examples.
func (f *findings) report(t *testing.T, limit int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, class := range slices.Sorted(maps.Keys(f.byClass)) {
		all := f.byClass[class]
		shown := all[:min(limit, len(all))]
		more := ""
		if len(all) > len(shown) {
			more = fmt.Sprintf("\n    ... and %d more", len(all)-len(shown))
		}
		t.Errorf("%s: %d case(s):\n    %s%s", class, len(all), strings.Join(shown, "\n    "), more)
	}
}

// inParallel runs every job, at most n at a time, and returns when all are done.
func inParallel(n int, jobs []func()) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j()
		}()
	}
	wg.Wait()
}

// leakCheck knows what no reply may carry: this run's secrets (never sent
// by anyone, so never legitimately echoed) and a victim's data (which a
// reply may echo only when the caller itself sent it, e.g. an order ID in a
// "not found").
type leakCheck struct {
	secrets map[string]string // what -> value
	victim  map[string]string // what -> value
}

// runSecrets are this run's secrets: the secret store's values and every
// sidecar's API and app tokens.
func runSecrets() map[string]string {
	out := map[string]string{}
	for k, v := range env.secrets {
		out["secret "+k] = v
	}
	for _, a := range env.run.AllInstances() {
		out[a.Name+"'s DAPR_API_TOKEN"] = a.APIToken
		out[a.Name+"'s APP_API_TOKEN"] = a.AppToken
	}
	return out
}

// daprWords are what daprd (or gRPC) says, never a service: their presence
// in a reply means a sidecar's error reached the client.
var daprWords = []string{"ERR_", "rpc error", "desc =", "invoke/", "grpc", "dapr"}

// internalPath finds a path of a sidecar API or of a service behind the
// gateway: /v1.0 anywhere, or a service route not under the public /api
// prefix (the character before the slash is not part of a word, so
// "/api/orders" does not match but "on /orders/ord_..." does).
var internalPath = regexp.MustCompile(`/v1\.0|(?:^|[^A-Za-z0-9_])/(?:orders|users|products|notifications|charges|refunds|provider|events|reservations|login|dapr)(?:/|\?|"|\s|$)`)

// verdict checks one reply of the gateway: no redirect, no 5xx, no 2xx unless
// allowed, an error in the error model, and no leak.
func (lc leakCheck) verdict(f *findings, who string, rq rawRequest, rep rawReply, allow2xx bool) {
	req := fmt.Sprintf("%s: %s %s", who, rq.method, clip(rq.target, 160))
	switch {
	case rep.err != nil:
		f.add("no HTTP reply (the connection failed or the reply was not HTTP)", "%s: %v", req, rep.err)
		return
	case rep.status/100 == 3:
		f.add("3xx: a redirect (a client or a sidecar client following it goes elsewhere)", "%s -> %d Location %q", req, rep.status, rep.header.Get("Location"))
	case rep.status/100 == 5:
		f.add("5xx for a client's request (must be a 4xx)", "%s -> %d %s", req, rep.status, clip(string(rep.body), 200))
	case rep.status/100 == 2 && !allow2xx:
		f.add("2xx for a trick (must be a 4xx)", "%s -> %d %s", req, rep.status, clip(string(rep.body), 200))
	case rep.status/100 != 2 && !errorModel(rep.body) && !serverRejection(rep):
		f.add(`error body not in the error model {"error":{"code","message"}}`, "%s -> %d %q", req, rep.status, clip(string(rep.body), 200))
	}
	lc.leaks(f, req, rq, rep.body)
}

// leaks reports what body carries that it must not.
func (lc leakCheck) leaks(f *findings, req string, rq rawRequest, body []byte) {
	lc.secretLeaks(f, req, body)
	s := string(body)
	for what, v := range lc.victim {
		if v != "" && strings.Contains(s, v) && !sent(rq, v) {
			f.add("another user's data in a reply", "%s -> the victim's %s in %q", req, what, clip(s, 200))
		}
	}
	rest := scrub(s, rq)
	low := strings.ReplaceAll(strings.ToLower(rest), "daprshop", "")
	for _, w := range daprWords {
		if strings.Contains(low, strings.ToLower(w)) {
			f.add("daprd's or gRPC's words in a reply", "%s -> %q in %q", req, w, clip(s, 200))
			break
		}
	}
	if m := internalPath.FindString(rest); m != "" {
		f.add("an internal path in a reply", "%s -> %q in %q", req, strings.TrimSpace(m), clip(s, 200))
	}
}

// secretLeaks reports a secret of the run in body.
func (lc leakCheck) secretLeaks(f *findings, req string, body []byte) {
	s := string(body)
	for what, v := range lc.secrets {
		if len(v) >= 6 && strings.Contains(s, v) {
			f.add("a secret of this run in a reply", "%s -> %s in %q", req, what, clip(s, 200))
		}
	}
}

// errorModel reports whether b is {"error":{"code":"...","message":"..."}}.
func errorModel(b []byte) bool {
	var e struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error != nil && e.Error.Code != nil && *e.Error.Code != "" && e.Error.Message != nil
}

// serverRejection reports whether rep is net/http's own answer to a request
// it could not parse ("400 Bad Request: ..."), written before any handler
// runs: no service could answer it in the error model.
func serverRejection(rep rawReply) bool {
	prefix := fmt.Sprintf("%d %s", rep.status, http.StatusText(rep.status))
	return rep.status/100 == 4 && strings.HasPrefix(string(rep.body), prefix) && len(rep.body) < 200
}

// sent reports whether the caller itself put v in the request (in any
// segment of its path, any header, the body), in any encoding it may be
// decoded to.
func sent(rq rawRequest, v string) bool {
	for _, s := range reflections(rq, true) {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// reflections are the strings a reply may echo of rq: its whole target
// (and, with segments, each segment of it), headers and body, each decoded
// up to four times, cut at ? # ;, cleaned as a path, and quoted the way Go's
// %q and JSON quote them. Longest first.
func reflections(rq rawRequest, segments bool) []string {
	seeds := []string{rq.target, rq.body}
	if segments {
		seeds = append(seeds, strings.Split(rq.target, "/")...)
	}
	for _, h := range rq.header {
		seeds = append(seeds, h[1])
	}
	set := map[string]bool{}
	add := func(s string) {
		if len(s) < 4 {
			return
		}
		set[s] = true
		q := strconv.Quote(s)
		set[q[1:len(q)-1]] = true
		j, _ := json.Marshal(s)
		set[string(j[1:len(j)-1])] = true
		jq, _ := json.Marshal(q[1 : len(q)-1])
		set[string(jq[1:len(jq)-1])] = true
	}
	for _, s := range seeds {
		for _, d := range decodings(s) {
			add(d)
			add(path.Clean(d))
			for _, sep := range []string{"?", "#", ";"} {
				before, _, found := strings.Cut(d, sep)
				if found {
					add(before)
					add(path.Clean(before))
				}
			}
		}
	}
	out := slices.Collect(maps.Keys(set))
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// decodings returns s and what percent-decoding it again and again gives.
func decodings(s string) []string {
	out := []string{s}
	for range 4 {
		d, err := url.PathUnescape(s)
		if err != nil || d == s {
			break
		}
		s = d
		out = append(out, s)
	}
	return out
}

// scrub removes from body every echo of the request's whole path (and of
// its headers and body): the gateway quoting the caller's own /api path is
// not a leak. A part of it is not removed: a service quoting the path it
// was asked for (/orders/ord_.../cancel) is.
func scrub(body string, rq rawRequest) string {
	for _, r := range reflections(rq, false) {
		body = strings.ReplaceAll(body, r, " ")
	}
	return body
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// apiRoute is one operation of the gateway's OpenAPI document.
type apiRoute struct {
	method   string
	template string   // e.g. /api/orders/{id}
	access   string   // public, customer or admin
	body     string   // an example body built from the schema ("" for none)
	params   []string // path parameters
}

// gatewayRoutes reads every operation of services/gateway/openapi.yaml: a
// route added there is attacked without touching the tests. An operation
// with security is for signed-in users; one that documents a 403 is for
// admins.
func gatewayRoutes(t *testing.T) []apiRoute {
	t.Helper()
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	doc, err := loader.LoadFromFile("../services/gateway/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []apiRoute
	for tmpl, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			r := apiRoute{method: method, template: tmpl, access: "public"}
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			if len(sec) > 0 {
				r.access = "customer"
				if op.Responses != nil && op.Responses.Value("403") != nil {
					r.access = "admin"
				}
			}
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if p.Value != nil && p.Value.In == openapi3.ParameterInPath {
					r.params = append(r.params, p.Value.Name)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil && mt.Schema.Value != nil {
					b, _ := json.Marshal(example(mt.Schema.Value, 0))
					r.body = string(b)
				}
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Fatal("the gateway's OpenAPI document has no operations")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].template+out[i].method < out[j].template+out[j].method })
	return out
}

// example builds the smallest value s describes: required properties only,
// minimums, strings of the minimum length.
func example(s *openapi3.Schema, depth int) any {
	if s == nil || depth > 6 {
		return nil
	}
	switch {
	case s.Example != nil:
		return s.Example
	case len(s.Enum) > 0:
		return s.Enum[0]
	case s.Type.Is("object"):
		m := map[string]any{}
		for _, name := range s.Required {
			if p := s.Properties[name]; p != nil {
				m[name] = example(p.Value, depth+1)
			}
		}
		return m
	case s.Type.Is("array"):
		n := max(int(s.MinItems), 1)
		out := make([]any, n)
		for i := range out {
			if s.Items != nil {
				out[i] = example(s.Items.Value, depth+1)
			}
		}
		return out
	case s.Type.Is("integer"), s.Type.Is("number"):
		if s.Min != nil {
			return int64(*s.Min)
		}
		return 1
	case s.Type.Is("boolean"):
		return false
	default:
		return strings.Repeat("x", max(int(s.MinLength), 1))
	}
}

// fill returns the route's path with each parameter's value from value,
// which learns the collection the parameter names (the segment before it).
func (r apiRoute) fill(value func(param, collection string) string) string {
	segs := strings.Split(r.template, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			coll := ""
			if i > 0 {
				coll = segs[i-1]
			}
			segs[i] = value(s[1:len(s)-1], coll)
		}
	}
	return strings.Join(segs, "/")
}

// resolves returns the route of routes a normalising router would take
// target for, with method: the path decoded once, dot segments removed, a
// trailing slash dropped, and every path parameter one of public.
func resolves(method, target string, routes []apiRoute, public map[string]bool) (apiRoute, bool) {
	if rest, ok := strings.CutPrefix(target, "http://"); ok {
		_, p, found := strings.Cut(rest, "/")
		if !found {
			return apiRoute{}, false
		}
		target = "/" + p
	}
	p, _, _ := strings.Cut(target, "?")
	dec, err := url.PathUnescape(p)
	if err != nil || !strings.HasPrefix(dec, "/") {
		return apiRoute{}, false
	}
	segs := strings.Split(path.Clean(dec), "/")
	for _, r := range routes {
		ts := strings.Split(r.template, "/")
		if r.method != method || len(ts) != len(segs) {
			continue
		}
		match := true
		for i := range ts {
			if strings.HasPrefix(ts[i], "{") {
				match = match && public[segs[i]]
			} else {
				match = match && ts[i] == segs[i]
			}
		}
		if match {
			return r, true
		}
	}
	return apiRoute{}, false
}

// caller is who sends a request to the gateway.
type caller struct {
	name, token, role string // role: public (anonymous), customer or admin
}

// may reports whether c is entitled to use r at all.
func (c caller) may(r apiRoute) bool {
	switch r.access {
	case "public":
		return true
	case "customer":
		return c.role == "customer" || c.role == "admin"
	default:
		return c.role == r.access
	}
}

// callersOf are the callers to send r's attacks as: anyone, a customer, and
// an admin on the admins' routes.
func callersOf(r apiRoute, all []caller) []caller {
	var out []caller
	for _, c := range all {
		if c.role != "admin" || r.access == "admin" {
			out = append(out, c)
		}
	}
	return out
}

// victim is a customer with an order, its payment and notifications: what
// no other caller may ever see.
type victim struct {
	user    user
	token   string
	product product
	order   order
	notes   []notification
}

// newVictim signs a customer up and has it order from a product of its own
// and receive its notifications.
func newVictim(t *testing.T, admin string) victim {
	t.Helper()
	v := victim{}
	v.user, v.token = signUp(t)
	v.product = newProduct(t, admin, 1234, 10)
	status, o, reply := placeOrder(t, v.token, orderItem{ProductID: v.product.ID, Quantity: 2})
	if status != 201 || o.Status != "paid" {
		t.Fatalf("victim's order: %d %s", status, reply)
	}
	v.order = o
	eventually(t, 20*time.Second, func() string {
		var l struct{ Notifications []notification }
		gateway(t, v.token).mustCall(t, "GET", "/api/notifications", nil, 200, &l)
		if len(l.Notifications) == 0 {
			return "the victim has no notification yet"
		}
		v.notes = l.Notifications
		return ""
	})
	return v
}

// data is what of the victim no one else may see.
func (v victim) data() map[string]string {
	m := map[string]string{"email": v.user.Email, "user ID": v.user.ID, "order ID": v.order.ID, "payment ID": v.order.PaymentID}
	for i, n := range v.notes {
		m[fmt.Sprintf("notification %d", i)] = n.Message
		m[fmt.Sprintf("notification ID %d", i)] = n.ID
	}
	return m
}

// awaitInvocation waits, after a test that failed, until every sidecar
// reaches every app again (their circuit breakers closed), so that the tests
// after it are not judged on a breaker it tripped.
func awaitInvocation(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	eventually(t, 45*time.Second, func() string {
		for _, from := range env.run.Apps {
			for _, to := range env.run.Apps {
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/healthz", from.DaprHTTPPort, to.ID), nil)
				req.Header.Set("dapr-api-token", from.APIToken)
				resp, err := client.Do(req)
				if err != nil {
					return err.Error()
				}
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					return fmt.Sprintf("%s cannot invoke %s yet: %d", from.ID, to.ID, resp.StatusCode)
				}
			}
		}
		return ""
	})
}
