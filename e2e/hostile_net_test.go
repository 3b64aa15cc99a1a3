package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	internalv1 "github.com/dapr/dapr/pkg/proto/internals/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	sentryv1 "github.com/dapr/dapr/pkg/proto/sentry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/daprshop/suite/tools/runner/runnertest"
)

// What TestHostileSockets needs: the run's listening sockets, found from its
// processes, and the probes a local attacker would send to each.

// listener is a TCP socket a process of the run listens on.
type listener struct {
	pid     string
	process string // e.g. "orders daprd", from its command line
	addr    netip.AddrPort
}

// name says which process listens where, and what the runner gave the port to.
func (l listener) name() string {
	role := ""
	for _, a := range env.run.AllInstances() {
		for _, p := range []struct {
			port int
			what string
		}{
			{a.AppPort, a.Name + " app"}, {a.DaprHTTPPort, a.Name + " daprd HTTP API"}, {a.DaprGRPCPort, a.Name + " daprd gRPC API"},
			{a.DaprInternalGRPCPort, a.Name + " daprd internal gRPC"}, {a.MetricsPort, a.Name + " daprd metrics"},
		} {
			if p.port == int(l.addr.Port()) {
				role = " (" + p.what + ")"
			}
		}
	}
	return fmt.Sprintf("%s pid %s on %s%s", l.process, l.pid, l.addr, role)
}

// dial is where to connect to reach l.
func (l listener) dial() string {
	a := l.addr.Addr().Unmap()
	if a.IsUnspecified() {
		a = netip.MustParseAddr("127.0.0.1")
	}
	return netip.AddrPortFrom(a, l.addr.Port()).String()
}

// runListeners finds every TCP socket in LISTEN state held by a process of
// this run, as the kernel reports it (runnertest.Listening: /proc on Linux,
// lsof elsewhere).
func runListeners(t *testing.T) []listener {
	t.Helper()
	ls, err := runnertest.Listening(env.marker)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]listener, len(ls))
	for i, l := range ls {
		out[i] = listener{pid: strconv.Itoa(l.PID), process: processName(l.Command), addr: l.Addr}
	}
	return out
}

// processName names a process by its command line: "<app-id> daprd" for a
// sidecar, the binary's name otherwise (the runner names apps' binaries after
// their app IDs).
func processName(cmdline string) string {
	f := strings.Fields(cmdline)
	if len(f) == 0 {
		return "?"
	}
	name := filepath.Base(f[0])
	for i := 1; i+1 < len(f); i++ {
		if f[i] == "--app-id" || f[i] == "-app-id" {
			return f[i+1] + " " + name
		}
	}
	return name
}

// grpcProbe is one call a local attacker makes on a gRPC socket: each must fail.
type grpcProbe struct {
	name string
	call func(ctx context.Context, cc *grpc.ClientConn) error
}

// attackerCalls are the gRPC calls of someone holding no credential of this
// run: the Dapr API (secrets, state, publishing, invocation, metadata), the
// internal API sidecars use between them (CallLocal reaches the app behind
// the sidecar, which adds the app token), and Sentry's certificate signing.
func attackerCalls(t *testing.T, victimUser string) []grpcProbe {
	t.Helper()
	csr := certificateRequest(t, "payments")
	dapr := func(cc *grpc.ClientConn) runtimev1.DaprClient { return runtimev1.NewDaprClient(cc) }
	get := &commonv1.HTTPExtension{Verb: commonv1.HTTPExtension_GET}
	probes := []grpcProbe{
		{"Dapr/GetMetadata", func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := dapr(cc).GetMetadata(ctx, &runtimev1.GetMetadataRequest{})
			return err
		}},
		{"Dapr/GetState orders-store", func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := dapr(cc).GetState(ctx, &runtimev1.GetStateRequest{StoreName: "orders-store", Key: "order:x"})
			return err
		}},
		{"Dapr/PublishEvent orders", func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := dapr(cc).PublishEvent(ctx, &runtimev1.PublishEventRequest{PubsubName: "events", Topic: "orders",
				Data: []byte(`{}`), DataContentType: "application/json",
				Metadata: map[string]string{"cloudevent.id": poisonPrefix + "hostile-" + randomHex(4)}})
			return err
		}},
		{"Dapr/InvokeService payments GET /provider", func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := dapr(cc).InvokeService(ctx, &runtimev1.InvokeServiceRequest{Id: "payments",
				Message: &commonv1.InvokeRequest{Method: "provider", HttpExtension: get}})
			return err
		}},
		{"ServiceInvocation/CallLocal GET /provider", func(ctx context.Context, cc *grpc.ClientConn) error {
			return callLocal(ctx, cc, &commonv1.InvokeRequest{Method: "provider", HttpExtension: get})
		}},
		{"ServiceInvocation/CallLocal GET /orders", func(ctx context.Context, cc *grpc.ClientConn) error {
			return callLocal(ctx, cc, &commonv1.InvokeRequest{Method: "orders",
				HttpExtension: &commonv1.HTTPExtension{Verb: commonv1.HTTPExtension_GET, Querystring: "user_id=" + url.QueryEscape(victimUser)}})
		}},
		{"ServiceInvocation/CallLocal POST /events/payments", func(ctx context.Context, cc *grpc.ClientConn) error {
			return callLocal(ctx, cc, &commonv1.InvokeRequest{Method: "events/payments", ContentType: "application/json",
				Data: &anypb.Any{Value: []byte(`{}`)}, HttpExtension: &commonv1.HTTPExtension{Verb: commonv1.HTTPExtension_POST}})
		}},
	}
	for name := range env.secrets {
		probes = append(probes, grpcProbe{"Dapr/GetSecret " + name, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := dapr(cc).GetSecret(ctx, &runtimev1.GetSecretRequest{StoreName: "secrets", Key: name})
			return err
		}})
	}
	for _, v := range []struct {
		name      string
		token     string
		validator sentryv1.SignCertificateRequest_TokenValidator
	}{
		{"no token", "", sentryv1.SignCertificateRequest_JWKS},
		{"a forged token", forgedJWT(), sentryv1.SignCertificateRequest_JWKS},
		{"the insecure validator", "", sentryv1.SignCertificateRequest_INSECURE},
		{"no validator", "", sentryv1.SignCertificateRequest_UNKNOWN},
	} {
		probes = append(probes, grpcProbe{"CA/SignCertificate for payments with " + v.name, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := sentryv1.NewCAClient(cc).SignCertificate(ctx, &sentryv1.SignCertificateRequest{Id: "payments", Namespace: "default",
				TrustDomain: "public", Token: v.token, TokenValidator: v.validator, CertificateSigningRequest: csr})
			return err
		}})
	}
	return probes
}

// callLocal is daprd's internal CallLocal, as another sidecar would send it.
func callLocal(ctx context.Context, cc *grpc.ClientConn, msg *commonv1.InvokeRequest) error {
	_, err := internalv1.NewServiceInvocationClient(cc).CallLocal(ctx, &internalv1.InternalInvokeRequest{
		Ver:      internalv1.APIVersion_V1,
		Metadata: map[string]*internalv1.ListStringValue{"dapr-caller-app-id": {Values: []string{"payments"}}},
		Message:  msg,
	})
	return err
}

// forgedJWT is a token of the right shape, signed by no one Sentry trusts.
func forgedJWT() string {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return seg(`{"alg":"none","typ":"JWT"}`) + "." + seg(`{"sub":"spiffe://public/ns/default/payments","aud":["spiffe://public"]}`) + "."
}

// certificateRequest is a PEM CSR claiming app's SPIFFE identity.
func certificateRequest(t *testing.T, app string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := url.Parse("spiffe://public/ns/default/" + app)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: app}, URIs: []*url.URL{id}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// selfSignedClient is a client certificate claiming app's SPIFFE identity,
// signed by itself.
func selfSignedClient(t *testing.T, app string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := url.Parse("spiffe://public/ns/default/" + app)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: app}, URIs: []*url.URL{id},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// grpcAnswers runs every probe on addr over creds and reports, for each
// that did not fail, what it got; spoke says whether a gRPC (or other
// HTTP/2) server answered at all, as opposed to the connection failing.
func grpcAnswers(addr string, creds credentials.TransportCredentials, probes []grpcProbe) (spoke bool, reached []string) {
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return false, nil
	}
	defer cc.Close()
	for _, p := range probes {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		err := p.call(metadata.NewOutgoingContext(ctx, metadata.MD{}), cc)
		cancel()
		if err == nil {
			spoke = true
			reached = append(reached, p.name+" succeeded")
			continue
		}
		if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
			spoke = true
		}
	}
	return spoke, reached
}

// insecureCreds is h2c: gRPC without TLS.
func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

// tlsCreds is gRPC over TLS that trusts any server, with the given client
// certificates (none: no client certificate).
func tlsCreds(certs ...tls.Certificate) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, Certificates: certs}) //nolint:gosec // an attacker checks nothing
}

// speaksTLS reports whether addr answers a TLS handshake with a certificate.
func speaksTLS(addr string) bool {
	saw := false
	conn, _ := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // only asking whether it speaks TLS
		VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error {
			saw = true
			return nil
		},
	})
	if conn != nil {
		conn.Close()
	}
	return saw
}

// firstBytes is what addr says first to an HTTP request, for naming a
// protocol the test does not know.
func firstBytes(addr string) string {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	b := make([]byte, 64)
	n, err := conn.Read(b)
	if n == 0 {
		return fmt.Sprintf("nothing (%v)", err)
	}
	return fmt.Sprintf("%q", b[:n])
}

// sendRawTLS is sendRaw over TLS without a client certificate.
func sendRawTLS(addr string, rq rawRequest, timeout time.Duration) rawReply {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // an attacker checks nothing
	if err != nil {
		return rawReply{err: err}
	}
	defer conn.Close()
	return sendOn(conn, addr, rq, timeout)
}
