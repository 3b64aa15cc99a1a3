package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dapr/dapr/pkg/acl"
	componentsv1 "github.com/dapr/dapr/pkg/apis/components/v1alpha1"
	configv1 "github.com/dapr/dapr/pkg/apis/configuration/v1alpha1"
	resiliencyv1 "github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	subscriptionsv2 "github.com/dapr/dapr/pkg/apis/subscriptions/v2alpha1"
	daprconfig "github.com/dapr/dapr/pkg/config"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlays are the deployable variants.
var overlays = []string{"overlays/dev", "overlays/prod"}

// build is one overlay rendered by kustomize and decoded strictly.
type build struct {
	namespace   string
	deployments map[string]appsv1.Deployment
	services    map[string]corev1.Service
	configMaps  map[string]corev1.ConfigMap
	hpas        map[string]autoscalingv2.HorizontalPodAutoscaler
	pdbs        map[string]policyv1.PodDisruptionBudget
	policies    []networkingv1.NetworkPolicy
	components  map[string]componentsv1.Component
	configs     map[string]configv1.Configuration
	resiliency  []resiliencyv1.Resiliency
	subs        []subscriptionsv2.Subscription
	roles       map[string]rbacv1.Role
	bindings    []rbacv1.RoleBinding
	kinds       map[string]int
}

// render runs kustomize on dir (as `kustomize build` does) and decodes every
// object into its type, refusing unknown fields.
func render(t *testing.T, dir string) *build {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b := &build{deployments: map[string]appsv1.Deployment{}, services: map[string]corev1.Service{}, configMaps: map[string]corev1.ConfigMap{},
		hpas: map[string]autoscalingv2.HorizontalPodAutoscaler{}, pdbs: map[string]policyv1.PodDisruptionBudget{},
		components: map[string]componentsv1.Component{}, configs: map[string]configv1.Configuration{}, roles: map[string]rbacv1.Role{},
		kinds: map[string]int{}}
	for _, r := range rm.Resources() {
		raw, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		kind, name := r.GetKind(), r.GetName()
		b.kinds[kind]++
		if kind != "Namespace" && r.GetNamespace() != "" {
			if b.namespace == "" {
				b.namespace = r.GetNamespace()
			} else if b.namespace != r.GetNamespace() {
				t.Errorf("%s %s in namespace %s, others in %s", kind, name, r.GetNamespace(), b.namespace)
			}
		}
		switch kind {
		case "Namespace":
			decode[corev1.Namespace](t, kind, name, raw)
		case "ServiceAccount":
			decode[corev1.ServiceAccount](t, kind, name, raw)
		case "Ingress":
			decode[networkingv1.Ingress](t, kind, name, raw)
		case "Service":
			b.services[name] = decode[corev1.Service](t, kind, name, raw)
		case "ConfigMap":
			b.configMaps[name] = decode[corev1.ConfigMap](t, kind, name, raw)
		case "Deployment":
			b.deployments[name] = decode[appsv1.Deployment](t, kind, name, raw)
		case "HorizontalPodAutoscaler":
			b.hpas[name] = decode[autoscalingv2.HorizontalPodAutoscaler](t, kind, name, raw)
		case "PodDisruptionBudget":
			b.pdbs[name] = decode[policyv1.PodDisruptionBudget](t, kind, name, raw)
		case "NetworkPolicy":
			b.policies = append(b.policies, decode[networkingv1.NetworkPolicy](t, kind, name, raw))
		case "Component":
			b.components[name] = decode[componentsv1.Component](t, kind, name, raw)
		case "Configuration":
			b.configs[name] = decode[configv1.Configuration](t, kind, name, raw)
		case "Resiliency":
			b.resiliency = append(b.resiliency, decode[resiliencyv1.Resiliency](t, kind, name, raw))
		case "Subscription":
			b.subs = append(b.subs, decode[subscriptionsv2.Subscription](t, kind, name, raw))
		case "Role":
			b.roles[name] = decode[rbacv1.Role](t, kind, name, raw)
		case "RoleBinding":
			b.bindings = append(b.bindings, decode[rbacv1.RoleBinding](t, kind, name, raw))
		default:
			t.Errorf("%s %s: a kind the tests do not know", kind, name)
		}
	}
	return b
}

// decode is strict into a new T.
func decode[T any](t *testing.T, kind, name string, raw []byte) T {
	t.Helper()
	var v T
	strict(t, kind, name, raw, &v)
	return v
}

// strict decodes raw into v and fails on fields v does not have.
func strict(t *testing.T, kind, name string, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s %s does not decode strictly: %v", kind, name, err)
	}
}

// runFile is the part of dapr.yaml the manifests must agree with.
type runFile struct {
	// Common holds what every app of dapr.yaml shares: how its sidecar
	// talks to it and probes it.
	Common struct {
		AppProtocol          string `json:"appProtocol"`
		EnableAppHealthCheck bool   `json:"enableAppHealthCheck"`
		AppHealthCheckPath   string `json:"appHealthCheckPath"`
	} `json:"common"`
	Apps []struct {
		AppID          string `json:"appID"`
		AppDirPath     string `json:"appDirPath"`
		AppPort        int    `json:"appPort"`
		ConfigFilePath string `json:"configFilePath"`
	} `json:"apps"`
}

// loadRunFile returns the app port of every app of dapr.yaml, by app ID:
// the suite's services, which every test of "each service" iterates.
func loadRunFile(t *testing.T) map[string]int {
	t.Helper()
	ports := map[string]int{}
	for _, a := range readRunFile(t).Apps {
		ports[a.AppID] = a.AppPort
	}
	if len(ports) < 2 || ports["gateway"] == 0 {
		t.Fatalf("dapr.yaml apps: %v", ports)
	}
	return ports
}

// nodeApp reports whether app is a Node.js service (a package.json in its
// directory, as e2e's build decides; the Makefile's NODE_SERVICES) rather
// than a Go one: the two bound their memory and build their images
// differently.
func nodeApp(t *testing.T, app string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join("..", "services", app, "package.json"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// readRunFile decodes ../dapr.yaml.
func readRunFile(t *testing.T) runFile {
	t.Helper()
	b, err := os.ReadFile("../dapr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f runFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestOverlaysBuildAndDecode: every overlay builds and holds every kind the
// suite needs: the per-app objects once for each app of dapr.yaml and no
// other, the Dapr resources as many as the kafka-postgres profile has.
func TestOverlaysBuildAndDecode(t *testing.T) {
	ports := loadRunFile(t)
	apps := len(ports)
	components := len(profileComponents(t, "kafka-postgres"))
	subs := len(objectsOf(t, filepath.Join("..", "components", "kafka-postgres", "subscriptions.yaml"), "Subscription"))
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			b := render(t, o)
			want := map[string]int{"Namespace": 1, "Deployment": apps, "Service": apps, "ServiceAccount": apps, "PodDisruptionBudget": apps,
				"HorizontalPodAutoscaler": apps, "Ingress": 1, "NetworkPolicy": 4, "Component": components, "Configuration": apps,
				"Resiliency": 1, "Subscription": subs}
			for kind, n := range want {
				if b.kinds[kind] != n {
					t.Errorf("%d %s objects, want %d", b.kinds[kind], kind, n)
				}
			}
			// The counts match both ways only if the names do too.
			for name := range b.deployments {
				if _, ok := ports[name]; !ok {
					t.Errorf("Deployment %s is no app of dapr.yaml", name)
				}
			}
			if b.namespace != "daprshop" {
				t.Errorf("namespace %q", b.namespace)
			}
		})
	}
}

// TestDeploymentsMatchTheRunFile: each Deployment's Dapr annotations name
// its app ID, the port and the Configuration dapr.yaml and the service use,
// and its containers are locked down and bounded.
func TestDeploymentsMatchTheRunFile(t *testing.T) {
	ports := loadRunFile(t)
	common := readRunFile(t).Common
	for _, o := range overlays {
		b := render(t, o)
		for app, port := range ports {
			d, ok := b.deployments[app]
			if !ok {
				t.Errorf("%s: no Deployment %s", o, app)
				continue
			}
			a := d.Spec.Template.Annotations
			checks := map[string]string{
				"dapr.io/enabled": "true", "dapr.io/app-id": app, "dapr.io/app-port": strconv.Itoa(port),
				"dapr.io/config": app + "-config", "dapr.io/enable-metrics": "true", "dapr.io/metrics-port": "9090",
				"dapr.io/api-token-secret": "daprshop-" + app + "-dapr-api-token", "dapr.io/app-token-secret": "daprshop-" + app + "-app-api-token",
				// As the sidecars run locally (dapr.yaml's common section).
				"dapr.io/app-protocol": common.AppProtocol, "dapr.io/enable-app-health-check": strconv.FormatBool(common.EnableAppHealthCheck),
				"dapr.io/app-health-check-path": common.AppHealthCheckPath,
			}
			for k, v := range checks {
				if a[k] != v {
					t.Errorf("%s %s: annotation %s = %q, want %q", o, app, k, a[k], v)
				}
			}
			if a["dapr.io/log-level"] == "" {
				t.Errorf("%s %s: no dapr.io/log-level", o, app)
			}
			if _, ok := b.configs[a["dapr.io/config"]]; !ok {
				t.Errorf("%s %s: Configuration %s is not deployed", o, app, a["dapr.io/config"])
			}
			if d.Spec.Template.Spec.ServiceAccountName != app {
				t.Errorf("%s %s: service account %q", o, app, d.Spec.Template.Spec.ServiceAccountName)
			}
			pod := d.Spec.Template.Spec.SecurityContext
			if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.SeccompProfile == nil {
				t.Errorf("%s %s: pod security context %+v", o, app, pod)
			}
			if len(d.Spec.Template.Spec.Containers) != 1 {
				t.Fatalf("%s %s: %d containers", o, app, len(d.Spec.Template.Spec.Containers))
			}
			c := d.Spec.Template.Spec.Containers[0]
			env := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				env[e.Name] = e
			}
			if env["APP_PORT"].Value != strconv.Itoa(port) || len(c.Ports) != 1 || int(c.Ports[0].ContainerPort) != port {
				t.Errorf("%s %s: APP_PORT %q, container ports %+v, want %d", o, app, env["APP_PORT"].Value, c.Ports, port)
			}
			// The injector gives both secrets to daprd only (Dapr 1.14,
			// patcher/sidecar_container.go): the app needs them too.
			for name, annotation := range map[string]string{"APP_API_TOKEN": "dapr.io/app-token-secret", "DAPR_API_TOKEN": "dapr.io/api-token-secret"} {
				if ref := env[name].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != checks[annotation] || ref.SecretKeyRef.Key != "token" {
					t.Errorf("%s %s: %s must come from the secret %s names (key token)", o, app, name, annotation)
				}
			}
			checkMemoryBound(t, o, app, nodeApp(t, app), c, env)
			if !strings.HasPrefix(c.Image, "daprshop/"+app+":") || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s %s: image %q: want daprshop/%s with the overlay's tag", o, app, c.Image, app)
			}
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
				c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%s %s: probes %+v %+v", o, app, c.LivenessProbe, c.ReadinessProbe)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if c.Resources.Requests.Name(r, "").IsZero() || c.Resources.Limits.Name(r, "").IsZero() {
					t.Errorf("%s %s: no %s request and limit", o, app, r)
				}
			}
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
				*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s %s: container security context %+v", o, app, sc)
			}
			if _, ok := b.pdbs[app]; !ok {
				t.Errorf("%s %s: no PodDisruptionBudget", o, app)
			}
			if s, ok := b.services[app]; !ok || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != "http" {
				t.Errorf("%s %s: Service %+v", o, app, s.Spec.Ports)
			}
		}
		// Every service scales out, orders too (its changes of an order
		// run under the order's lease in the store): an autoscaler each,
		// and production runs several replicas of each.
		for app, d := range b.deployments {
			hpa, ok := b.hpas[app]
			if !ok || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != app ||
				hpa.Spec.MinReplicas == nil || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
				t.Errorf("%s %s: HorizontalPodAutoscaler %+v", o, app, hpa.Spec)
			}
			if pdb, ok := b.pdbs[app]; !ok || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("%s %s: PodDisruptionBudget must let one pod go at a time", o, app)
			}
			// The autoscaler owns the count: a Deployment that set one would
			// take it back at every apply (server-side apply: a conflict
			// with the autoscaler's scale subresource).
			if d.Spec.Replicas != nil {
				t.Errorf("%s %s: replicas %d set: leave the count to the autoscaler", o, app, *d.Spec.Replicas)
			}
			if o == "overlays/prod" && *hpa.Spec.MinReplicas < 2 {
				t.Errorf("%s %s: autoscaler from %d: want 2 or more", o, app, *hpa.Spec.MinReplicas)
			}
		}
	}
}

// maxOldSpace reads Node's heap bound (MiB) from NODE_OPTIONS.
var maxOldSpace = regexp.MustCompile(`(?:^|\s)--max-old-space-size=(\d+)(?:\s|$)`)

// checkMemoryBound: neither runtime reads the container's memory limit by
// itself, so each is told. A Go service's GOMEMLIMIT comes from the
// container's limits.memory (the collector works harder near it instead of
// the pod being killed). A Node service's V8 old generation is bounded by
// NODE_OPTIONS --max-old-space-size to at most half the limit: the rest of
// a Node process (binary, code, young generation, Buffers) lives outside
// that bound, and the Go variable would mean nothing to it.
func checkMemoryBound(t *testing.T, o, app string, node bool, c corev1.Container, env map[string]corev1.EnvVar) {
	t.Helper()
	if !node {
		if ref := env["GOMEMLIMIT"].ValueFrom; ref == nil || ref.ResourceFieldRef == nil || ref.ResourceFieldRef.Resource != "limits.memory" ||
			(ref.ResourceFieldRef.ContainerName != "" && ref.ResourceFieldRef.ContainerName != c.Name) {
			t.Errorf("%s %s: GOMEMLIMIT must come from the container's limits.memory", o, app)
		}
		return
	}
	if _, ok := env["GOMEMLIMIT"]; ok {
		t.Errorf("%s %s: GOMEMLIMIT set for a Node.js service, which does not read it", o, app)
	}
	m := maxOldSpace.FindStringSubmatch(env["NODE_OPTIONS"].Value)
	if m == nil || env["NODE_OPTIONS"].ValueFrom != nil {
		t.Errorf("%s %s: NODE_OPTIONS %q: want --max-old-space-size=<MiB> bounding the heap under the memory limit", o, app, env["NODE_OPTIONS"].Value)
		return
	}
	heap, _ := strconv.ParseInt(m[1], 10, 64)
	limit := c.Resources.Limits.Memory().Value() >> 20
	if heap <= 0 || heap*2 > limit {
		t.Errorf("%s %s: --max-old-space-size=%d MiB with a memory limit of %d MiB: want at most half the limit", o, app, heap, limit)
	}
}

// component is a Dapr component as the local profiles write it.
type component struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Type     string `json:"type"`
		Version  string `json:"version"`
		Metadata []struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		} `json:"metadata"`
	} `json:"spec"`
	Scopes []string `json:"scopes"`
}

// profileComponents reads the components of a local profile.
func profileComponents(t *testing.T, profile string) map[string]component {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "components", profile, "*.yaml"))
	out := map[string]component{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			var c component
			if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if c.Kind == "Component" {
				out[c.Metadata.Name] = c
			}
		}
	}
	return out
}

// TestComponentsAreTheKafkaPostgresProfile: the cluster gets the components
// the code names, as the kafka-postgres profile defines them: same names,
// types, metadata and scopes. Only where secrets come from differs, and the
// outboxes' internal topics in the pub/sub's scopes, which carry the
// namespace.
func TestComponentsAreTheKafkaPostgresProfile(t *testing.T) {
	local := profileComponents(t, "kafka-postgres")
	var named []string
	for name := range local {
		named = append(named, name)
	}
	if !slices.Contains(named, "events") || !slices.Contains(named, "secrets") {
		t.Fatalf("kafka-postgres components %v: want events and secrets among them", named)
	}
	for _, o := range overlays {
		b := render(t, o)
		for name := range b.components {
			if _, ok := local[name]; !ok {
				t.Errorf("%s: component %s is not in the kafka-postgres profile", o, name)
			}
		}
		for _, name := range named {
			c, ok := b.components[name]
			l, lok := local[name]
			if !ok || !lok {
				t.Errorf("%s: component %s: in cluster %v, in kafka-postgres %v", o, name, ok, lok)
				continue
			}
			if name == "secrets" {
				if c.Spec.Type != "secretstores.kubernetes" {
					t.Errorf("%s: secrets is %s", o, c.Spec.Type)
				}
				continue
			}
			if c.Spec.Type != l.Spec.Type || c.Spec.Version != l.Spec.Version || !slices.Equal(c.Scopes, l.Scopes) {
				t.Errorf("%s: %s is %s %s scoped %v, kafka-postgres has %s %s scoped %v", o, name,
					c.Spec.Type, c.Spec.Version, c.Scopes, l.Spec.Type, l.Spec.Version, l.Scopes)
			}
			var got, want []string
			for _, m := range c.Spec.Metadata {
				got = append(got, m.Name)
			}
			for _, m := range l.Spec.Metadata {
				want = append(want, m.Name)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s metadata %v, kafka-postgres %v", o, name, got, want)
			}
			if c.Auth.SecretStore != "kubernetes" {
				t.Errorf("%s: %s takes its secrets from %q, want kubernetes", o, name, c.Auth.SecretStore)
			}
		}
		// The pub/sub's scopes are the profile's but for the outboxes'
		// internal topics, <namespace><app><topic>outbox (Dapr 1.14): the
		// profile's run in namespace "default". Each app whose store has an
		// outbox may publish and read its internal topic.
		outboxes := map[string]string{} // app -> internal topic in the profile
		for _, c := range local {
			for _, m := range c.Spec.Metadata {
				if topic, _ := m.Value.(string); m.Name == "outboxPublishTopic" {
					for _, app := range c.Scopes {
						outboxes[app] = app + topic + "outbox"
					}
				}
			}
		}
		if len(outboxes) == 0 {
			t.Fatalf("no state store of the kafka-postgres profile has an outbox")
		}
		for _, name := range []string{"publishingScopes", "subscriptionScopes"} {
			profile := scopeValue(local["events"], name)
			for _, internal := range outboxes {
				profile = strings.ReplaceAll(profile, "default"+internal, b.namespace+internal)
			}
			cluster := ""
			for _, m := range b.components["events"].Spec.Metadata {
				if m.Name == name {
					cluster = m.Value.String()
				}
			}
			if cluster == "" || !reflect.DeepEqual(parseScopes(cluster), parseScopes(profile)) {
				t.Errorf("%s: events %s\n %q\nwant the profile's with the namespace %s in the outboxes' topics\n %q", o, name, cluster, b.namespace, profile)
			}
			for app, internal := range outboxes {
				if !slices.Contains(parseScopes(cluster)[app], b.namespace+internal) {
					t.Errorf("%s: events %s: %s may not use its outbox's topic %s%s", o, name, app, b.namespace, internal)
				}
			}
		}
	}
}

// scopeValue is the value of a local component's metadata field name.
func scopeValue(c component, name string) string {
	for _, m := range c.Spec.Metadata {
		if m.Name == name {
			v, _ := m.Value.(string)
			return v
		}
	}
	return ""
}

// parseScopes reads a pub/sub scope value, "app1=t1,t2;app2=", as each
// app's sorted topics: the order of apps and topics means nothing to Dapr.
func parseScopes(v string) map[string][]string {
	out := map[string][]string{}
	for _, entry := range strings.Split(v, ";") {
		app, topics, ok := strings.Cut(entry, "=")
		if !ok {
			continue
		}
		list := []string{}
		for _, topic := range strings.Split(topics, ",") {
			if topic = strings.TrimSpace(topic); topic != "" {
				list = append(list, topic)
			}
		}
		slices.Sort(list)
		out[strings.TrimSpace(app)] = list
	}
	return out
}

// TestSubscriptionsAndResiliencyAreTheProfiles: the cluster's subscriptions
// (pub/sub name, topics, routes, dead-letter topics, scopes) and resiliency
// policies are the kafka-postgres profile's, which the integration tests run
// through real sidecars: a route, a policy name or a duration changed in one
// place only fails here.
func TestSubscriptionsAndResiliencyAreTheProfiles(t *testing.T) {
	for _, kind := range []struct{ file, kind string }{{"subscriptions.yaml", "Subscription"}, {"resiliency.yaml", "Resiliency"}} {
		local := objectsOf(t, filepath.Join("..", "components", "kafka-postgres", kind.file), kind.kind)
		for _, o := range overlays {
			b := render(t, o)
			cluster := map[string]string{}
			var items []any
			switch kind.kind {
			case "Subscription":
				for _, s := range b.subs {
					items = append(items, s)
				}
			default:
				for _, r := range b.resiliency {
					items = append(items, r)
				}
			}
			for _, it := range items {
				raw, _ := json.Marshal(it)
				var m map[string]any
				_ = json.Unmarshal(raw, &m)
				name := m["metadata"].(map[string]any)["name"].(string)
				cluster[name] = comparable(m)
			}
			if len(cluster) != len(local) {
				t.Errorf("%s: %d %ss, kafka-postgres has %d", o, len(cluster), kind.kind, len(local))
			}
			for name, want := range local {
				if got, ok := cluster[name]; !ok || got != want {
					t.Errorf("%s: %s %s differs from kafka-postgres's:\n cluster: %s\n profile: %s", o, kind.kind, name, got, want)
				}
			}
		}
	}
}

// objectsOf reads the objects of kind in a multi-document YAML file, as the
// comparable JSON of their spec and scopes, by name.
func objectsOf(t *testing.T, file, kind string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, doc := range strings.Split(string(b), "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if m["kind"] != kind {
			continue
		}
		out[m["metadata"].(map[string]any)["name"].(string)] = comparable(m)
	}
	return out
}

// comparable is the JSON of an object's spec and scopes (maps marshal with
// sorted keys), zero values pruned.
func comparable(m map[string]any) string {
	b, _ := json.Marshal(map[string]any{"spec": prune(m["spec"]), "scopes": prune(m["scopes"])})
	return string(b)
}

// prune drops zero values (null, "", false, 0, empty lists and maps),
// recursively: the typed decoding writes some that the YAML leaves out.
func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if p := prune(e); p != nil {
				out[k] = p
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, e := range x {
			if p := prune(e); p != nil {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case string:
		if x == "" {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	case nil:
		return nil
	}
	return v
}

// TestAccessControl: only orders may invoke payments; users and orders'
// public routes only from the gateway (orders no longer reads users: the
// gateway's token proves the owner), shipping reading an account (the name
// on a label), orders reserving stock by named operations; notifications
// and shipping only from the gateway (shipping learns of orders from
// events); every sidecar denies by default, in
// the namespace the suite is deployed to. Written out by hand, as the
// intent; every app of dapr.yaml must have its line.
func TestAccessControl(t *testing.T) {
	want := map[string]map[string]string{ // callee -> caller -> "all" or the operations allowed
		"gateway":       {},
		"users":         {"gateway": "all", "shipping": "GET /users/usr_*"},
		"products":      {"gateway": "all", "orders": "POST,DELETE /products/prd_*/reservations"},
		"orders":        {"gateway": "all"},
		"payments":      {"orders": "all"},
		"notifications": {"gateway": "all"},
		"shipping":      {"gateway": "all"},
	}
	for app := range loadRunFile(t) {
		if _, ok := want[app]; !ok {
			t.Errorf("app %s of dapr.yaml: say here who may invoke it", app)
		}
	}
	for _, o := range overlays {
		b := render(t, o)
		for app, callers := range want {
			c, ok := b.configs[app+"-config"]
			if !ok || c.Spec.AccessControlSpec == nil {
				t.Errorf("%s: %s-config has no access control", o, app)
				continue
			}
			ac := c.Spec.AccessControlSpec
			if ac.DefaultAction != "deny" {
				t.Errorf("%s: %s allows by default", o, app)
			}
			got := map[string]string{}
			for _, p := range ac.AppPolicies {
				if p.Namespace != b.namespace {
					t.Errorf("%s: %s policy for %s in namespace %q, the suite is in %q", o, app, p.AppName, p.Namespace, b.namespace)
				}
				if p.DefaultAction == "allow" {
					got[p.AppName] = "all"
					continue
				}
				var ops []string
				for _, op := range p.AppOperationActions {
					if op.Action == "allow" {
						ops = append(ops, strings.Join(op.HTTPVerb, ",")+" "+op.Operation)
					}
				}
				got[p.AppName] = strings.Join(ops, ", ")
			}
			if fmt.Sprint(got) != fmt.Sprint(callers) {
				t.Errorf("%s: %s may be invoked by %v, want %v", o, app, got, callers)
			}
			if c.Spec.TracingSpec == nil || c.Spec.TracingSpec.Zipkin == nil || c.Spec.TracingSpec.Zipkin.EndpointAddresss == "" {
				t.Errorf("%s: %s-config does not export traces", o, app)
			}
		}
	}
}

// TestSecretsAreDocumented: every Kubernetes secret the manifests read is
// created by a command of the README's deploy section.
func TestSecretsAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	b := render(t, overlays[1])
	names := map[string]bool{}
	for _, d := range b.deployments {
		a := d.Spec.Template.Annotations
		names[a["dapr.io/api-token-secret"]], names[a["dapr.io/app-token-secret"]] = true, true
	}
	for _, c := range b.components {
		for _, m := range c.Spec.Metadata {
			if m.SecretKeyRef.Name != "" {
				names[m.SecretKeyRef.Name] = true
			}
		}
	}
	for _, c := range b.configs {
		for _, s := range c.Spec.Secrets.Scopes {
			for _, n := range s.AllowedSecrets {
				names[n] = true
			}
		}
	}
	loop := regexp.MustCompile(`for app in ([a-z ]+); do`).FindSubmatch(readme)
	token := regexp.MustCompile(`^daprshop-([a-z]+)-((dapr|app)-api-token)$`)
	for n := range names {
		if m := token.FindStringSubmatch(n); m != nil {
			// Created per app by a loop: for app in ...; do ... daprshop-$app-<kind> ...
			if loop == nil || !slices.Contains(strings.Fields(string(loop[1])), m[1]) ||
				!regexp.MustCompile(createSecret+`"?daprshop-\$app-`+m[2]).Match(readme) {
				t.Errorf("README does not show how to create the secret %s", n)
			}
			continue
		}
		if !regexp.MustCompile(createSecret + regexp.QuoteMeta(n) + `\b`).Match(readme) {
			t.Errorf("README does not show how to create the secret %s", n)
		}
	}
	if len(names) < 15 {
		t.Fatalf("only %d secrets found: %v", len(names), names)
	}
}

// createSecret matches where the README creates a secret: `kubectl create
// secret generic NAME`, or its step 3's `secret NAME` (a shell function
// around it).
const createSecret = `(?m)(create secret generic |^\s*secret )`

// TestDockerfiles: one per service (make images builds
// services/<app>/Dockerfile), multi-stage, a distroless final stage, the
// non-root user the Deployments run as (65532) and the run file's port.
// A Go service: a static binary (distroless static or scratch) as the
// entrypoint. A Node.js service: Node 20 (package.json's engines) on
// distroless nodejs20, dependencies installed from the lockfile, running
// package.json's main: no shell or npm at run time, so nothing writes to the
// read-only root filesystem.
func TestDockerfiles(t *testing.T) {
	for app, port := range loadRunFile(t) {
		b, err := os.ReadFile(filepath.Join("..", "services", app, "Dockerfile"))
		if err != nil {
			t.Errorf("%s: %v", app, err)
			continue
		}
		s := string(b)
		froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(s, -1)
		final := ""
		if len(froms) > 0 {
			final = froms[len(froms)-1][1]
		}
		want := []string{"USER 65532", fmt.Sprintf("EXPOSE %d", port), fmt.Sprintf("APP_PORT=%d", port)}
		if nodeApp(t, app) {
			if len(froms) < 2 || !strings.Contains(final, "distroless/nodejs20") {
				t.Errorf("%s: stages %v: want a build stage and a distroless nodejs20 final stage", app, froms)
			}
			var pkg struct{ Main string }
			if raw, err := os.ReadFile(filepath.Join("..", "services", app, "package.json")); err != nil || json.Unmarshal(raw, &pkg) != nil || pkg.Main == "" {
				t.Errorf("%s: package.json names no main (%v)", app, err)
			}
			// Relative to the image's WORKDIR or absolute: "dist/...", "/app/dist/...".
			run := regexp.MustCompile(`(?m)^(?:CMD|ENTRYPOINT) \[.*"(?:[^"]*/)?` + regexp.QuoteMeta(strings.TrimPrefix(pkg.Main, "./")) + `"\]`)
			if pkg.Main != "" && !run.MatchString(s) {
				t.Errorf("%s: Dockerfile runs no %s (package.json's main) in JSON form", app, pkg.Main)
			}
			want = append(want, "npm ci")
		} else {
			if len(froms) < 2 || !(strings.Contains(final, "distroless") || final == "scratch") {
				t.Errorf("%s: stages %v: want a build stage and a distroless or scratch final stage", app, froms)
			}
			want = append(want, "CGO_ENABLED=0", `ENTRYPOINT ["/`+app+`"]`)
		}
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Errorf("%s: Dockerfile lacks %q", app, w)
			}
		}
	}
}

// TestConfigurationsAreTheLocalOnes: each app's Configuration in the
// cluster lets it read the secrets its local Configuration
// (dapr.yaml's configFilePath) does, no more, with the same default, and
// keeps the same metrics settings: the integration tests run the local ones.
// Tracing and access control differ on purpose (a collector; mTLS
// identities exist only in the cluster).
func TestConfigurationsAreTheLocalOnes(t *testing.T) {
	// shared is what both Configurations must say alike.
	type shared struct {
		Secrets any `json:"secrets"`
		Metric  any `json:"metric"`
	}
	pick := func(raw []byte) string {
		var c struct{ Spec shared }
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"secrets": prune(c.Spec.Secrets), "metric": prune(c.Spec.Metric)})
		return string(b)
	}
	b := render(t, overlays[1])
	apps := readRunFile(t).Apps
	for _, a := range apps {
		file := filepath.Join("..", a.AppDirPath, a.ConfigFilePath)
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v", a.AppID, err)
			continue
		}
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		c, ok := b.configs[a.AppID+"-config"]
		if !ok {
			t.Errorf("%s: no Configuration %s-config in the cluster", a.AppID, a.AppID)
			continue
		}
		cj, _ := json.Marshal(c)
		if got, want := pick(cj), pick(j); got != want {
			t.Errorf("%s-config differs from %s:\n cluster: %s\n local:   %s", a.AppID, file, got, want)
		}
	}
}

// TestLocalProfilesDecodeStrictly: the Dapr resources of the local profiles
// and configurations decode strictly into Dapr's types too, so a field Dapr
// would silently ignore (a misspelt or unsupported one) fails here.
func TestLocalProfilesDecodeStrictly(t *testing.T) {
	files, _ := filepath.Glob("../components/*/*.yaml") // components/config included
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			raw, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var head struct{ Kind string }
			_ = json.Unmarshal(raw, &head)
			var v any
			switch head.Kind {
			case "Component":
				v = &componentsv1.Component{}
			case "Configuration":
				v = &configv1.Configuration{}
			case "Resiliency":
				v = &resiliencyv1.Resiliency{}
			case "Subscription":
				v = &subscriptionsv2.Subscription{}
			default:
				t.Errorf("%s: unknown kind %q", f, head.Kind)
				continue
			}
			n++
			strict(t, head.Kind, f, raw, v)
		}
	}
	if n < 30 {
		t.Fatalf("only %d resources decoded", n)
	}
}

// TestControlPlaneMTLS: the control plane's Configuration (for clusters
// without Helm) turns mTLS on, which the access control policies rely on;
// the namespace comes with it (nothing else creates it there).
func TestControlPlaneMTLS(t *testing.T) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "dapr-system")
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Resources()) != 2 || rm.Resources()[0].GetKind() != "Namespace" || rm.Resources()[0].GetName() != "dapr-system" {
		t.Fatalf("%d objects, want the Namespace dapr-system and the Configuration", len(rm.Resources()))
	}
	raw, _ := rm.Resources()[1].MarshalJSON()
	var c configv1.Configuration
	strict(t, "Configuration", "daprsystem", raw, &c)
	if c.Name != "daprsystem" || c.Namespace != "dapr-system" || c.Spec.MTLSSpec == nil || !c.Spec.MTLSSpec.GetEnabled() {
		t.Fatalf("daprsystem: %+v", c.Spec.MTLSSpec)
	}
}

// TestAccessControlDecisions runs the calls the services make (and some they
// must not) through Dapr 1.14's own parser and matcher of access control
// policies: a pattern Dapr reads differently from how it looks fails here.
func TestAccessControlDecisions(t *testing.T) {
	b := render(t, overlays[1])
	cases := []struct {
		caller, callee, verb, path string
		allowed                    bool
	}{
		{"orders", "products", "POST", "products/prd_0a1b/reservations", true},
		{"orders", "products", "DELETE", "products/prd_0a1b/reservations/ord_9f8e", true},
		{"orders", "products", "GET", "products/prd_0a1b", false},
		{"orders", "products", "POST", "products", false},
		{"orders", "products", "PUT", "products/prd_0a1b/stock", false},
		{"gateway", "products", "POST", "products", true},
		{"orders", "users", "GET", "users/usr_1a2b", false}, // the gateway's token proves the owner
		{"orders", "users", "POST", "login", false},
		{"shipping", "users", "GET", "users/usr_1a2b", true},
		{"shipping", "users", "POST", "login", false},
		{"shipping", "users", "POST", "users", false},
		{"gateway", "users", "POST", "login", true},
		{"orders", "payments", "POST", "charges", true},
		{"orders", "payments", "POST", "refunds", true},
		{"gateway", "payments", "POST", "charges", false},
		{"products", "orders", "GET", "orders", false},
		{"gateway", "orders", "POST", "orders", true},
		{"gateway", "notifications", "GET", "notifications", true},
		{"orders", "notifications", "GET", "notifications", false},
		{"gateway", "shipping", "GET", "shipments/ord_0123456789abcdef01234567", true},
		{"orders", "shipping", "GET", "shipments/ord_0123456789abcdef01234567", false},
		{"notifications", "shipping", "GET", "shipments/ord_0123456789abcdef01234567", false},
		{"shipping", "orders", "GET", "orders", false},
	}
	for _, c := range cases {
		cfg, ok := b.configs[c.callee+"-config"]
		if !ok || cfg.Spec.AccessControlSpec == nil {
			t.Fatalf("%s-config has no access control", c.callee)
		}
		raw, err := json.Marshal(cfg.Spec.AccessControlSpec)
		if err != nil {
			t.Fatal(err)
		}
		var spec daprconfig.AccessControlSpec
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatal(err)
		}
		list, err := acl.ParseAccessControlSpec(&spec, true)
		if err != nil {
			t.Fatalf("%s-config: %v", c.callee, err)
		}
		// The caller's identity carries the trust domain of its own
		// Configuration (Dapr's default: public).
		td := "public"
		if cc, ok := b.configs[c.caller+"-config"]; ok && cc.Spec.AccessControlSpec != nil && cc.Spec.AccessControlSpec.TrustDomain != "" {
			td = cc.Spec.AccessControlSpec.TrustDomain
		}
		if got := aclAllows(list, c.caller, td, b.namespace, c.verb, c.path); got != c.allowed {
			t.Errorf("%s → %s %s %s: allowed %v, want %v", c.caller, c.callee, c.verb, c.path, got, c.allowed)
		}
	}
}

// aclAllows is the decision of Dapr 1.14's isOperationAllowedByAccessControlPolicy
// (pkg/acl, unexported) for an HTTP call from caller in namespace ns whose
// mTLS identity is in trust domain td: the policy of the caller if its trust
// domain and namespace are the caller's, else the global default; the
// operation's verb action when the trie (Dapr's own) matches the path, else
// the policy's default.
func aclAllows(list *daprconfig.AccessControlList, caller, td, ns, verb, path string) bool {
	action := list.DefaultAction
	p, ok := list.PolicySpec[caller+"||"+ns]
	if !ok || p.TrustDomain != td || p.Namespace != ns {
		return strings.EqualFold(action, "allow")
	}
	if p.DefaultAction != "" {
		action = p.DefaultAction
	}
	if op := p.AppOperationActions.Search(strings.ToLower("/" + strings.TrimPrefix(path, "/"))); op != nil {
		if a, ok := op.VerbAction[verb]; ok {
			action = a
		} else if a, ok := op.VerbAction["*"]; ok {
			action = a
		}
	}
	return strings.EqualFold(action, "allow")
}

// TestSecretReadersHoldRoles: secretstores.kubernetes reads as the pod's
// service account, so each app's service account may get exactly the
// secrets its Configuration allows, in the suite's namespace, and nothing
// else (no list, no other secret).
func TestSecretReadersHoldRoles(t *testing.T) {
	for _, o := range overlays {
		b := render(t, o)
		granted := map[string][]string{} // service account -> secrets it may get
		for _, rb := range b.bindings {
			role, ok := b.roles[rb.RoleRef.Name]
			if rb.RoleRef.Kind != "Role" || !ok {
				t.Errorf("%s: RoleBinding %s refers to %s %s, not a Role of the suite", o, rb.Name, rb.RoleRef.Kind, rb.RoleRef.Name)
				continue
			}
			for _, r := range role.Rules {
				if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"secrets"}) || !slices.Equal(r.Verbs, []string{"get"}) || len(r.ResourceNames) == 0 {
					t.Errorf("%s: Role %s grants %+v: want get on named secrets only", o, role.Name, r)
				}
				for _, s := range rb.Subjects {
					if s.Kind != "ServiceAccount" || (s.Namespace != "" && s.Namespace != b.namespace) {
						t.Errorf("%s: RoleBinding %s binds %+v", o, rb.Name, s)
					}
					granted[s.Name] = append(granted[s.Name], r.ResourceNames...)
				}
			}
		}
		for name, d := range b.deployments {
			c := b.configs[d.Spec.Template.Annotations["dapr.io/config"]]
			var allowed []string
			if c.Spec.Secrets != nil {
				for _, sc := range c.Spec.Secrets.Scopes {
					if sc.StoreName == "secrets" {
						allowed = append(allowed, sc.AllowedSecrets...)
					}
				}
			}
			got := granted[d.Spec.Template.Spec.ServiceAccountName]
			slices.Sort(allowed)
			slices.Sort(got)
			if !slices.Equal(got, allowed) {
				t.Errorf("%s: %s's service account may get secrets %v, its Configuration allows %v", o, name, got, allowed)
			}
		}
	}
}

// TestPrometheusFindsThePods: the in-cluster scrape configuration
// (observability/prometheus/kubernetes.yml) keeps and addresses pods by
// annotations and labels every Deployment of the suite has, in the suite's
// namespace, with the jobs the alerts name.
func TestPrometheusFindsThePods(t *testing.T) {
	raw, err := os.ReadFile("../observability/prometheus/kubernetes.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `json:"job_name"`
			HonorLabels bool   `json:"honor_labels"`
			SD          []struct {
				Role       string `json:"role"`
				Namespaces struct {
					Names []string `json:"names"`
				} `json:"namespaces"`
			} `json:"kubernetes_sd_configs"`
			Relabel []struct {
				SourceLabels []string `json:"source_labels"`
				Action       string   `json:"action"`
				Regex        string   `json:"regex"`
				TargetLabel  string   `json:"target_label"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	b := render(t, overlays[1])
	// The meta labels kubernetes_sd gives each Deployment's pods, by the
	// names Prometheus makes of their annotations and labels.
	sanitize := regexp.MustCompile(`[^a-zA-Z0-9_]`)
	podMeta := map[string]map[string]string{}
	for name, d := range b.deployments {
		meta := map[string]string{}
		for k, v := range d.Spec.Template.Annotations {
			meta["__meta_kubernetes_pod_annotation_"+sanitize.ReplaceAllString(k, "_")] = v
		}
		for k, v := range d.Spec.Template.Labels {
			meta["__meta_kubernetes_pod_label_"+sanitize.ReplaceAllString(k, "_")] = v
		}
		podMeta[name] = meta
	}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		if len(sc.SD) != 1 || sc.SD[0].Role != "pod" || !slices.Contains(sc.SD[0].Namespaces.Names, b.namespace) || !sc.HonorLabels {
			t.Errorf("job %s: want pod discovery in %s with honor_labels", sc.JobName, b.namespace)
		}
		targets := map[string]bool{}
		for _, r := range sc.Relabel {
			targets[r.TargetLabel] = true
			for _, src := range r.SourceLabels {
				if !strings.HasPrefix(src, "__meta_kubernetes_pod_annotation_") && !strings.HasPrefix(src, "__meta_kubernetes_pod_label_") {
					continue // from discovery itself (pod IP, namespace, name)
				}
				for name, meta := range podMeta {
					v, ok := meta[src]
					switch {
					case !ok:
						t.Errorf("job %s reads %s, which the pods of %s do not have", sc.JobName, src, name)
					case r.Action == "keep" && !regexp.MustCompile("^(?:"+r.Regex+")$").MatchString(v):
						t.Errorf("job %s drops %s: %s=%q does not match %q", sc.JobName, name, src, v, r.Regex)
					}
				}
			}
		}
		if !targets["__address__"] || !targets["namespace"] {
			t.Errorf("job %s sets no address or namespace", sc.JobName)
		}
	}
	if !jobs["services"] || !jobs["daprd"] {
		t.Errorf("jobs %v: the alerts need services and daprd", jobs)
	}
}

// TestResiliencyLeavesAppCallsToCode: as rendered for the cluster, the
// Resiliency retries and breaks no call between apps and no component's
// outbound call (Dapr 1.14 counts every app reply outside 200-399, a 4xx
// too, as a failure: pkg/api/http/directmessaging.go; orders retries and
// breaks its calls in code), keeps a timeout for every app another may
// invoke (its Configuration's access control), and retries event
// deliveries (subscribers DROP what they can never process).
func TestResiliencyLeavesAppCallsToCode(t *testing.T) {
	defaults := regexp.MustCompile(`^Default[A-Za-z]*(RetryPolicy|CircuitBreakerPolicy)$`)
	for _, o := range overlays {
		b := render(t, o)
		if len(b.resiliency) != 1 {
			t.Fatalf("%s: %d Resiliency objects", o, len(b.resiliency))
		}
		r := b.resiliency[0].Spec
		for name := range r.Policies.Retries {
			if defaults.MatchString(name) {
				t.Errorf("%s: retry policy %s applies to every app", o, name)
			}
		}
		for name := range r.Policies.CircuitBreakers {
			if defaults.MatchString(name) {
				t.Errorf("%s: circuit breaker %s applies to every app", o, name)
			}
		}
		for app, p := range r.Targets.Apps {
			if p.Retry != "" || p.CircuitBreaker != "" {
				t.Errorf("%s: app %s has retry %q and circuit breaker %q", o, app, p.Retry, p.CircuitBreaker)
			}
		}
		// Every app another calls: listing it turns off daprd's built-in retries,
		// which may send a call twice (components/redis/resiliency.yaml).
		called := 0
		for name, c := range b.configs {
			if c.Spec.AccessControlSpec == nil || len(c.Spec.AccessControlSpec.AppPolicies) == 0 {
				continue // nobody may invoke it (the gateway)
			}
			called++
			app := strings.TrimSuffix(name, "-config")
			if r.Policies.Timeouts[r.Targets.Apps[app].Timeout] == "" {
				t.Errorf("%s: app %s has no timeout", o, app)
			}
		}
		if called < 2 {
			t.Errorf("%s: only %d apps may be invoked: access control not read?", o, called)
		}
		for c, p := range r.Targets.Components {
			if p.Outbound.Retry != "" || p.Outbound.CircuitBreaker != "" {
				t.Errorf("%s: component %s outbound has retry %q and circuit breaker %q", o, c, p.Outbound.Retry, p.Outbound.CircuitBreaker)
			}
		}
		if in := r.Targets.Components["events"].Inbound; in.Retry == "" || r.Policies.Retries[in.Retry].MaxRetries == nil {
			t.Errorf("%s: event deliveries are not retried: %+v", o, in)
		}
	}
}

// TestKubernetesNameResolution: no Configuration of the cluster names a name
// resolver, so every daprd there uses Kubernetes' own (daprd's default in
// Kubernetes mode): the SQLite resolver of local runs (tools/runner, names.go)
// must not leak into the cluster.
func TestKubernetesNameResolution(t *testing.T) {
	for _, o := range overlays {
		b := render(t, o)
		if len(b.configs) == 0 {
			t.Fatalf("%s: no Configuration rendered", o)
		}
		for name, c := range b.configs {
			if nr := c.Spec.NameResolutionSpec; nr != nil {
				t.Errorf("%s: Configuration %s sets name resolution %q; Kubernetes' own is the one to use", o, name, nr.Component)
			}
		}
	}
}

// TestKafkaTopics: every topic the pub/sub's scopes name (events, dead
// letters, the outboxes' internal topics) has a Strimzi KafkaTopic in
// k8s/kafka/topics.yaml for the cluster README step 1 creates, with the
// partitions of the local profile's broker (tools/broker), which the bench's
// event throughput is measured with: a topic left to Kafka's default of one
// partition is consumed one event at a time (Dapr 1.14's Kafka consumer).
func TestKafkaTopics(t *testing.T) {
	src, err := os.ReadFile("../tools/broker/broker.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`kfake\.DefaultNumPartitions\((\d+)\)`).FindSubmatch(src)
	if m == nil {
		t.Fatal("tools/broker/broker.go names no kfake.DefaultNumPartitions")
	}
	local, _ := strconv.Atoi(string(m[1]))
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cluster := regexp.MustCompile(`a cluster named "([^"]+)"`).FindSubmatch(readme)
	if cluster == nil || !bytes.Contains(readme, []byte("-f k8s/kafka/topics.yaml")) {
		t.Fatal("README step 1 names no Kafka cluster, or does not apply k8s/kafka/topics.yaml")
	}

	b, err := os.ReadFile("kafka/topics.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type kafkaTopic struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Partitions int `json:"partitions"`
			Replicas   int `json:"replicas"`
		} `json:"spec"`
	}
	have := map[string]kafkaTopic{}
	for _, doc := range strings.Split(string(b), "\n---") {
		var kt kafkaTopic
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("k8s/kafka/topics.yaml: %v", err)
		}
		strict(t, "KafkaTopic", "in topics.yaml", j, &kt)
		if kt.APIVersion != "kafka.strimzi.io/v1beta2" || kt.Kind != "KafkaTopic" {
			t.Errorf("%s: %s %s, want a kafka.strimzi.io/v1beta2 KafkaTopic", kt.Metadata.Name, kt.APIVersion, kt.Kind)
		}
		if kt.Metadata.Labels["strimzi.io/cluster"] != string(cluster[1]) {
			t.Errorf("%s: cluster label %q, README's cluster is %q", kt.Metadata.Name, kt.Metadata.Labels["strimzi.io/cluster"], cluster[1])
		}
		if kt.Spec.Partitions != local || kt.Spec.Replicas < 1 {
			t.Errorf("%s: %d partitions, %d replicas; want %d partitions (the local broker's)", kt.Metadata.Name, kt.Spec.Partitions, kt.Spec.Replicas, local)
		}
		have[kt.Metadata.Name] = kt
	}

	want := map[string]bool{}
	pubsub := render(t, "overlays/prod").components["events"]
	for _, md := range pubsub.Spec.Metadata {
		if md.Name != "publishingScopes" && md.Name != "subscriptionScopes" {
			continue
		}
		for _, app := range strings.Split(md.Value.String(), ";") {
			_, topics, _ := strings.Cut(app, "=")
			for _, topic := range strings.Split(topics, ",") {
				if topic != "" {
					want[topic] = true
				}
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the events pub/sub names no topics in its scopes")
	}
	for topic := range want {
		if _, ok := have[topic]; !ok {
			t.Errorf("topic %s (pub/sub scopes) has no KafkaTopic in k8s/kafka/topics.yaml", topic)
		}
	}
	for topic := range have {
		if !want[topic] {
			t.Errorf("KafkaTopic %s is no topic of the pub/sub's scopes", topic)
		}
	}
}

// TestCollectorIsWhereTheSpansGo: k8s/observability's Jaeger receives what
// the suite exports: every sidecar's Configuration in every overlay and the
// gateway's ZIPKIN_URL name its jaeger-collector Service's Zipkin port,
// which leads to the container port Jaeger's own configuration listens on.
func TestCollectorIsWhereTheSpansGo(t *testing.T) {
	obs := render(t, "observability")
	svc, ok := obs.services["jaeger-collector"]
	if !ok || obs.namespace == "" {
		t.Fatalf("no Service jaeger-collector in a namespace (%q)", obs.namespace)
	}
	var port corev1.ServicePort
	for _, p := range svc.Spec.Ports {
		if p.Name == "zipkin" {
			port = p
		}
	}
	want := fmt.Sprintf("http://%s.%s.svc.cluster.local:%d/api/v2/spans", svc.Name, obs.namespace, port.Port)

	// The Service's target is a port of Jaeger's container, on which
	// Jaeger's configuration has its Zipkin receiver.
	d, ok := obs.deployments["jaeger"]
	if !ok {
		t.Fatal("no Deployment jaeger")
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service %s selects %s=%s, Jaeger's pods are %v", svc.Name, k, v, d.Spec.Template.Labels)
		}
	}
	var container int32
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port.TargetPort.String() {
				container = p.ContainerPort
			}
		}
	}
	if container == 0 {
		t.Fatalf("Service port %+v targets no port of Jaeger's container", port)
	}
	var cm *corev1.ConfigMap
	for name, c := range obs.configMaps {
		if strings.HasPrefix(name, "jaeger-config") {
			cm = &c
		}
	}
	if cm == nil {
		t.Fatal("no ConfigMap jaeger-config")
	}
	var cfg struct {
		Receivers struct {
			Zipkin struct{ Endpoint string }
		}
	}
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Receivers.Zipkin.Endpoint != fmt.Sprintf("0.0.0.0:%d", container) {
		t.Errorf("Jaeger's Zipkin receiver listens on %q, its container port is %d", cfg.Receivers.Zipkin.Endpoint, container)
	}

	// Spans carry IDs: the collector takes them from the suite's namespace
	// only, everything else in the namespace is denied.
	denyAll, zipkinFrom := false, []string{}
	for _, p := range obs.policies {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.Ingress) == 0 && slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			denyAll = true
		}
		for _, in := range p.Spec.Ingress {
			for _, port := range in.Ports {
				if port.Port != nil && port.Port.IntValue() == int(container) {
					for _, from := range in.From {
						if from.NamespaceSelector == nil || from.PodSelector != nil || from.IPBlock != nil {
							t.Errorf("NetworkPolicy %s lets %+v reach the collector", p.Name, from)
							continue
						}
						zipkinFrom = append(zipkinFrom, from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
					}
				}
			}
		}
	}
	if !denyAll || !slices.Equal(zipkinFrom, []string{"daprshop"}) {
		t.Errorf("observability's NetworkPolicies: deny by default %v, the collector's port open to namespaces %v (want daprshop only)", denyAll, zipkinFrom)
	}

	for _, o := range overlays {
		b := render(t, o)
		if b.namespace != "daprshop" {
			t.Errorf("%s deploys to %s, which the collector's NetworkPolicy does not admit", o, b.namespace)
		}
		for name, c := range b.configs {
			if c.Spec.TracingSpec == nil || c.Spec.TracingSpec.Zipkin == nil || c.Spec.TracingSpec.Zipkin.EndpointAddresss != want {
				t.Errorf("%s: Configuration %s exports spans to %+v, want %s", o, name, c.Spec.TracingSpec, want)
			}
		}
		var got string
		for _, c := range b.deployments["gateway"].Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "ZIPKIN_URL" {
					got = e.Value
				}
			}
		}
		if got != want {
			t.Errorf("%s: the gateway's ZIPKIN_URL is %q, want %s", o, got, want)
		}
	}
}
