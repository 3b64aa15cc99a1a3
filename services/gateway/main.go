// Command gateway is the suite's public HTTP API: it verifies bearer tokens
// issued by users (key from the Dapr secret store) and forwards every request
// to the owning service by Dapr service invocation.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/tracecontext"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/gateway/internal/admit"
	"github.com/daprshop/suite/services/gateway/internal/httpapi"
)

// config is read once from the environment.
type config struct {
	Web              web.Config
	Dapr             sidecar.Config
	SecretStore      string        `env:"SECRET_STORE" default:"secrets"`
	JWTKeySecret     string        `env:"JWT_KEY_SECRET" default:"jwt-signing-key"`
	UsersApp         string        `env:"USERS_APP_ID" default:"users"`
	ProductsApp      string        `env:"PRODUCTS_APP_ID" default:"products"`
	OrdersApp        string        `env:"ORDERS_APP_ID" default:"orders"`
	NotificationsApp string        `env:"NOTIFICATIONS_APP_ID" default:"notifications"`
	ShippingApp      string        `env:"SHIPPING_APP_ID" default:"shipping"`
	InvokeTimeout    time.Duration `env:"INVOKE_TIMEOUT" default:"15s"`
	MaxBodyBytes     int64         `env:"MAX_BODY_BYTES" default:"65536"`
	// TrustedProxies lists, comma-separated, the networks (CIDR) of the
	// proxies in front of the gateway whose X-Forwarded-For names the client;
	// empty: clients connect directly.
	TrustedProxies string `env:"TRUSTED_PROXIES"`
	// ZipkinURL is the Zipkin v2 endpoint that receives the gateway's span
	// of each request at the edge (make observe's Jaeger; the runner sets
	// it with -zipkin). Empty: the span is not recorded, the trace context
	// is still passed on.
	ZipkinURL string `env:"ZIPKIN_URL"`
	// Admission control (internal/admit), one limit per class of route:
	// reads (every GET but a shipment), shipments (shipping, on Node.js, slows on
	// its own), orders (placing and cancelling), writes (sign-ups,
	// logins, the admins' catalog writes). Each limit adapts so that the
	// median latency of what it admits stays within its TARGET: 2-3 times
	// the class's latency on an idle suite (a read 3-5 ms, an order 25-40
	// ms); at 4 times the rate 2 cores sustain, admitted orders measured
	// p99 220-360 ms with these (the spike's first second above the
	// calm's limit makes the top of that range). What is over the limit
	// is refused at once with 503 and Retry-After. Under an overload the
	// limit falls to MIN at least; a limit nobody reaches comes down to
	// BURST at least (what clients may send at once from a calm rate
	// without a refusal: e2e's 16 parallel requests of one customer, 32
	// of every kind); after ADMIT_IDLE with nothing of the class in flight
	// it is MAX (a burst of 50 orders from an idle suite).
	// ADMIT_WINDOW completed requests make one decision; a client refused
	// while an admitted request has been in flight ADMIT_LATE times its
	// class's target cuts the limit at once (the spike's first second; 0
	// waits for the window); ADMIT_ORDER_HOLD: orders piling up while one
	// is late (more in flight than at any moment of the second before the
	// last) hold it where they are (internal/admit, Config.Hold), which
	// keeps the climb into an overload from piling up to BURST; off, as it
	// also refuses calm bursty traffic and worker pools (docs/performance.md).
	Admit            bool          `env:"ADMIT" default:"true"`
	AdmitWindow      int           `env:"ADMIT_WINDOW" default:"10"`
	AdmitIdle        time.Duration `env:"ADMIT_IDLE" default:"250ms"`
	AdmitLate        float64       `env:"ADMIT_LATE" default:"2"`
	AdmitReadTarget  time.Duration `env:"ADMIT_READ_TARGET" default:"10ms"`
	AdmitReadMin     int           `env:"ADMIT_READ_MIN" default:"2"`
	AdmitReadBurst   int           `env:"ADMIT_READ_BURST" default:"32"`
	AdmitReadMax     int           `env:"ADMIT_READ_MAX" default:"256"`
	AdmitOrderTarget time.Duration `env:"ADMIT_ORDER_TARGET" default:"75ms"`
	AdmitOrderMin    int           `env:"ADMIT_ORDER_MIN" default:"1"`
	AdmitOrderBurst  int           `env:"ADMIT_ORDER_BURST" default:"16"`
	AdmitOrderMax    int           `env:"ADMIT_ORDER_MAX" default:"64"`
	AdmitOrderHold   bool          `env:"ADMIT_ORDER_HOLD" default:"false"`
	AdmitTrackTarget time.Duration `env:"ADMIT_TRACK_TARGET" default:"50ms"`
	AdmitTrackMin    int           `env:"ADMIT_TRACK_MIN" default:"1"`
	AdmitTrackBurst  int           `env:"ADMIT_TRACK_BURST" default:"16"`
	AdmitTrackMax    int           `env:"ADMIT_TRACK_MAX" default:"64"`
	AdmitWriteTarget time.Duration `env:"ADMIT_WRITE_TARGET" default:"250ms"`
	AdmitWriteMin    int           `env:"ADMIT_WRITE_MIN" default:"1"`
	AdmitWriteBurst  int           `env:"ADMIT_WRITE_BURST" default:"16"`
	AdmitWriteMax    int           `env:"ADMIT_WRITE_MAX" default:"64"`
}

// admission builds the limiters cfg asks for (none when ADMIT is false).
func (cfg config) admission(now func() time.Time) (httpapi.Admission, map[string]*admit.Limiter, error) {
	if !cfg.Admit {
		return httpapi.Admission{}, nil, nil
	}
	// Every class runs on the same cores: a refusal in one tells the others.
	shared := &admit.Pressure{}
	class := func(target time.Duration, min, burst, max int) admit.Config {
		return admit.Config{Target: target, Min: min, Burst: burst, Max: max, Window: cfg.AdmitWindow,
			Idle: cfg.AdmitIdle, Late: time.Duration(cfg.AdmitLate * float64(target)), Shared: shared}
	}
	// Orders pile up under an unreached limit as an overload begins: held
	// there if ADMIT_ORDER_HOLD asks. Never the other classes: a mixed group
	// of parallel requests has no fixed number in flight in any one of them.
	order := class(cfg.AdmitOrderTarget, cfg.AdmitOrderMin, cfg.AdmitOrderBurst, cfg.AdmitOrderMax)
	order.Hold = cfg.AdmitOrderHold
	classes := []struct {
		name string
		cfg  admit.Config
	}{
		{"read", class(cfg.AdmitReadTarget, cfg.AdmitReadMin, cfg.AdmitReadBurst, cfg.AdmitReadMax)},
		{"order", order},
		{"write", class(cfg.AdmitWriteTarget, cfg.AdmitWriteMin, cfg.AdmitWriteBurst, cfg.AdmitWriteMax)},
		{"track", class(cfg.AdmitTrackTarget, cfg.AdmitTrackMin, cfg.AdmitTrackBurst, cfg.AdmitTrackMax)},
	}
	byName := map[string]*admit.Limiter{}
	var errs []error
	for _, c := range classes {
		l, err := admit.New(c.cfg, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("ADMIT_%s_*: %w", strings.ToUpper(c.name), err))
			continue
		}
		byName[c.name] = l
	}
	if err := errors.Join(errs...); err != nil {
		return httpapi.Admission{}, nil, err
	}
	return httpapi.Admission{Read: byName["read"], Order: byName["order"], Write: byName["write"], Track: byName["track"]}, byName, nil
}

// parsePrefixes reads a comma-separated list of networks (CIDR).
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q is not a network such as 10.0.0.0/8", f)
		}
		if p.Bits() == 0 {
			// Every address a proxy: a client could then name any address
			// in X-Forwarded-For and it would be believed.
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q trusts every address; name the proxies' networks", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func main() { web.Main("gateway", run) }

func run(ctx context.Context, log *slog.Logger) error {
	var cfg config
	if err := conf.Parse(&cfg, os.LookupEnv); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.MaxBodyBytes < 1024 {
		return fmt.Errorf("config: MAX_BODY_BYTES must be at least 1024")
	}
	proxies, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	admission, limiters, err := cfg.admission(time.Now)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log.Info("starting", "config", conf.String(&cfg))

	m := metrics.New("gateway")
	m.Registerer.MustRegister(admit.Collector(limiters))
	client, err := cfg.Dapr.Dial(m)
	if err != nil {
		return err
	}
	defer client.Close()
	spans, err := tracecontext.NewExporter(cfg.ZipkinURL, "gateway")
	if err != nil {
		return fmt.Errorf("config: ZIPKIN_URL: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = spans.Close(ctx)
	}()
	invoker := cfg.Dapr.HTTP(cfg.InvokeTimeout, m)
	key := &sidecar.Secret{Client: client, Store: cfg.SecretStore, Name: cfg.JWTKeySecret}
	h := httpapi.Routes(invoker, httpapi.KeyFunc(key.Bytes),
		httpapi.Options{
			Apps:           httpapi.Apps{Users: cfg.UsersApp, Products: cfg.ProductsApp, Orders: cfg.OrdersApp, Notifications: cfg.NotificationsApp, Shipping: cfg.ShippingApp},
			MaxBody:        cfg.MaxBodyBytes,
			Now:            time.Now,
			TrustedProxies: proxies,
			Admit:          admission,
			Spans:          spans,
		}, m, log, invoker.Healthy)
	return cfg.Web.ServePublic(ctx, log, h) // the public edge: clients call it directly
}
