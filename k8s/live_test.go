package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// crdsOnce installs Dapr 1.14's CRDs (charts/dapr/crds of the dapr module,
// as its Helm chart does) once per cluster.
var crdsOnce sync.Once

// daprCRDs returns the cluster with the Dapr CRDs installed and established.
func daprCRDs(t *testing.T) *cluster {
	t.Helper()
	c := apiServer(t)
	var err error
	crdsOnce.Do(func() {
		var dir []byte
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/dapr/dapr")
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		if dir, err = cmd.Output(); err != nil {
			err = fmt.Errorf("finding the dapr module: %w", err)
			return
		}
		crds := filepath.Join(strings.TrimSpace(string(dir)), "charts", "dapr", "crds")
		if out, errOut, e := c.kube("apply", "--server-side", "-f", crds); e != nil {
			err = fmt.Errorf("installing Dapr's CRDs: %v\n%s%s", e, out, errOut)
			return
		}
		if out, errOut, e := c.kube("wait", "--for", "condition=established", "--timeout", "60s", "crd", "--all"); e != nil {
			err = fmt.Errorf("Dapr's CRDs not established: %v\n%s%s", e, out, errOut)
		}
	})
	if err != nil {
		t.Fatal(err)
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
	if out, errOut, err := c.kube("apply", "--server-side", "-f", f); err != nil || len(warnings(errOut)) > 0 {
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

// inNamespace writes a kustomization that puts dir (relative to this
// package) into namespace ns, as `kustomize edit set namespace` would, and
// returns its directory.
func inNamespace(t *testing.T, dir, ns string) string {
	t.Helper()
	wrap := t.TempDir()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wrap, abs) // kustomize takes only relative resources
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n  - %s\n", ns, rel)
	if err := os.WriteFile(filepath.Join(wrap, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return wrap
}

// TestOverlaysOnARealAPIServer: every overlay, in a fresh namespace, and
// k8s/dapr-system pass a server-side dry run and a real server-side apply
// with no error and no warning, and the objects the server stored agree
// with each other (live cross-checks).
func TestOverlaysOnARealAPIServer(t *testing.T) {
	c := daprCRDs(t)
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			ns := "test-" + filepath.Base(o) + "-" + randomHex(3)
			applyClean(t, c, ns, "-k", inNamespace(t, o, ns))
			checkLive(t, c, ns, false)
		})
	}
	t.Run("dapr-system", func(t *testing.T) {
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
	c := daprCRDs(t)
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
// secrets, `kubectl apply`) as written, with the test's kubectl first on
// PATH, against the API server, without Helm (Dapr's CRDs installed as its
// chart would) and without waiting for rollouts (no nodes): every command
// must succeed without a warning, the secrets they create must be all that
// the live objects reference, and applying the namespace and the overlay
// again must change nothing.
func TestREADMEDeploySteps(t *testing.T) {
	c := daprCRDs(t)
	script := readmeSteps(t)
	bin := t.TempDir()
	if err := os.Symlink(c.kubectl, filepath.Join(bin, "kubectl")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's steps failed: %v\n--- script ---\n%s\n--- output ---\n%s%s", err, script, out.String(), errOut.String())
	}
	if w := warnings(errOut.String()); len(w) > 0 {
		t.Errorf("the README's steps warn:\n%s", strings.Join(w, "\n"))
	}
	checkLive(t, c, "daprshop", true)
	// Applying again (an upgrade) changes nothing and warns of nothing.
	before := versions(t, c, "daprshop")
	applyClean(t, c, "daprshop", "-f", "base/namespace.yaml")
	applyClean(t, c, "daprshop", "-k", "overlays/prod")
	if after := versions(t, c, "daprshop"); after != before {
		t.Errorf("applying the same overlay again changed objects:\nbefore:\n%s\nafter:\n%s", before, after)
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
	return out
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

// live is what the server holds in a namespace.
type live struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	pdbs        []policyv1.PodDisruptionBudget
	policies    []networkingv1.NetworkPolicy
	secrets     map[string]bool
	configs     map[string]bool
	components  []liveDapr
	subs        []liveDapr
	dconfigs    []liveDapr
}

// liveDapr is the part of a Dapr object the cross-checks read.
type liveDapr struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Scopes   []string          `json:"scopes"`
	Spec     struct {
		Metadata []struct {
			Name         string `json:"name"`
			SecretKeyRef struct {
				Name string `json:"name"`
			} `json:"secretKeyRef"`
		} `json:"metadata"`
		AccessControl struct {
			Policies []struct {
				AppID     string `json:"appId"`
				Namespace string `json:"namespace"`
			} `json:"policies"`
		} `json:"accessControl"`
		Secrets struct {
			Scopes []struct {
				AllowedSecrets []string `json:"allowedSecrets"`
			} `json:"scopes"`
		} `json:"secrets"`
	} `json:"spec"`
}

// get decodes `kubectl get <kind> -o json` in ns into a list's items.
func get[T any](t *testing.T, c *cluster, ns, kind string) []T {
	t.Helper()
	out, errOut, err := c.kube("-n", ns, "get", kind, "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get %s: %v %s", kind, err, errOut)
	}
	var list struct{ Items []T }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("decoding %s: %v", kind, err)
	}
	return list.Items
}

func names[T any](items []T, name func(T) string) map[string]bool {
	m := map[string]bool{}
	for _, it := range items {
		m[name(it)] = true
	}
	return m
}

// checkLive cross-checks the objects the server stored in ns: every HPA
// scales a Deployment, every Service and PDB selects the pods of exactly
// the Deployment of its name, every NetworkPolicy selects some pods, every
// dapr.io/config names a Configuration there, every scope and access
// control policy names an app ID of a Deployment; with secrets, every
// Secret referenced exists.
func checkLive(t *testing.T, c *cluster, ns string, secrets bool) {
	t.Helper()
	l := live{
		deployments: get[appsv1.Deployment](t, c, ns, "deployments"),
		services:    get[corev1.Service](t, c, ns, "services"),
		hpas:        get[autoscalingv2.HorizontalPodAutoscaler](t, c, ns, "horizontalpodautoscalers"),
		pdbs:        get[policyv1.PodDisruptionBudget](t, c, ns, "poddisruptionbudgets"),
		policies:    get[networkingv1.NetworkPolicy](t, c, ns, "networkpolicies"),
		components:  get[liveDapr](t, c, ns, "components.dapr.io"),
		subs:        get[liveDapr](t, c, ns, "subscriptions.dapr.io"),
		dconfigs:    get[liveDapr](t, c, ns, "configurations.dapr.io"),
	}
	l.secrets = names(get[corev1.Secret](t, c, ns, "secrets"), func(s corev1.Secret) string { return s.Name })
	l.configs = names(l.dconfigs, func(d liveDapr) string { return d.Metadata.Name })
	if len(l.deployments) == 0 {
		t.Fatalf("no Deployments stored in %s", ns)
	}
	deployments := names(l.deployments, func(d appsv1.Deployment) string { return d.Name })
	appIDs := map[string]bool{}
	for _, d := range l.deployments {
		a := d.Spec.Template.Annotations
		appIDs[a["dapr.io/app-id"]] = true
		if cfg := a["dapr.io/config"]; !l.configs[cfg] {
			t.Errorf("Deployment %s: dapr.io/config %q names no Configuration in %s", d.Name, cfg, ns)
		}
		if !secrets {
			continue
		}
		for _, key := range []string{"dapr.io/api-token-secret", "dapr.io/app-token-secret"} {
			if s, ok := a[key]; ok && !l.secrets[s] {
				t.Errorf("Deployment %s: %s names Secret %q, which the README's steps do not create", d.Name, key, s)
			}
		}
		for _, s := range podSecrets(d.Spec.Template.Spec) {
			if !l.secrets[s] {
				t.Errorf("Deployment %s references Secret %q, which the README's steps do not create", d.Name, s)
			}
		}
	}
	selects := func(kind, name string, sel *metav1.LabelSelector) []string {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Errorf("%s %s: selector: %v", kind, name, err)
			return nil
		}
		var hit []string
		for _, d := range l.deployments {
			if s.Matches(labels.Set(d.Spec.Template.Labels)) {
				hit = append(hit, d.Name)
			}
		}
		return hit
	}
	for _, h := range l.hpas {
		if ref := h.Spec.ScaleTargetRef; ref.Kind != "Deployment" || !deployments[ref.Name] {
			t.Errorf("HorizontalPodAutoscaler %s scales %s %q: no such Deployment", h.Name, ref.Kind, ref.Name)
		}
	}
	for _, s := range l.services {
		if hit := selects("Service", s.Name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}); !slices.Equal(hit, []string{s.Name}) {
			t.Errorf("Service %s selects the pods of %v, want those of Deployment %s alone", s.Name, hit, s.Name)
		}
	}
	for _, p := range l.pdbs {
		if hit := selects("PodDisruptionBudget", p.Name, p.Spec.Selector); !slices.Equal(hit, []string{p.Name}) {
			t.Errorf("PodDisruptionBudget %s selects the pods of %v, want those of Deployment %s alone", p.Name, hit, p.Name)
		}
	}
	for _, p := range l.policies {
		if hit := selects("NetworkPolicy", p.Name, &p.Spec.PodSelector); len(hit) == 0 {
			t.Errorf("NetworkPolicy %s selects no pod of the suite", p.Name)
		}
	}
	for _, d := range append(append(slices.Clone(l.components), l.subs...), l.dconfigs...) {
		for _, id := range d.Scopes {
			if !appIDs[id] {
				t.Errorf("%s scope %q is no app ID of a Deployment", d.Metadata.Name, id)
			}
		}
		for _, p := range d.Spec.AccessControl.Policies {
			if !appIDs[p.AppID] {
				t.Errorf("Configuration %s: access control policy for %q, no app ID of a Deployment", d.Metadata.Name, p.AppID)
			}
		}
		if !secrets {
			continue
		}
		for _, m := range d.Spec.Metadata {
			if s := m.SecretKeyRef.Name; s != "" && !l.secrets[s] {
				t.Errorf("%s metadata %s reads Secret %q, which the README's steps do not create", d.Metadata.Name, m.Name, s)
			}
		}
		for _, sc := range d.Spec.Secrets.Scopes {
			for _, s := range sc.AllowedSecrets {
				if !l.secrets[s] {
					t.Errorf("Configuration %s lets its app read Secret %q, which the README's steps do not create", d.Metadata.Name, s)
				}
			}
		}
	}
	if !secrets {
		return
	}
	for _, r := range get[rbacv1.Role](t, c, ns, "roles") {
		for _, rule := range r.Rules {
			if !slices.Contains(rule.Resources, "secrets") {
				continue
			}
			for _, s := range rule.ResourceNames {
				if !l.secrets[s] {
					t.Errorf("Role %s grants Secret %q, which the README's steps do not create", r.Name, s)
				}
			}
		}
	}
}

// podSecrets are the Secrets a pod template reads: env, envFrom, volumes.
func podSecrets(spec corev1.PodSpec) []string {
	var out []string
	for _, ct := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, e := range ct.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range ct.EnvFrom {
			if e.SecretRef != nil {
				out = append(out, e.SecretRef.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
	}
	return out
}
