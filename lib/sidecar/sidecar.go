// Package sidecar is how a service reaches its Dapr sidecar: a go-sdk client on
// daprd's gRPC API for state, pub/sub and secrets, and an HTTP client for service
// invocation through daprd (/v1.0/invoke/<app>/method/<path>), which keeps the
// callee's HTTP status and JSON error body intact and never follows a
// redirect. Both send DAPR_API_TOKEN. (The gRPC client has no redirects to
// follow, and service invocation does not go through it.)
package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/retry"
	"github.com/daprshop/suite/lib/tracecontext"
)

// Config is the sidecar part of every service's configuration, under the
// names the runner and the Dapr CLI set.
type Config struct {
	HTTPPort int    `env:"DAPR_HTTP_PORT" default:"3500"`
	GRPCPort int    `env:"DAPR_GRPC_PORT" default:"50001"`
	APIToken string `env:"DAPR_API_TOKEN" secret:"true"`
}

// Dial returns a go-sdk client for the sidecar's gRPC API whose calls obs
// observes (nil: none).
func (c Config) Dial(obs Observer) (dapr.Client, error) {
	return Dial(Local(c.GRPCPort), c.APIToken, obs)
}

// HTTP returns a client of the sidecar's HTTP API whose calls obs observes
// (nil: none).
func (c Config) HTTP(timeout time.Duration, obs Observer) *HTTP {
	h := NewHTTP(Local(c.HTTPPort), c.APIToken, timeout)
	h.obs = obs
	return h
}

// Observer records every call to the sidecar: its operation (invoke,
// state_get, state_save, state_bulk_get, state_transaction, secret, publish,
// or the gRPC method), its target (app ID or component name), its outcome
// (ok, client_error, server_error, unavailable) and how long it took.
// metrics.Metrics is one.
type Observer interface {
	ObserveCall(op, target, outcome string, d time.Duration)
}

// grpcOps names the gRPC methods of the Dapr API the services use.
var grpcOps = map[string]string{
	"GetState": "state_get", "GetBulkState": "state_bulk_get", "SaveState": "state_save", "DeleteState": "state_delete",
	"ExecuteStateTransaction": "state_transaction", "GetSecret": "secret", "PublishEvent": "publish",
}

// grpcTarget names the component a gRPC request is for.
func grpcTarget(req any) string {
	switch r := req.(type) {
	case interface{ GetStoreName() string }:
		return r.GetStoreName()
	case interface{ GetPubsubName() string }:
		return r.GetPubsubName()
	}
	return ""
}

// grpcOutcome classifies a gRPC error like an HTTP status.
func grpcOutcome(err error) string {
	switch status.Code(err) {
	case codes.OK:
		return "ok"
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted,
		codes.PermissionDenied, codes.Unauthenticated, codes.OutOfRange:
		return "client_error"
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return "unavailable"
	}
	return "server_error"
}

// httpOutcome classifies a reply status.
func httpOutcome(status int) string {
	switch {
	case status/100 == 2:
		return "ok"
	case status/100 == 4:
		return "client_error"
	}
	return "server_error"
}

// CallTimeout bounds a gRPC call to the sidecar whose context has no deadline.
const CallTimeout = 5 * time.Second

// Dial returns a go-sdk client for daprd's gRPC API at addr (host:port). The
// connection is lazy and reconnects by itself, so a service can start before its
// sidecar and survive a sidecar restart: calls wait for the connection (up to
// their deadline, CallTimeout by default) instead of failing while it is down,
// and reconnection attempts stay at most a second apart. token, when set, is
// sent on every call.
func Dial(addr, token string, obs Observer) (dapr.Client, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if _, ok := ctx.Deadline(); !ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, CallTimeout)
				defer cancel()
			}
			if token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "dapr-api-token", token)
			}
			if tp := tracecontext.From(ctx); tp != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, tracecontext.Header, tp)
			}
			start := time.Now()
			err := invoker(ctx, method, req, reply, cc, opts...)
			if obs != nil {
				name := method[strings.LastIndex(method, "/")+1:]
				op, ok := grpcOps[name]
				if !ok {
					op = name
				}
				obs.ObserveCall(op, grpcTarget(req), grpcOutcome(err), time.Since(start))
			}
			return err
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("dapr grpc client for %s: %w", addr, err)
	}
	return dapr.NewClientWithConnection(conn), nil
}

// HTTP is a client of the local daprd's HTTP API: service invocation (which
// keeps the callee's status and error body intact), state transactions with
// an outbox event, and the sidecar's health.
type HTTP struct {
	base  string
	token string
	http  *http.Client
	// probe is Healthy's own client: a readiness check must not wait for
	// one of the maxConns connections that slow calls hold under load.
	probe  *http.Client
	obs    Observer
	resend retry.Policy
}

// maxConns bounds the connections of a client to its sidecar (NewHTTP).
const maxConns = 64

// NewHTTP returns a client for the daprd HTTP API at addr (host:port).
// timeout bounds each call, including Dapr's own resiliency retries. It
// never follows a redirect: a request carries the sidecar's API token, and a
// 3xx (which no service answers) would send it, and the request, wherever the
// Location says, such as the sidecar's own secrets API.
func NewHTTP(addr, token string, timeout time.Duration) *HTTP {
	return &HTTP{
		base:   "http://" + addr,
		token:  token,
		resend: resend,
		// At most maxConns connections to the sidecar, the rest of the
		// calls waiting for one: each connection holds two goroutines and
		// their buffers, and under an overload (k6 stress, 200 journeys/s
		// on two cores) the gateway opened one per call in flight, about
		// 170, and outgrew its 40 MB. The wait counts in the call's
		// latency, which admission control (the gateway) sees.
		http:  newClient(timeout, maxConns),
		probe: newClient(timeout, 2),
	}
}

// newClient returns a client of a sidecar that holds at most conns
// connections to it and never follows a redirect (see NewHTTP).
func newClient(timeout time.Duration, conns int) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Invoke sends in (JSON, may be nil) with method to path on app and decodes a
// 2xx JSON reply into out (may be nil). A client error the callee answered
// itself in the error model becomes an *apierr.Error with its code and
// message (see ReplyError); every other reply (3xx, 5xx, daprd's own errors,
// a 2xx that is not JSON) and transport failures are Unavailable.
func (c *HTTP) Invoke(ctx context.Context, app, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request to %s: %w", app, err)
		}
		body = b
	}
	reply, err := c.Raw(ctx, app, method, path, body, nil)
	if err != nil {
		return err
	}
	status, raw := reply.Status, reply.Body
	if status/100 != 2 {
		return ReplyError(app, status, raw)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return apierr.Unavailablef(fmt.Errorf("decoding reply: %w", err), "%s unavailable", app)
	}
	return nil
}

// Reply is an app's (or the sidecar's) answer, as it came.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Raw sends body (JSON, may be nil) with method to path on app, with the given
// extra headers, and returns the reply as it is. A failure to get any reply,
// or a redirect (never followed), is an error (Unavailable).
//
// A call that provably never reached an app (see notDelivered) is sent
// again, for up to about 6.5 s: an instance leaving or coming back (a
// rolling restart, a crash, its sidecar restarting) makes daprd answer so
// until it is back or its row in the name resolver is stale (seconds), and
// each attempt lets the resolver pick an instance anew. The budget outlasts
// an instance's restart (measured: 1 to 2.5 s), so once it is back every
// call gets through. A call that may have reached an app is never sent
// twice: placing an order is not idempotent.
func (c *HTTP) Raw(ctx context.Context, app, method, path string, body []byte, header http.Header) (Reply, error) {
	var (
		rep  Reply
		last error // the last attempt's own error
	)
	err := c.resend.Do(ctx, func(err error) bool { return err == errNotDelivered }, func(ctx context.Context) error {
		rep, last = c.do(ctx, "invoke", app, method, "/v1.0/invoke/"+app+"/method/"+strings.TrimPrefix(path, "/"), body, header)
		if notDelivered(rep, last) {
			return errNotDelivered
		}
		return last
	})
	if err == errNotDelivered {
		// Out of attempts: the last answer as it came, daprd's error reply
		// for the caller to judge, or the failure to reach daprd.
		return rep, last
	}
	return rep, err
}

// resend is the policy of Raw for calls that never reached an app.
// Waits 50 ms, doubling to 1 s: 6.55 s over 10 retries (less with jitter).
var resend = retry.Policy{Retries: 10, Initial: 50 * time.Millisecond, Max: time.Second, Jitter: retry.DefaultJitter}

// errNotDelivered marks an attempt that never reached an app.
var errNotDelivered = errors.New("not delivered")

// notDeliveredMarks are what daprd 1.14 says, in an ERR_DIRECT_INVOKE
// error, when a call never reached the callee: no instance registered
// ("no host found"), the callee's sidecar refusing the connection or gone
// (a connection error before any request), or the callee's app refusing
// its sidecar's connection or reported unhealthy by it. The first three
// were measured on daprd 1.14 with an instance's app, then its daprd,
// killed and stopped (sidecar_test.go keeps the replies as they came).
var notDeliveredMarks = []string{
	"no host found",
	"connect: connection refused",
	"Error while dialing",
	"app is not in a healthy state",
	"invoke API is not ready",
}

// notDelivered reports whether an attempt provably never reached an app:
// the caller's own sidecar refused the connection (nothing was sent), or
// daprd answered with its own invocation error naming a cause that arises
// before the callee's app gets the request.
func notDelivered(rep Reply, err error) bool {
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	if rep.Status/100 == 2 {
		return false
	}
	var body struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(rep.Body, &body) != nil ||
		body.ErrorCode != "ERR_DIRECT_INVOKE" {
		return false
	}
	for _, m := range notDeliveredMarks {
		if strings.Contains(body.Message, m) {
			return true
		}
	}
	return false
}

// do sends one request to the sidecar and observes it as op on what, which
// also names the dependency in errors.
func (c *HTTP) do(ctx context.Context, op, what, method, path string, body []byte, header http.Header) (rep Reply, err error) {
	if c.obs != nil {
		start := time.Now()
		defer func() {
			outcome := httpOutcome(rep.Status)
			if err != nil {
				outcome = "unavailable"
			}
			c.obs.ObserveCall(op, what, outcome, time.Since(start))
		}()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return Reply{}, fmt.Errorf("request to %s: %w", what, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("dapr-api-token", c.token)
	}
	tracecontext.Inject(ctx, req.Header)
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return Reply{}, ctx.Err()
		}
		return Reply{}, apierr.Unavailablef(err, "%s unavailable", what)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		// No service redirects: a 3xx is something else speaking, not followed.
		return Reply{}, apierr.Unavailablef(fmt.Errorf("%s redirected to %q, not followed", resp.Status, resp.Header.Get("Location")), "%s unavailable", what)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Reply{}, apierr.Unavailablef(err, "%s unavailable", what)
	}
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// ReplyError rebuilds the error an app's non-2xx reply stands for. Only the
// callee's own client error in the error model (see OwnError) keeps its code
// and message; its own 503 says that the app is unavailable. Anything else (daprd's own
// errors such as ERR_DIRECT_INVOKE with any status, gRPC text, bodies of
// another shape, server errors) says only that the app is unavailable: the
// details are the cause, logged, never shown, since they name internals and
// the caller's client cannot act on them.
func ReplyError(app string, status int, raw []byte) error {
	if e, ok := OwnError(status, raw); ok && e.Code != apierr.Unavailable {
		return e
	}
	return apierr.Unavailablef(fmt.Errorf("%s answered %d: %.300s", app, status, raw), "%s unavailable", app)
}

// OwnError returns the error a reply stands for if it is a service's own
// error answer: a 4xx or a 503 whose body is exactly the error model
// ({"error":{"code","message","fields"}}, nothing else) with a known code
// whose status fits the reply's (see statusFits), and a message.
func OwnError(status int, raw []byte) (*apierr.Error, bool) {
	if status/100 != 4 && status != http.StatusServiceUnavailable {
		return nil, false
	}
	var body struct {
		Error *struct {
			Code    apierr.Code         `json:"code"`
			Message string              `json:"message"`
			Fields  []apierr.FieldError `json:"fields"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if dec.Decode(&body) != nil || dec.More() || body.Error == nil || body.Error.Message == "" ||
		!slices.Contains(apierr.Codes(), body.Error.Code) || !statusFits(apierr.Status(body.Error.Code), status) {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return &apierr.Error{Code: body.Error.Code, Message: body.Error.Message, Fields: body.Error.Fields}, true
}

// statusFits reports whether a reply's status fits the status of the code in
// its body: the same, or both client errors (a service in another language
// may answer 422 for invalid input; the code decides what the client sees).
func statusFits(codeStatus, status int) bool {
	return codeStatus == status || codeStatus/100 == 4 && status/100 == 4
}

// Healthy reports whether the daprd HTTP API at addr answers its health endpoint.
func (c *HTTP) Healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1.0/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.probe.Do(req)
	if err != nil {
		return fmt.Errorf("dapr sidecar: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("dapr sidecar health: %s", resp.Status)
	}
	return nil
}

// Local returns the loopback address of a sidecar port: an app and its daprd
// always share a host (a machine locally, a pod in Kubernetes).
func Local(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
