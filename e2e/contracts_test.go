package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// contracts are the suite's published contracts: an OpenAPI document per
// service and a JSON Schema per topic. Every response the tests get and every
// event the probe sees is checked against them.
type contracts struct {
	routers map[string]routers.Router     // app ID -> router over its OpenAPI document
	topics  map[string]*jsonschema.Schema // topic -> schema of its event data

	mu       sync.Mutex
	checked  map[string]int // "app METHOD path-template status" -> count
	failures []string
}

// fresh returns the contracts with nothing checked yet.
func (c *contracts) fresh() *contracts {
	return &contracts{routers: c.routers, topics: c.topics, checked: map[string]int{}}
}

// loadContracts reads services/*/openapi.yaml and services/*/events.schema.json.
func loadContracts(root string) (*contracts, error) {
	c := &contracts{routers: map[string]routers.Router{}, topics: map[string]*jsonschema.Schema{}, checked: map[string]int{}}
	docs, _ := filepath.Glob(filepath.Join(root, "services", "*", "openapi.yaml"))
	if len(docs) == 0 {
		return nil, fmt.Errorf("no services/*/openapi.yaml under %s", root)
	}
	for _, p := range docs {
		loader := openapi3.NewLoader()
		loader.IsExternalRefsAllowed = true
		doc, err := loader.LoadFromFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", p, err)
		}
		doc.Servers = nil // match any host: the suite runs on free ports
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		c.routers[filepath.Base(filepath.Dir(p))] = r
	}
	comp := jsonschema.NewCompiler()
	comp.AssertFormat()
	for topic, p := range map[string]string{"orders": "orders", "payments": "payments", "shipments": "shipping"} {
		file := filepath.Join(root, "services", p, "events.schema.json")
		abs, _ := filepath.Abs(file)
		raw, err := os.ReadFile(abs)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if err := comp.AddResource(abs, doc); err != nil {
			return nil, err
		}
		s, err := comp.Compile(abs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		c.topics[topic] = s
	}
	return c, nil
}

// checkResponse validates one response of app to req against app's document.
func (c *contracts) checkResponse(app string, req *http.Request, status int, header http.Header, body []byte) {
	r, ok := c.routers[app]
	if !ok {
		c.fail("no OpenAPI document for %s", app)
		return
	}
	route, params, err := r.FindRoute(req)
	if err != nil {
		c.fail("%s %s %s: not in %s's OpenAPI document: %v", app, req.Method, req.URL.Path, app, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	c.mu.Lock()
	c.checked[fmt.Sprintf("%s %s %s %d", app, req.Method, route.Path, status)]++
	c.mu.Unlock()
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.fail("%s %s %s -> %d %s: %v", app, req.Method, req.URL.Path, status, truncate(body), err)
	}
}

// checkEvent validates an event's data against its topic's schema.
func (c *contracts) checkEvent(ev cloudEvent) {
	s, ok := c.topics[ev.Topic]
	if !ok || strings.HasPrefix(ev.ID, poisonPrefix) {
		return // dead-letter topics carry whatever failed; poison is wrong on purpose
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(ev.Data))
	if err != nil {
		c.fail("event %s on %s: data is not JSON: %v", ev.ID, ev.Topic, err)
		return
	}
	if err := s.Validate(v); err != nil {
		c.fail("event %s on %s does not match its schema: %#v\n%s", ev.ID, ev.Topic, err, truncate(ev.Data))
	}
}

// poisonPrefix marks the IDs of events the tests publish malformed on purpose.
const poisonPrefix = "e2e-poison-"

func (c *contracts) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

// client talks to one app, either directly (the gateway's public port) or
// through a sidecar by invocation, and checks every reply against the app's
// OpenAPI document.
type client struct {
	app     string
	base    string // URL prefix up to the app's own paths
	token   string // bearer token for the gateway
	sidecar string // dapr-api-token for a sidecar
	owner   string // X-User-ID: the user a service's customer route acts for
}

// ownerHeader names the user a service's customer route acts for
// (lib/web.OwnerHeader); the gateway sets it from the caller's token.
const ownerHeader = "X-User-ID"

// as returns c acting for userID on a service's customer routes, as the
// gateway would for a signed-in user.
func (c client) as(userID string) client {
	c.owner = userID
	return c
}

// gateway returns a client of the public API, signed in with token (may be "").
func gateway(t *testing.T, token string) client {
	t.Helper()
	return client{app: "gateway", base: env.gatewayURL(), token: token}
}

// invoke returns a client of app through the probe's sidecar (service invocation).
func invoke(t *testing.T, app string) client {
	t.Helper()
	p := env.run.App("e2e-probe")
	return client{app: app, base: fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method", p.DaprHTTPPort, app), sidecar: p.APIToken}
}

// call sends body (a JSON string, or any value to marshal; nil for none) and
// returns the status and the reply, after checking it against the contract.
func (c client) call(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.sidecar != "" {
		req.Header.Set("dapr-api-token", c.sidecar)
	}
	if c.owner != "" {
		req.Header.Set(ownerHeader, c.owner)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	// Validate as the app sees the request: its own path, its own host.
	appReq, _ := http.NewRequest(method, "http://app"+path, bytes.NewReader(raw))
	appReq.Header = req.Header.Clone()
	env.spec.checkResponse(c.app, appReq, resp.StatusCode, resp.Header, reply)
	return resp.StatusCode, reply
}

// mustCall is call that fails the test unless the status is want, and decodes
// the reply into out (may be nil).
func (c client) mustCall(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	status, reply := c.call(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s %s: %d %s, want %d", c.app, method, path, status, reply, want)
	}
	if out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			t.Fatalf("decoding %s: %v", reply, err)
		}
	}
}

// sidecarGet reads url from app's sidecar with its API token.
func sidecarGet(t *testing.T, app, path string) (int, []byte) {
	t.Helper()
	a := env.run.App(app)
	return rawCall(t, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", a.DaprHTTPPort, path), "", a.APIToken)
}

// rawCall sends body with header dapr-api-token (when token is set), no checks.
func rawCall(t *testing.T, method, url, body, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("dapr-api-token", token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// errorCode returns the code of an error reply.
func errorCode(reply []byte) (code string, fields []string) {
	var e struct {
		Error struct {
			Code   string `json:"code"`
			Fields []struct {
				Field string `json:"field"`
			} `json:"fields"`
		} `json:"error"`
	}
	_ = json.Unmarshal(reply, &e)
	for _, f := range e.Error.Fields {
		fields = append(fields, f.Field)
	}
	return e.Error.Code, fields
}

// eventually retries check until it returns "" or within passes.
func eventually(t *testing.T, within time.Duration, check func() string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	last := ""
	for {
		msg := check()
		if msg == "" {
			// A slow wait is worth knowing about before it becomes a timeout.
			if took := time.Since(start); took > within/3 {
				t.Logf("waited %s of %s for: %s", took.Round(100*time.Millisecond), within, last)
			}
			return
		}
		last = msg
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
