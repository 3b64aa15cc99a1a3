package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/events"
)

func reply(t *testing.T, body string, fn func(context.Context, events.Event) error) events.Status {
	t.Helper()
	w := httptest.NewRecorder()
	events.Handler(slog.New(slog.DiscardHandler), fn)(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	var r map[string]events.Status
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	return r["status"]
}

const ce = `{"id":"e1","type":"order.paid","source":"orders","topic":"orders","pubsubname":"events","datacontenttype":"application/json","data":{"order_id":"ord_1"}}`

func TestHandlerReplies(t *testing.T) {
	var seen events.Event
	ok := func(_ context.Context, e events.Event) error { seen = e; return nil }
	if s := reply(t, ce, ok); s != events.Success || seen.ID != "e1" || seen.Topic != "orders" {
		t.Fatalf("ok: %s %+v", s, seen)
	}
	var data struct {
		OrderID string `json:"order_id"`
	}
	if err := seen.Decode(&data); err != nil || data.OrderID != "ord_1" {
		t.Fatalf("decode: %v %+v", err, data)
	}
	cases := map[string]struct {
		body string
		err  error
		want events.Status
	}{
		"transient":      {ce, apierr.Unavailablef(errors.New("x"), "store unavailable"), events.Retry},
		"plain error":    {ce, errors.New("boom"), events.Retry},
		"explicit drop":  {ce, events.Drop(errors.New("bad")), events.DropIt},
		"client error":   {ce, apierr.Invalidf("order_id", "unknown"), events.DropIt},
		"not an event":   {`not json`, nil, events.DropIt},
		"no data":        {ce, events.Event{Data: json.RawMessage(`null`)}.Decode(&data), events.DropIt},
		"undecodable in": {ce, events.Event{Data: json.RawMessage(`"x"`)}.Decode(&data), events.DropIt},
	}
	for name, tc := range cases {
		if s := reply(t, tc.body, func(context.Context, events.Event) error { return tc.err }); s != tc.want {
			t.Errorf("%s: %s, want %s", name, s, tc.want)
		}
	}
}

// FuzzHandler: whatever Dapr delivers, the reply is a status Dapr understands.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{ce, `{}`, `{"data":`, `null`, `{"id":1}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s := reply(t, body, func(_ context.Context, e events.Event) error {
			var v map[string]any
			return e.Decode(&v)
		})
		if s != events.Success && s != events.Retry && s != events.DropIt {
			t.Fatalf("status %q for %q", s, body)
		}
	})
}

// failingBody fails mid-read, as a reset connection does.
type failingBody struct{}

func (failingBody) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

func TestHandlerRetriesABodyItCouldNotRead(t *testing.T) {
	called := false
	w := httptest.NewRecorder()
	events.Handler(slog.New(slog.DiscardHandler), func(context.Context, events.Event) error { called = true; return nil })(
		w, httptest.NewRequest(http.MethodPost, "/", failingBody{}))
	if !strings.Contains(w.Body.String(), `"RETRY"`) || called {
		t.Fatalf("reply %s, handler called %v: a read failure is the connection's, not the event's", w.Body, called)
	}
	if s := reply(t, `{"data":"`+strings.Repeat("x", 2<<20)+`"}`, func(context.Context, events.Event) error { return nil }); s != events.DropIt {
		t.Fatalf("oversized event: %s, want DROP", s)
	}
}

// TestHandlerRefusesInvocations: a request daprd marks as a service
// invocation from another app (whatever the value, empty included) is
// answered 403 in the error model and never reaches the subscriber; a
// delivery, without the marks, does.
func TestHandlerRefusesInvocations(t *testing.T) {
	cases := map[string]http.Header{
		"caller":              {"Dapr-Caller-App-Id": {"gateway"}},
		"callee only":         {"Dapr-Callee-App-Id": {"orders"}},
		"both":                {"Dapr-Caller-App-Id": {"gateway"}, "Dapr-Callee-App-Id": {"orders"}},
		"empty caller":        {"Dapr-Caller-App-Id": {""}},
		"forged and real":     {"Dapr-Caller-App-Id": {"orders", "gateway"}},
		"with pubsub headers": {"Dapr-Caller-App-Id": {"gateway"}, "Pubsubname": {"events"}, "Content-Type": {"application/cloudevents+json"}},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			called := false
			req := httptest.NewRequest(http.MethodPost, "/events/payments", strings.NewReader(ce))
			for k, vs := range h {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			if !events.Invoked(req) {
				t.Errorf("Invoked = false")
			}
			w := httptest.NewRecorder()
			events.Handler(slog.New(slog.DiscardHandler), func(context.Context, events.Event) error { called = true; return nil })(w, req)
			var body struct {
				Error struct{ Code apierr.Code } `json:"error"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != http.StatusForbidden || body.Error.Code != apierr.Forbidden || called {
				t.Fatalf("%d %s, subscriber called %v: want 403 forbidden, not called", w.Code, w.Body, called)
			}
		})
	}
	// Header names arrive in any case; Go canonicalises them on the server.
	req := httptest.NewRequest(http.MethodPost, "/events/payments", strings.NewReader(ce))
	req.Header.Set("dapr-caller-app-id", "gateway")
	if !events.Invoked(req) {
		t.Error("lower-case header not seen")
	}
	delivery := httptest.NewRequest(http.MethodPost, "/events/payments", strings.NewReader(ce))
	delivery.Header.Set("Pubsubname", "events")
	delivery.Header.Set("Content-Type", "application/cloudevents+json")
	if events.Invoked(delivery) {
		t.Error("a delivery taken for an invocation")
	}
}
