package k8s

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// live is what the API server holds in a namespace, as stored (defaults
// filled in), read back with kubectl.
type live struct {
	ns           string
	nsLabels     map[string]string
	deployments  []appsv1.Deployment
	services     []corev1.Service
	hpas         []autoscalingv2.HorizontalPodAutoscaler
	pdbs         []policyv1.PodDisruptionBudget
	policies     []networkingv1.NetworkPolicy
	ingresses    []networkingv1.Ingress
	accounts     map[string]bool
	roles        map[string]rbacv1.Role
	bindings     []rbacv1.RoleBinding
	secrets      map[string]corev1.Secret
	components   []liveDapr
	subs         []liveDapr
	dconfigs     []liveDapr
	appIDs       map[string]bool
	configByName map[string]liveDapr
}

// liveDapr is the part of a Dapr object the cross-checks read.
type liveDapr struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Scopes   []string          `json:"scopes"`
	Spec     struct {
		Type     string `json:"type"`
		Metadata []struct {
			Name         string `json:"name"`
			Value        any    `json:"value"`
			SecretKeyRef struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"secretKeyRef"`
		} `json:"metadata"`
		// Subscription fields.
		Pubsubname      string `json:"pubsubname"`
		Topic           string `json:"topic"`
		DeadLetterTopic string `json:"deadLetterTopic"`
		// Configuration fields.
		AccessControl struct {
			TrustDomain string `json:"trustDomain"`
			Policies    []struct {
				AppID       string `json:"appId"`
				Namespace   string `json:"namespace"`
				TrustDomain string `json:"trustDomain"`
			} `json:"policies"`
		} `json:"accessControl"`
		Secrets struct {
			Scopes []struct {
				StoreName      string   `json:"storeName"`
				DefaultAccess  string   `json:"defaultAccess"`
				AllowedSecrets []string `json:"allowedSecrets"`
			} `json:"scopes"`
		} `json:"secrets"`
		Tracing struct {
			SamplingRate string `json:"samplingRate"`
		} `json:"tracing"`
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

// readLive reads what checkLive checks.
func readLive(t *testing.T, c *cluster, ns string) *live {
	t.Helper()
	l := &live{
		ns:          ns,
		deployments: get[appsv1.Deployment](t, c, ns, "deployments"),
		services:    get[corev1.Service](t, c, ns, "services"),
		hpas:        get[autoscalingv2.HorizontalPodAutoscaler](t, c, ns, "horizontalpodautoscalers"),
		pdbs:        get[policyv1.PodDisruptionBudget](t, c, ns, "poddisruptionbudgets"),
		policies:    get[networkingv1.NetworkPolicy](t, c, ns, "networkpolicies"),
		ingresses:   get[networkingv1.Ingress](t, c, ns, "ingresses"),
		bindings:    get[rbacv1.RoleBinding](t, c, ns, "rolebindings"),
		components:  get[liveDapr](t, c, ns, "components.dapr.io"),
		subs:        get[liveDapr](t, c, ns, "subscriptions.dapr.io"),
		dconfigs:    get[liveDapr](t, c, ns, "configurations.dapr.io"),
		accounts:    map[string]bool{}, roles: map[string]rbacv1.Role{}, secrets: map[string]corev1.Secret{},
		appIDs: map[string]bool{}, configByName: map[string]liveDapr{},
	}
	out, errOut, err := c.kube("get", "namespace", ns, "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get namespace %s: %v %s", ns, err, errOut)
	}
	var n corev1.Namespace
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		t.Fatal(err)
	}
	l.nsLabels = n.Labels
	for _, a := range get[corev1.ServiceAccount](t, c, ns, "serviceaccounts") {
		l.accounts[a.Name] = true
	}
	for _, r := range get[rbacv1.Role](t, c, ns, "roles") {
		l.roles[r.Name] = r
	}
	for _, s := range get[corev1.Secret](t, c, ns, "secrets") {
		l.secrets[s.Name] = s
	}
	for _, d := range l.dconfigs {
		l.configByName[d.Metadata.Name] = d
	}
	for _, d := range l.deployments {
		l.appIDs[d.Spec.Template.Annotations["dapr.io/app-id"]] = true
	}
	if len(l.deployments) == 0 {
		t.Fatalf("no Deployments stored in %s", ns)
	}
	return l
}

// checkLive cross-checks the objects the server stored in ns, each check a
// way a deployment breaks that the server itself accepts. With secrets (the
// README's steps ran), every Secret and key referenced must exist.
func checkLive(t *testing.T, c *cluster, ns string, secrets bool) {
	t.Helper()
	l := readLive(t, c, ns)
	l.checkWorkloads(t)
	l.checkRouting(t)
	l.checkDapr(t)
	l.checkNetwork(t)
	if secrets {
		l.checkSecrets(t)
	}
}

// selects is the Deployments whose pods sel matches.
func (l *live) selects(t *testing.T, what string, sel *metav1.LabelSelector) []appsv1.Deployment {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: selector: %v", what, err)
		return nil
	}
	var hit []appsv1.Deployment
	for _, d := range l.deployments {
		if s.Matches(labels.Set(d.Spec.Template.Labels)) {
			hit = append(hit, d)
		}
	}
	return hit
}

// deploymentNames names ds.
func deploymentNames(ds []appsv1.Deployment) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

// containerPort resolves a port (number or name) among a pod's containers;
// 0 when no container has it.
func containerPort(spec corev1.PodSpec, p intstr.IntOrString) int32 {
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

// checkWorkloads: every Deployment's service account exists and its probes
// name ports its container has; every HPA scales a Deployment (apps/v1);
// every PDB selects its Deployment's pods alone; every RoleBinding binds an
// existing Role to existing service accounts.
func (l *live) checkWorkloads(t *testing.T) {
	t.Helper()
	for _, d := range l.deployments {
		spec := d.Spec.Template.Spec
		if sa := spec.ServiceAccountName; sa != "" && !l.accounts[sa] {
			t.Errorf("Deployment %s runs as ServiceAccount %q, which does not exist: no pod would be created", d.Name, sa)
		}
		for _, ct := range spec.Containers {
			for name, p := range map[string]*corev1.Probe{"liveness": ct.LivenessProbe, "readiness": ct.ReadinessProbe, "startup": ct.StartupProbe} {
				if p != nil && p.HTTPGet != nil && containerPort(spec, p.HTTPGet.Port) == 0 {
					t.Errorf("Deployment %s: %s probe on port %s, which no container has", d.Name, name, p.HTTPGet.Port.String())
				}
			}
		}
	}
	for _, h := range l.hpas {
		ref := h.Spec.ScaleTargetRef
		i := slices.IndexFunc(l.deployments, func(d appsv1.Deployment) bool { return d.Name == ref.Name })
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || i < 0 {
			t.Errorf("HorizontalPodAutoscaler %s scales %s %s %q: want an apps/v1 Deployment that exists", h.Name, ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		// A utilization target is a share of the containers' requests:
		// without one the autoscaler cannot compute it and never scales.
		for _, m := range h.Spec.Metrics {
			if m.Resource == nil {
				continue
			}
			for _, ct := range l.deployments[i].Spec.Template.Spec.Containers {
				if _, ok := ct.Resources.Requests[m.Resource.Name]; !ok {
					t.Errorf("HorizontalPodAutoscaler %s scales on %s, which container %s of %s does not request", h.Name, m.Resource.Name, ct.Name, ref.Name)
				}
			}
		}
	}
	for _, p := range l.pdbs {
		if hit := deploymentNames(l.selects(t, "PodDisruptionBudget "+p.Name, p.Spec.Selector)); !slices.Equal(hit, []string{p.Name}) {
			t.Errorf("PodDisruptionBudget %s selects the pods of %v, want those of Deployment %s alone", p.Name, hit, p.Name)
		}
	}
	for _, b := range l.bindings {
		if _, ok := l.roles[b.RoleRef.Name]; b.RoleRef.Kind != "Role" || !ok {
			t.Errorf("RoleBinding %s binds %s %q, which does not exist here", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		for _, s := range b.Subjects {
			if s.Kind != "ServiceAccount" || !l.accounts[s.Name] || (s.Namespace != "" && s.Namespace != l.ns) {
				t.Errorf("RoleBinding %s: subject %s %s/%s is no ServiceAccount of %s", b.Name, s.Kind, s.Namespace, s.Name, l.ns)
			}
		}
	}
}

// checkRouting: every Service selects its Deployment's pods alone and its
// target ports are ports of those pods; every Ingress backend is a port of
// an existing Service, and /api reaches the gateway.
func (l *live) checkRouting(t *testing.T) {
	t.Helper()
	services := map[string]corev1.Service{}
	for _, s := range l.services {
		services[s.Name] = s
		hit := l.selects(t, "Service "+s.Name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if !slices.Equal(deploymentNames(hit), []string{s.Name}) {
			t.Errorf("Service %s selects the pods of %v, want those of Deployment %s alone", s.Name, deploymentNames(hit), s.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			if containerPort(hit[0].Spec.Template.Spec, p.TargetPort) == 0 {
				t.Errorf("Service %s port %d targets %s, which %s's pods do not have: no endpoints", s.Name, p.Port, p.TargetPort.String(), s.Name)
			}
		}
	}
	api := false
	for _, ing := range l.ingresses {
		// The class of the ingress-nginx controller the README installs
		// (and the namespace the NetworkPolicies admit it from).
		if c := ing.Spec.IngressClassName; c == nil || *c != "nginx" {
			t.Errorf("Ingress %s: class %v, want nginx (README, Deploy, step 1)", ing.Name, c)
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil {
					t.Errorf("Ingress %s path %s: no Service backend", ing.Name, p.Path)
					continue
				}
				s, ok := services[b.Name]
				if !ok || !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool {
					return (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Name == "" && sp.Port == b.Port.Number)
				}) {
					t.Errorf("Ingress %s path %s goes to Service %q port %s/%d, which does not exist", ing.Name, p.Path, b.Name, b.Port.Name, b.Port.Number)
				}
				if p.Path == "/api" && b.Name == "gateway" {
					api = true
				}
			}
		}
	}
	if !api {
		t.Errorf("no Ingress sends /api to the gateway (its routes are under /api)")
	}
}

// checkDapr: every dapr.io/config names a Configuration here; every scope
// and access control policy names an app ID of a Deployment, in this
// namespace and the caller's trust domain; every Subscription's pub/sub is
// a pub/sub component that lets each of its subscribers publish to its
// dead-letter topic.
func (l *live) checkDapr(t *testing.T) {
	t.Helper()
	for _, d := range l.deployments {
		if cfg := d.Spec.Template.Annotations["dapr.io/config"]; cfg == "" || l.configByName[cfg].Metadata.Name == "" {
			t.Errorf("Deployment %s: dapr.io/config %q names no Configuration in %s", d.Name, cfg, l.ns)
		}
	}
	trustDomain := func(app string) string { // of the app's own identity
		for _, d := range l.deployments {
			if d.Spec.Template.Annotations["dapr.io/app-id"] == app {
				if td := l.configByName[d.Spec.Template.Annotations["dapr.io/config"]].Spec.AccessControl.TrustDomain; td != "" {
					return td
				}
			}
		}
		return "public"
	}
	for _, d := range append(append(slices.Clone(l.components), l.subs...), l.dconfigs...) {
		for _, id := range d.Scopes {
			if !l.appIDs[id] {
				t.Errorf("%s scope %q is no app ID of a Deployment", d.Metadata.Name, id)
			}
		}
		for _, p := range d.Spec.AccessControl.Policies {
			if !l.appIDs[p.AppID] || p.Namespace != l.ns || p.TrustDomain != trustDomain(p.AppID) {
				t.Errorf("Configuration %s: access control policy for %s in %s, trust domain %s: want an app ID of a Deployment in %s, trust domain %s",
					d.Metadata.Name, p.AppID, p.Namespace, p.TrustDomain, l.ns, trustDomain(p.AppID))
			}
		}
	}
	pubsubs := map[string]liveDapr{}
	for _, c := range l.components {
		if strings.HasPrefix(c.Spec.Type, "pubsub.") {
			pubsubs[c.Metadata.Name] = c
		}
	}
	for _, c := range l.components {
		for _, m := range c.Spec.Metadata {
			if v, _ := m.Value.(string); m.Name == "outboxPublishPubsub" {
				if _, ok := pubsubs[v]; !ok {
					t.Errorf("Component %s: the outbox publishes to pub/sub %q, which is no pub/sub component here", c.Metadata.Name, v)
				}
			}
		}
	}
	for _, d := range l.dconfigs {
		if r := d.Spec.Tracing.SamplingRate; r != "" {
			if f, err := strconv.ParseFloat(r, 64); err != nil || f < 0 || f > 1 {
				t.Errorf("Configuration %s: tracing samplingRate %q is no number from 0 to 1", d.Metadata.Name, r)
			}
		}
		for _, sc := range d.Spec.Secrets.Scopes {
			if sc.DefaultAccess != "deny" {
				t.Errorf("Configuration %s: secret store %s has defaultAccess %q: an app may read only the secrets it names (deny)", d.Metadata.Name, sc.StoreName, sc.DefaultAccess)
			}
		}
	}
	for _, s := range l.subs {
		ps, ok := pubsubs[s.Spec.Pubsubname]
		if !ok {
			t.Errorf("Subscription %s: pub/sub %q is no pub/sub component here", s.Metadata.Name, s.Spec.Pubsubname)
			continue
		}
		if slices.Contains(s.Scopes, "orders") && s.Spec.DeadLetterTopic != "" {
			// orders' events carry an order's fate and money (a refund of a
			// charge for a cancelled order): one dead-lettered is never
			// finished (docs/resilience.md).
			t.Errorf("Subscription %s: orders' events must come back until processed, not go to %s", s.Metadata.Name, s.Spec.DeadLetterTopic)
		}
		if s.Spec.DeadLetterTopic == "" {
			continue
		}
		scopes := topicScopes(ps, "publishingScopes")
		for _, app := range s.Scopes {
			if topics, limited := scopes[app]; limited && !slices.Contains(topics, s.Spec.DeadLetterTopic) {
				t.Errorf("Subscription %s: %s may not publish to its dead-letter topic %s (publishingScopes of %s): failed events would be lost",
					s.Metadata.Name, app, s.Spec.DeadLetterTopic, ps.Metadata.Name)
			}
		}
	}
}

// topicScopes reads a pub/sub scope metadata value, "app1=t1,t2;app2=t3",
// by app.
func topicScopes(c liveDapr, name string) map[string][]string {
	out := map[string][]string{}
	for _, m := range c.Spec.Metadata {
		if m.Name != name {
			continue
		}
		v, _ := m.Value.(string)
		for _, entry := range strings.Split(v, ";") {
			app, topics, ok := strings.Cut(entry, "=")
			if !ok {
				continue
			}
			out[strings.TrimSpace(app)] = strings.Split(topics, ",")
		}
	}
	return out
}

// checkSecrets: every Secret a pod, a daprd annotation, a component, an
// app's secret scope or a Role names exists, with the keys read from it.
func (l *live) checkSecrets(t *testing.T) {
	t.Helper()
	need := func(who, name, key string) {
		s, ok := l.secrets[name]
		switch {
		case !ok:
			t.Errorf("%s reads Secret %q, which the README's steps do not create", who, name)
		case key != "":
			if _, ok := s.Data[key]; !ok {
				t.Errorf("%s reads key %q of Secret %s, which has only %v", who, key, name, keysOf(s.Data))
			}
		}
	}
	for _, d := range l.deployments {
		a := d.Spec.Template.Annotations
		for _, key := range []string{"dapr.io/api-token-secret", "dapr.io/app-token-secret"} {
			if s, ok := a[key]; ok {
				need("Deployment "+d.Name+" ("+key+")", s, "token") // the key daprd's injector reads
			}
		}
		spec := d.Spec.Template.Spec
		for _, ct := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			for _, e := range ct.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					need("Deployment "+d.Name+" env "+e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
				}
			}
			for _, e := range ct.EnvFrom {
				if e.SecretRef != nil {
					need("Deployment "+d.Name+" envFrom", e.SecretRef.Name, "")
				}
			}
		}
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				need("Deployment "+d.Name+" volume "+v.Name, v.Secret.SecretName, "")
			}
		}
	}
	for _, c := range l.components {
		for _, m := range c.Spec.Metadata {
			if m.SecretKeyRef.Name != "" {
				need("Component "+c.Metadata.Name+" "+m.Name, m.SecretKeyRef.Name, m.SecretKeyRef.Key)
			}
		}
	}
	for _, d := range l.dconfigs {
		for _, sc := range d.Spec.Secrets.Scopes {
			for _, s := range sc.AllowedSecrets {
				// The kubernetes secret store reads a secret by name, the
				// key the same name (how the README creates them).
				need("Configuration "+d.Metadata.Name+" (allowed secret)", s, s)
			}
		}
	}
	for _, r := range l.roles {
		for _, rule := range r.Rules {
			if slices.Contains(rule.Resources, "secrets") {
				for _, s := range rule.ResourceNames {
					need("Role "+r.Name, s, "")
				}
			}
		}
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// peer is one end of a connection for the NetworkPolicy evaluation: a pod
// (labels, namespace and its labels, named ports) or, for a pod outside the
// suite, only its namespace.
type peer struct {
	what     string
	ns       string
	nsLabels map[string]string
	labels   map[string]string
	spec     *corev1.PodSpec // nil outside the suite
}

// daprdPorts are the ports of the sidecar Dapr injects into every pod.
var daprdPorts = map[int32]string{3500: "dapr-http", 50001: "dapr-grpc", 50002: "dapr-internal", 9090: "dapr-metrics"}

// allowed evaluates the namespace's NetworkPolicies as Kubernetes does for
// a TCP connection from src to dst:port: a pod selected by a policy of a
// direction is isolated in it, and then some rule of a policy selecting it
// must admit the other end and the port. Egress policies of the suite's
// namespace apply to its pods as sources.
func (l *live) allowed(t *testing.T, src, dst peer, port int32) bool {
	ok := func(self peer, other peer, policyType networkingv1.PolicyType) bool {
		if self.spec == nil || self.ns != l.ns {
			return true // policies of other namespaces are not the suite's
		}
		isolated := false
		for _, p := range l.policies {
			if !slices.Contains(p.Spec.PolicyTypes, policyType) || !matches(t, &p.Spec.PodSelector, self.labels) {
				continue
			}
			isolated = true
			rules := p.Spec.Ingress
			if policyType == networkingv1.PolicyTypeEgress {
				rules = nil
				for _, e := range p.Spec.Egress {
					rules = append(rules, networkingv1.NetworkPolicyIngressRule{From: e.To, Ports: e.Ports})
				}
			}
			for _, r := range rules {
				target := self // the pod whose port is meant: the destination
				if policyType == networkingv1.PolicyTypeEgress {
					target = other
				}
				if peerMatches(t, l.ns, r.From, other) && portMatches(r.Ports, target, port) {
					return true
				}
			}
		}
		return !isolated
	}
	return ok(src, dst, networkingv1.PolicyTypeEgress) && ok(dst, src, networkingv1.PolicyTypeIngress)
}

func matches(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("selector %v: %v", sel, err)
		return false
	}
	return s.Matches(labels.Set(set))
}

// peerMatches: an empty list admits anyone; a peer with a pod selector
// alone means pods of the policy's namespace; with a namespace selector,
// pods of the namespaces it selects.
func peerMatches(t *testing.T, policyNS string, peers []networkingv1.NetworkPolicyPeer, other peer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			continue // the suite admits no address ranges; pods are not matched by them here
		}
		nsOK := other.ns == policyNS
		if p.NamespaceSelector != nil {
			nsOK = matches(t, p.NamespaceSelector, other.nsLabels)
		}
		podOK := true
		if p.PodSelector != nil {
			podOK = other.labels != nil && matches(t, p.PodSelector, other.labels)
		}
		if nsOK && podOK {
			return true
		}
	}
	return false
}

// portMatches: no ports admit every port; a named port resolves on the
// target pod (its containers', then daprd's).
func portMatches(ports []networkingv1.NetworkPolicyPort, target peer, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		n := p.Port.IntVal
		if p.Port.Type == intstr.String {
			n = 0
			if target.spec != nil {
				n = containerPort(*target.spec, *p.Port)
			}
			for dp, name := range daprdPorts {
				if name == p.Port.StrVal {
					n = dp
				}
			}
		}
		if n == port || (p.EndPort != nil && port >= n && port <= *p.EndPort) {
			return true
		}
	}
	return false
}

// checkNetwork evaluates the NetworkPolicies for the connections the suite
// needs and those it must refuse (README, Deploy; networkpolicies.yaml):
// the ingress controller reaches the gateway's port and nothing else;
// every sidecar reaches every other sidecar's internal port; Prometheus
// scrapes daprd and every app; an app's own port is closed to the other
// pods (only its sidecar, inside the pod, calls it); another namespace
// reaches nothing; and the pods reach DNS, the Dapr control plane, Kafka
// and PostgreSQL.
func (l *live) checkNetwork(t *testing.T) {
	t.Helper()
	ns := func(name string) peer {
		return peer{what: "namespace " + name, ns: name, nsLabels: map[string]string{"kubernetes.io/metadata.name": name}, labels: map[string]string{}}
	}
	pods := map[string]peer{}
	for i := range l.deployments {
		d := &l.deployments[i]
		pods[d.Name] = peer{what: "pod of " + d.Name, ns: l.ns, nsLabels: l.nsLabels, labels: d.Spec.Template.Labels, spec: &d.Spec.Template.Spec}
	}
	appPort := func(name string) int32 {
		p := pods[name]
		if p.spec == nil || len(p.spec.Containers) == 0 || len(p.spec.Containers[0].Ports) == 0 {
			return 0
		}
		return p.spec.Containers[0].Ports[0].ContainerPort
	}
	want := func(src, dst peer, port int32, allow bool, why string) {
		if got := l.allowed(t, src, dst, port); got != allow {
			verb := map[bool]string{true: "must reach", false: "must not reach"}[allow]
			t.Errorf("NetworkPolicies: %s %s %s on port %d (%s), but they %s it", src.what, verb, dst.what, port, why,
				map[bool]string{true: "admit", false: "refuse"}[got])
		}
	}
	if _, ok := pods["gateway"]; !ok {
		t.Fatalf("no gateway Deployment")
	}
	ingress, monitoring, stranger := ns("ingress-nginx"), ns("monitoring"), ns("default")
	want(ingress, pods["gateway"], appPort("gateway"), true, "the public API")
	for name, dst := range pods {
		for other, src := range pods {
			if other != name {
				want(src, dst, 50002, true, "sidecar to sidecar")
				want(src, dst, appPort(name), false, "an app's own port, for its sidecar only")
			}
		}
		want(monitoring, dst, 9090, true, "Prometheus scrapes daprd")
		want(monitoring, dst, appPort(name), true, "Prometheus scrapes the app")
		for _, port := range []int32{appPort(name), 50002, 3500, 50001} {
			want(stranger, dst, port, false, "another namespace")
			if name != "gateway" || port != appPort(name) {
				want(ingress, dst, port, false, "the ingress controller reaches the public port only")
			}
		}
		src := pods[name]
		for _, out := range []struct {
			peer peer
			port int32
			why  string
		}{
			{ns("kube-system"), 53, "DNS"}, {ns("dapr-system"), 50001, "Sentry"}, {ns("dapr-system"), 6500, "the Dapr operator"},
			{ns("kafka"), 9092, "Kafka"}, {ns("daprshop-db"), 5432, "PostgreSQL"},
		} {
			want(src, out.peer, out.port, true, out.why)
		}
	}
}
