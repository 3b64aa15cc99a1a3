package k8s

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// daprCRDs returns the API server named name with Dapr 1.14's CRDs
// (charts/dapr/crds of the dapr module, as its Helm chart installs them)
// installed and established.
func daprCRDs(t *testing.T, name string) *cluster {
	t.Helper()
	c := apiServer(t, name)
	c.crds.Do(func() {
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/dapr/dapr")
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		dir, err := cmd.Output()
		if err != nil {
			c.crdsErr = fmt.Errorf("finding the dapr module: %w", err)
			return
		}
		crds := filepath.Join(strings.TrimSpace(string(dir)), "charts", "dapr", "crds")
		if out, errOut, err := c.kube("apply", "--server-side", "-f", crds); err != nil {
			c.crdsErr = fmt.Errorf("installing Dapr's CRDs: %v\n%s%s", err, out, errOut)
			return
		}
		if out, errOut, err := c.kube("wait", "--for", "condition=established", "--timeout", "60s", "crd", "--all"); err != nil {
			c.crdsErr = fmt.Errorf("Dapr's CRDs not established: %v\n%s%s", err, out, errOut)
		}
	})
	if c.crdsErr != nil {
		t.Fatal(c.crdsErr)
	}
	return c
}

// warnings are the lines of kubectl's stderr that warn or err: the
// manifests must apply without any.
func warnings(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// applyClean applies the Namespace ns (a dry run cannot create what the
// rest of it lives in), then runs `kubectl apply --server-side` with args,
// first as a server-side dry run, and fails t on an error or any line on
// stderr.
func applyClean(t *testing.T, c *cluster, ns string, args ...string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "namespace.yaml")
	if err := os.WriteFile(f, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A field manager of its own: the manifests' apply (manager kubectl)
	// then owns their labels of the Namespace alone, and applying again
	// changes nothing.
	if out, errOut, err := c.kube("apply", "--server-side", "--field-manager", "test-namespace", "-f", f); err != nil || len(warnings(errOut)) > 0 {
		t.Fatalf("creating namespace %s: %v\n%s%s", ns, err, out, errOut)
	}
	for _, dry := range []bool{true, false} {
		a := append([]string{"apply", "--server-side"}, args...)
		if dry {
			a = append(a, "--dry-run=server")
		}
		out, errOut, err := c.kube(a...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(a, " "), err, out, errOut)
		}
		if w := warnings(errOut); len(w) > 0 {
			t.Errorf("kubectl %s warns:\n%s", strings.Join(a, " "), strings.Join(w, "\n"))
		}
		if !dry {
			return out
		}
	}
	return ""
}

// TestOverlaysOnARealAPIServer: every overlay, each on an API server of its
// own (a fresh namespace daprshop: the access control policies name it),
// and k8s/dapr-system pass a server-side dry run and a real server-side
// apply with no error and no warning, and the objects the server stored
// agree with each other (live cross-checks).
func TestOverlaysOnARealAPIServer(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			c := daprCRDs(t, o)
			applyClean(t, c, "daprshop", "-k", o)
			checkLive(t, c, "daprshop", false)
		})
	}
	t.Run("observability", func(t *testing.T) {
		c := daprCRDs(t, overlays[0])
		applyClean(t, c, "observability", "-k", "observability")
		if out, errOut, err := c.kube("-n", "observability", "get", "service", "jaeger-collector", "-o", "name"); err != nil {
			t.Errorf("the collector's Service is not stored: %v %s%s", err, out, errOut)
		}
	})
	t.Run("dapr-system", func(t *testing.T) {
		c := daprCRDs(t, overlays[0])
		applyClean(t, c, "dapr-system", "-k", "dapr-system")
		if out, errOut, err := c.kube("-n", "dapr-system", "get", "configurations.dapr.io", "daprsystem", "-o", "name"); err != nil {
			t.Errorf("the control plane's Configuration is not stored: %v %s%s", err, out, errOut)
		}
	})
}

// TestNegativeControls: the server really validates: a Component with a
// field its CRD does not have and a Deployment whose selector misses its
// pods' labels are refused, even in a dry run.
func TestNegativeControls(t *testing.T) {
	c := daprCRDs(t, overlays[0])
	ns := "test-negative-" + randomHex(3)
	if out, errOut, err := c.kube("create", "namespace", ns); err != nil {
		t.Fatalf("%v %s%s", err, out, errOut)
	}
	// want: the server's words for each refusal.
	bad := map[string]struct{ yaml, want string }{
		"component with an unknown field": {`apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: bad}
spec:
  type: state.redis
  version: v1
  metadata: []
  secretsStore: kubernetes
`, ".spec.secretsStore: field not declared in schema"},
		"deployment whose selector misses its labels": {`apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: payments}}
    spec:
      containers: [{name: c, image: x}]
`, "`selector` does not match template `labels`"},
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(f, []byte(b.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, dry := range []string{"--dry-run=server", "--dry-run=none"} {
				out, errOut, err := c.kube("-n", ns, "apply", "--server-side", dry, "-f", f)
				if err == nil || !strings.Contains(errOut, b.want) {
					t.Errorf("apply %s: %v\n%s%s\nwant a refusal saying %q", dry, err, out, errOut, b.want)
				}
			}
		})
	}
}

// TestREADMEDeploySteps runs the README's deploy steps 3 and 4 (namespace,
// secrets, `kubectl apply`) as written, twice, with the test's kubectl first on
// PATH, against the API server, without Helm (Dapr's CRDs installed as its
// chart would) and without waiting for rollouts (no nodes): every command
// must succeed without a warning, the secrets they create must be all that
// the live objects reference, and applying the namespace and the overlay
// again must change nothing.
func TestREADMEDeploySteps(t *testing.T) {
	c := daprCRDs(t, "readme")
	script := readmeSteps(t)
	bin := t.TempDir()
	if err := os.Symlink(c.kubectl, filepath.Join(bin, "kubectl")); err != nil {
		t.Fatal(err)
	}
	// Twice: a user runs the block again after a step failed.
	for run := 1; run <= 2; run++ {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("the README's steps failed (run %d): %v\n--- script ---\n%s\n--- output ---\n%s%s", run, err, script, out.String(), errOut.String())
		}
		if w := warnings(errOut.String()); len(w) > 0 {
			t.Errorf("the README's steps warn (run %d):\n%s", run, strings.Join(w, "\n"))
		}
	}
	checkLive(t, c, "daprshop", true)
	// Applying again (an upgrade) after an autoscaler changed a count
	// (scaled as a HorizontalPodAutoscaler does, through the scale
	// subresource) conflicts with nothing, changes nothing, warns of nothing.
	if out, errOut, err := c.kube("-n", "daprshop", "scale", "deployment", "orders", "--replicas", "5"); err != nil {
		t.Fatalf("scaling orders: %v %s%s", err, out, errOut)
	}
	before := versions(t, c, "daprshop")
	applyClean(t, c, "daprshop", "-f", "base/namespace.yaml")
	applyClean(t, c, "daprshop", "-k", "overlays/prod")
	if after := versions(t, c, "daprshop"); after != before {
		t.Errorf("applying the same overlay again changed objects:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out, _, _ := c.kube("-n", "daprshop", "get", "deployment", "orders", "-o", "jsonpath={.spec.replicas}"); out != "5" {
		t.Errorf("applying again set orders' replicas to %s: the autoscaler's 5 must stay", out)
	}
}

// versions lists kind/name=resourceVersion of every object the overlays
// put in ns.
func versions(t *testing.T, c *cluster, ns string) string {
	t.Helper()
	kinds := "deployments,services,serviceaccounts,horizontalpodautoscalers,poddisruptionbudgets," +
		"networkpolicies,ingresses,roles,rolebindings,components.dapr.io,configurations.dapr.io,subscriptions.dapr.io,resiliencies.dapr.io"
	out, errOut, err := c.kube("-n", ns, "get", kinds, "-o",
		`jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}`)
	if err != nil {
		t.Fatalf("kubectl get: %v %s", err, errOut)
	}
	if strings.Count(out, "\n") < 50 {
		t.Fatalf("only %d objects in %s:\n%s", strings.Count(out, "\n"), ns, out)
	}
	nsVersion, errOut, err := c.kube("get", "namespace", ns, "-o", "jsonpath={.metadata.resourceVersion}")
	if err != nil {
		t.Fatalf("kubectl get namespace: %v %s", err, errOut)
	}
	return "Namespace/" + ns + "=" + nsVersion + "\n" + out
}

// readmeSteps is the README's deploy block from step 3 to the apply of step
// 4, without the wait for rollouts (which needs nodes).
func readmeSteps(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "# 3. ")
	end := strings.Index(s, "kubectl -n daprshop rollout status")
	if start < 0 || end < start {
		t.Fatal("README: no deploy block from '# 3. ' to 'kubectl -n daprshop rollout status'")
	}
	return s[start:end]
}
