package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	internalv1 "github.com/dapr/dapr/pkg/proto/internals/v1"
	sentryv1 "github.com/dapr/dapr/pkg/proto/sentry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/daprshop/suite/tools/runner"
	"github.com/daprshop/suite/tools/runner/runnertest"
)

// realDapr returns the daprd and sentry binaries that `make tools` builds
// ($DAPRD and $SENTRY, else .bin/ of the repository). Without them the test
// is skipped, unless RUNNER_REQUIRED is set (make test sets it).
func realDapr(t *testing.T) (daprd, sentry string) {
	t.Helper()
	find := func(env, name string) string {
		if p := os.Getenv(env); p != "" {
			return p
		}
		p, _ := filepath.Abs(filepath.Join("..", "..", "..", ".bin", name))
		return p
	}
	daprd, sentry = find("DAPRD", "daprd"), find("SENTRY", "sentry")
	for _, p := range []string{daprd, sentry} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("RUNNER_REQUIRED") != "" {
				t.Fatalf("%s: %v (tools/toolchain.sh daprd sentry builds it)", p, err)
			}
			t.Skipf("no %s: run `make tools` (or set DAPRD and SENTRY) to test mTLS between real sidecars", p)
		}
	}
	return daprd, sentry
}

// TestMTLSBetweenSidecars starts two apps with real sidecars and the run's
// Sentry (app IDs of their own: no other run on the machine can answer for
// them) and shows that only this run's sidecars can call each other, and that
// nothing of the run listens beyond loopback.
func TestMTLSBetweenSidecars(t *testing.T) {
	r, alphaID, betaID, marker := realSuite(t, nil, nil)
	auth := r.Authority
	if auth == nil {
		t.Fatal("a run with Options.Sentry has no Authority")
	}
	alpha, beta := r.App(alphaID), r.App(betaID)
	betaInternal := fmt.Sprintf("127.0.0.1:%d", beta.DaprInternalGRPCPort)
	alphaToken, err := os.ReadFile(alpha.SentryTokenFile)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("invocation through the sidecars works", func(t *testing.T) {
		if code := invokeThrough(t, alpha, betaID); code != http.StatusOK {
			t.Fatalf("%s -> %s through the sidecars: status %d, want 200", alphaID, betaID, code)
		}
	})

	t.Run("a plaintext CallLocal to a sidecar's internal port is refused", func(t *testing.T) {
		resp, err := callLocal(t, betaInternal, insecure.NewCredentials())
		if err == nil {
			t.Fatalf("plaintext CallLocal reached %s's app: status %d", betaID, resp.GetStatus().GetCode())
		}
		t.Logf("refused: %v", err)
	})

	t.Run("a certificate from this run's Sentry opens the internal port", func(t *testing.T) {
		// What a process that can read a sidecar's token file can do: the
		// control for the next case.
		cert, err := signCertificate(t, auth, alphaID, string(alphaToken), sentryv1.SignCertificateRequest_JWKS)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := callLocal(t, betaInternal, credentials.NewTLS(anchoredTLS(auth.TrustAnchors, cert)))
		if err != nil || resp.GetStatus().GetCode() != http.StatusOK {
			t.Fatalf("CallLocal with this run's certificate: %v, status %d", err, resp.GetStatus().GetCode())
		}
	})

	t.Run("a certificate of another CA is refused", func(t *testing.T) {
		// Another run's sidecar, or a certificate made up for the same ID.
		cert := foreignCertificate(t, auth.AppID(alphaID))
		// TLS 1.2: the server judges the client's certificate inside the
		// handshake, so the refusal reaches the client as a TLS alert (with
		// 1.3 it may surface as a broken pipe on the first write instead).
		conf := anchoredTLS(auth.TrustAnchors, cert)
		conf.MaxVersion = tls.VersionTLS12
		resp, err := callLocal(t, betaInternal, credentials.NewTLS(conf))
		if err == nil {
			t.Fatalf("CallLocal with another CA's certificate reached %s's app: status %d", betaID, resp.GetStatus().GetCode())
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("refused, but not for the certificate: %v", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("Sentry signs only for this run's token of the app", func(t *testing.T) {
		_, otherKey, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		// The same header key ID, audience and subject: only the key differs.
		forged, err := runner.SentryToken(otherKey, tokenKeyID(t, string(alphaToken)), auth.SentryID(), auth.AppID(alphaID), now, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, id, token string
			validator       sentryv1.SignCertificateRequest_TokenValidator
			signed          bool
		}{
			{"the app's own token", alphaID, string(alphaToken), sentryv1.SignCertificateRequest_JWKS, true},
			{"no token", alphaID, "", sentryv1.SignCertificateRequest_JWKS, false},
			{"no token and no validator", alphaID, "", sentryv1.SignCertificateRequest_UNKNOWN, false},
			{"the insecure validator", alphaID, "", sentryv1.SignCertificateRequest_INSECURE, false},
			{"another app's token", betaID, string(alphaToken), sentryv1.SignCertificateRequest_JWKS, false},
			{"a token signed by another key", alphaID, forged, sentryv1.SignCertificateRequest_JWKS, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := signCertificate(t, auth, c.id, c.token, c.validator)
				if c.signed && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !c.signed && err == nil {
					t.Fatalf("Sentry signed a certificate for %s", c.id)
				}
				if err != nil {
					t.Logf("refused: %v", err)
				}
			})
		}
	})

	t.Run("every listener of the run is on loopback", func(t *testing.T) {
		ls, err := runnertest.Listening(marker)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint16]bool{}
		for _, l := range ls {
			seen[l.Addr.Port()] = true
			if !l.Addr.Addr().IsLoopback() {
				t.Errorf("listens beyond loopback: %s", l)
			}
		}
		// The ones the run assigned must be among them, or this saw nothing.
		want := map[string]int{"sentry": auth.Port, "sentry healthz": auth.HealthzPort, "sentry metrics": auth.MetricsPort}
		for _, a := range r.Apps {
			want[a.ID+" app"] = a.AppPort
			want[a.ID+" dapr http"] = a.DaprHTTPPort
			want[a.ID+" dapr grpc"] = a.DaprGRPCPort
			want[a.ID+" dapr internal grpc"] = a.DaprInternalGRPCPort
			want[a.ID+" dapr metrics"] = a.MetricsPort
		}
		for name, port := range want {
			if !seen[uint16(port)] {
				t.Errorf("no listener found on %s's port %d; found %v", name, port, ls)
			}
		}
	})

	t.Run("a killed sidecar gets a certificate again", func(t *testing.T) {
		if err := r.Kill(betaID, "daprd"); err != nil {
			t.Fatal(err)
		}
		if err := r.Restart(t.Context(), betaID, "daprd"); err != nil {
			t.Fatal(err)
		}
		// Name resolution may need a moment to see the new sidecar.
		deadline := time.Now().Add(30 * time.Second)
		for code := invokeThrough(t, alpha, betaID); code != http.StatusOK; code = invokeThrough(t, alpha, betaID) {
			if time.Now().After(deadline) {
				t.Fatalf("%s -> restarted %s: status %d", alphaID, betaID, code)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	r.Stop()
	if left := runnertest.Tagged(marker); len(left) > 0 {
		t.Fatalf("left behind:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(filepath.Dir(alpha.SentryTokenFile)); !os.IsNotExist(err) {
		t.Fatalf("the tokens outlive the run: %v", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// invokeThrough calls to's health path through from's sidecar and returns the status.
func invokeThrough(t *testing.T, from *runner.AppRun, to string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet,
		fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/healthz", from.DaprHTTPPort, url.PathEscape(to)), nil)
	req.Header.Set("dapr-api-token", from.APIToken)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// callLocal makes the call one sidecar makes to another (the internal gRPC
// API) for GET /healthz of the other's app.
func callLocal(t *testing.T, addr string, creds credentials.TransportCredentials) (*internalv1.InternalInvokeResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return internalv1.NewServiceInvocationClient(conn).CallLocal(ctx, &internalv1.InternalInvokeRequest{
		Ver:      internalv1.APIVersion_V1,
		Metadata: map[string]*internalv1.ListStringValue{},
		Message: &commonv1.InvokeRequest{
			Method:        "healthz",
			HttpExtension: &commonv1.HTTPExtension{Verb: commonv1.HTTPExtension_GET},
		},
	})
}

// signCertificate asks the run's Sentry for a certificate for app id, as
// daprd does, with a fresh key.
func signCertificate(t *testing.T, auth *runner.Authority, id, token string, v sentryv1.SignCertificateRequest_TokenValidator) (tls.Certificate, error) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(auth.Address(), grpc.WithTransportCredentials(credentials.NewTLS(anchoredTLS(auth.TrustAnchors))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := sentryv1.NewCAClient(conn).SignCertificate(ctx, &sentryv1.SignCertificateRequest{
		CertificateSigningRequest: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}),
		Id:                        id,
		Token:                     token,
		Namespace:                 auth.Namespace,
		TokenValidator:            v,
	})
	if err != nil {
		return tls.Certificate{}, err
	}
	cert := tls.Certificate{PrivateKey: key}
	for rest := resp.GetWorkloadCertificate(); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		cert.Certificate = append(cert.Certificate, b.Bytes)
	}
	if len(cert.Certificate) == 0 {
		t.Fatalf("Sentry answered without a certificate: %q", resp.GetWorkloadCertificate())
	}
	return cert, nil
}

// anchoredTLS is a client TLS configuration that trusts the run's root only,
// showing certs. Dapr's certificates name SPIFFE IDs, not hosts: the chain is
// checked, the host name is not.
func anchoredTLS(anchors []byte, certs ...tls.Certificate) *tls.Config {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(anchors)
	return &tls.Config{
		Certificates:       certs,
		InsecureSkipVerify: true, // replaced by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}

// foreignCertificate makes a CA of its own and a client certificate from it
// for the SPIFFE ID spiffeID, as another run's Sentry would.
func foreignCertificate(t *testing.T, spiffeID string) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := url.Parse(spiffeID)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), URIs: []*url.URL{id},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}
}

// tokenKeyID reads the key ID (kid) from a JWT's header.
func tokenKeyID(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Kid == "" {
		t.Fatalf("token header %s: %v", b, err)
	}
	return h.Kid
}
