package runner

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sidecar-to-sidecar calls of a run with Options.Sentry use mTLS with
// certificates from a Sentry of that run alone:
//   - the run makes its own CA (Sentry gets only the issuer's key; the root's
//     never leaves memory), so no other run's sidecar completes a handshake;
//   - Sentry signs only for a JWT made by the run: a JWKS validator with a key
//     made for the run (which never leaves memory either) replaces Sentry's
//     self-hosted default, the "insecure" validator, which signs a
//     certificate for any app ID to anyone who asks;
//   - each daprd reads its app's token from a 0600 file in a 0700 directory
//     (DAPR_SENTRY_TOKEN_FILE), and Stop removes it all (a runner killed
//     outright leaves the run's directory in the temp dir: keys of a CA
//     nothing trusts any more, tokens for a Sentry that is gone).
const (
	// sentryTrustDomain is Sentry's trust domain (--trust-domain). daprd
	// must be told the same (--control-plane-trust-domain), or it waits for
	// its first certificate forever.
	sentryTrustDomain = "cluster.local"
	// appTrustDomain is the trust domain daprd asks Sentry for on behalf of
	// an app: empty in its request, which Sentry reads as "public"
	// (pkg/sentry/server/validator/internal).
	appTrustDomain = "public"
	// credentialsTTL bounds the CA and the tokens. daprd reads its token again
	// at every certificate renewal (daily), so a token must outlive the run.
	credentialsTTL = 365 * 24 * time.Hour
)

// controlPlaneIDs are the app IDs for which daprd asks for the control
// plane's trust domain instead of appTrustDomain (pkg/security/sentry.go).
var controlPlaneIDs = []string{"dapr-operator", "dapr-placement", "dapr-injector", "dapr-sentry", "dapr-scheduler"}

// Authority describes the Sentry of a run, for tests that probe it.
type Authority struct {
	// Port (gRPC, where daprd asks for certificates), HealthzPort and
	// MetricsPort are Sentry's listeners, all on 127.0.0.1.
	Port, HealthzPort, MetricsPort int
	// TrustAnchors is the run's root certificate, PEM.
	TrustAnchors []byte
	// TrustDomain is Sentry's; Namespace the one Sentry and every daprd of
	// the run are in (env NAMESPACE, default "default").
	TrustDomain, Namespace string

	dir    string            // 0700: ca/, sentry.yaml, tokens/
	tokens map[string]string // app ID -> token file
}

// newAuthority makes the run's CA, token key, Sentry configuration and one
// token per app ID in a new private directory inside runDir. Start picks the
// ports.
func newAuthority(runDir string, appIDs []string, namespace string) (*Authority, error) {
	dir := filepath.Join(runDir, "sentry")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	a := &Authority{TrustDomain: sentryTrustDomain, Namespace: namespace, dir: dir, tokens: map[string]string{}}
	if err := a.prepare(appIDs); err != nil {
		a.remove()
		return nil, fmt.Errorf("preparing Sentry: %w", err)
	}
	return a, nil
}

func (a *Authority) prepare(appIDs []string) error {
	if err := a.writeCA(); err != nil {
		return err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	kid := newToken()[:16]
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "x": b64(pub), "kid": kid, "alg": "EdDSA", "use": "sig",
	}}})
	if err != nil {
		return err
	}
	// The JWKS inline (base64): Sentry then reads no file of ours after it starts.
	config := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprsystem
spec:
  mtls:
    enabled: true
    tokenValidators:
      - name: jwks
        options:
          source: %q
`, base64.StdEncoding.EncodeToString(jwks))
	if err := os.WriteFile(a.configPath(), []byte(config), 0o600); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(a.dir, "tokens"), 0o700); err != nil {
		return err
	}
	now := time.Now()
	for _, id := range appIDs {
		path := filepath.Join(a.dir, "tokens", url.PathEscape(id)+".jwt")
		tok, err := SentryToken(key, kid, a.SentryID(), a.AppID(id), now, now.Add(credentialsTTL))
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
			return err
		}
		a.tokens[id] = path
	}
	return nil
}

// writeCA writes a root certificate and an issuer (certificate and key,
// signed by the root) as Sentry's self-hosted mode reads them
// (--issuer-credentials: ca.crt, issuer.crt, issuer.key), in the shape
// Sentry gives the ones it makes itself (pkg/sentry/server/ca). Sentry
// would make them on its first start too, but it then reloads on seeing its
// own files appear, and a daprd asking at that moment fails.
func (a *Authority) writeCA() error {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	issKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caCert := func(org string) (*x509.Certificate, error) {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			return nil, err
		}
		return &x509.Certificate{
			SerialNumber: serial, Subject: pkix.Name{Organization: []string{org}},
			NotBefore: now.Add(-15 * time.Minute), NotAfter: now.Add(credentialsTTL),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			IsCA:                  true,
			BasicConstraintsValid: true,
		}, nil
	}
	root, err := caCert(a.TrustDomain)
	if err != nil {
		return err
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	iss, err := caCert(a.SentryID())
	if err != nil {
		return err
	}
	issDER, err := x509.CreateCertificate(rand.Reader, iss, root, &issKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	issKeyDER, err := x509.MarshalPKCS8PrivateKey(issKey)
	if err != nil {
		return err
	}
	a.TrustAnchors = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	ca := filepath.Join(a.dir, "ca")
	if err := os.Mkdir(ca, 0o700); err != nil {
		return err
	}
	for name, b := range map[string][]byte{
		"ca.crt":     a.TrustAnchors,
		"issuer.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issDER}),
		"issuer.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: issKeyDER}),
	} {
		if err := os.WriteFile(filepath.Join(ca, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Address is Sentry's gRPC address.
func (a *Authority) Address() string { return "127.0.0.1:" + strconv.Itoa(a.Port) }

// SentryID is Sentry's SPIFFE ID: the audience its JWKS validator demands.
func (a *Authority) SentryID() string {
	return "spiffe://" + a.TrustDomain + "/ns/" + a.Namespace + "/dapr-sentry"
}

// AppID is the SPIFFE ID daprd asks Sentry for on behalf of app id: the
// subject its JWKS validator demands.
func (a *Authority) AppID(id string) string {
	td := appTrustDomain
	if slices.Contains(controlPlaneIDs, id) {
		td = a.TrustDomain
	}
	return "spiffe://" + td + "/ns/" + a.Namespace + "/" + id
}

// TokenFile is the file holding app id's token.
func (a *Authority) TokenFile(id string) string { return a.tokens[id] }

func (a *Authority) configPath() string { return filepath.Join(a.dir, "sentry.yaml") }

// args are Sentry's arguments: every listener on loopback (the metrics port
// would default to Prometheus's 9090).
func (a *Authority) args() []string {
	return []string{
		"--issuer-credentials", filepath.Join(a.dir, "ca"),
		"--trust-domain", a.TrustDomain,
		"--config", a.configPath(),
		"--port", strconv.Itoa(a.Port), "--listen-address", "127.0.0.1",
		"--healthz-port", strconv.Itoa(a.HealthzPort), "--healthz-listen-address", "127.0.0.1",
		"--metrics-port", strconv.Itoa(a.MetricsPort), "--metrics-listen-address", "127.0.0.1",
	}
}

// daprdArgs are what every daprd of the run needs to get its certificate.
func (a *Authority) daprdArgs() []string {
	return []string{
		"--enable-mtls",
		"--sentry-address", a.Address(),
		"--control-plane-trust-domain", a.TrustDomain,
		"--control-plane-namespace", a.Namespace,
	}
}

// daprdEnv is the environment app id's daprd needs for its certificate.
func (a *Authority) daprdEnv(id string) []string {
	return []string{"DAPR_TRUST_ANCHORS=" + string(a.TrustAnchors), "DAPR_SENTRY_TOKEN_FILE=" + a.tokens[id]}
}

// healthURL answers 200 once Sentry serves, its JWKS loaded.
func (a *Authority) healthURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/healthz", a.HealthzPort)
}

// remove deletes the CA, the configuration and the tokens.
func (a *Authority) remove() { _ = os.RemoveAll(a.dir) }

// SentryToken returns a JWT signed with key (EdDSA, header kid) for Sentry's
// JWKS validator, which checks the signature, aud (audience: Sentry's SPIFFE
// ID) and sub (subject: the SPIFFE ID asked for), and exp and nbf. Tests use
// it to make a token with a key of their own.
func SentryToken(key ed25519.PrivateKey, kid, audience, subject string, notBefore, expires time.Time) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": kid})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": "daprun", "aud": audience, "sub": subject,
		"iat": notBefore.Unix(), "nbf": notBefore.Add(-time.Minute).Unix(), "exp": expires.Unix(),
	})
	if err != nil {
		return "", err
	}
	signed := b64(header) + "." + b64(claims)
	return signed + "." + b64(ed25519.Sign(key, []byte(signed))), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// namespace is the Kubernetes-style namespace daprd and Sentry see in env
// (the last NAMESPACE wins, as in exec), "default" without one.
func namespace(env []string) string {
	ns := "default"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "NAMESPACE="); ok {
			ns = v
		}
	}
	return ns
}
