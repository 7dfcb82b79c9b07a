// Package deploy_test validates the Kubernetes manifests in deploy/: every
// Kubernetes object decodes strictly with the upstream API types (an
// unknown or misspelt field fails), the Prometheus Operator objects decode
// strictly into their documented structure, the objects agree with each
// other and with imagefs serve's flags and metrics, and promtool checks
// and unit-tests the alerts.
package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/imagefs/imagefs/internal/cli"
	"github.com/imagefs/imagefs/pkg/exporter"
)

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strict is the API server's strict decoding: unknown and duplicate fields
// are errors.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})

// documents splits a YAML stream.
func documents(t *testing.T, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			out = append(out, doc)
		}
	}
}

// decodeStrict decodes every document of path with the upstream types.
func decodeStrict(t *testing.T, path string) []runtime.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []runtime.Object
	for _, doc := range documents(t, data) {
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, obj)
	}
	return out
}

// kustomization is the part of kustomize.config.k8s.io/v1beta1 the
// kustomizations here use; decoding is strict, so any other field fails.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources,omitempty"`
	Components []string `json:"components,omitempty"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
	Patches []struct {
		Path   string `json:"path"`
		Target *struct {
			Kind string `json:"kind,omitempty"`
			Name string `json:"name,omitempty"`
		} `json:"target,omitempty"`
	} `json:"patches,omitempty"`
	ConfigMapGenerator []struct {
		Name    string   `json:"name"`
		Files   []string `json:"files"`
		Options *struct {
			DisableNameSuffixHash bool              `json:"disableNameSuffixHash,omitempty"`
			Labels                map[string]string `json:"labels,omitempty"`
		} `json:"options,omitempty"`
	} `json:"configMapGenerator,omitempty"`
}

// loadKustomization reads dir's Kustomization (or Component, a
// kustomization meant to be added with components:).
func loadKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	var k kustomization
	unmarshalStrict(t, filepath.Join(dir, "kustomization.yaml"), &k)
	if (k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization") && (k.APIVersion != "kustomize.config.k8s.io/v1alpha1" || k.Kind != "Component") {
		t.Fatalf("%s: apiVersion %q kind %q", dir, k.APIVersion, k.Kind)
	}
	return k
}

func unmarshalStrict(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// objects are the decoded Kubernetes objects of the base and the overlay.
type objects struct {
	ns      *corev1.Namespace
	sa      *corev1.ServiceAccount
	ds      *appsv1.DaemonSet
	svc     *corev1.Service
	netpols []*networkingv1.NetworkPolicy
	roles   []*rbacv1.ClusterRole
	binds   []*rbacv1.ClusterRoleBinding
}

func (o *objects) add(t *testing.T, obj runtime.Object) {
	switch v := obj.(type) {
	case *corev1.Namespace:
		o.ns = v
	case *corev1.ServiceAccount:
		o.sa = v
	case *appsv1.DaemonSet:
		o.ds = v
	case *corev1.Service:
		o.svc = v
	case *networkingv1.NetworkPolicy:
		o.netpols = append(o.netpols, v)
	case *rbacv1.ClusterRole:
		o.roles = append(o.roles, v)
	case *rbacv1.ClusterRoleBinding:
		o.binds = append(o.binds, v)
	default:
		t.Errorf("unexpected object %T", obj)
	}
}

// yamlFiles lists the .yaml files directly in dir.
func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Every kustomization lists exactly the manifests beside it, and every
// Kubernetes object decodes strictly. overlay is the live-compare
// component.
func load(t *testing.T) (base, overlay objects) {
	t.Helper()
	for _, tc := range []struct {
		dir string
		o   *objects
	}{{".", &base}, {"live-compare", &overlay}} {
		k := loadKustomization(t, tc.dir)
		listed := map[string]bool{"kustomization.yaml": true}
		for _, r := range k.Resources {
			listed[r] = true
			for _, obj := range decodeStrict(t, filepath.Join(tc.dir, r)) {
				tc.o.add(t, obj)
			}
		}
		for _, p := range k.Patches {
			listed[p.Path] = true
			objs := decodeStrict(t, filepath.Join(tc.dir, p.Path))
			if len(objs) != 1 || p.Target == nil || reflect.TypeOf(objs[0]).Elem().Name() != p.Target.Kind {
				t.Errorf("%s: patch %s does not match its target %+v", tc.dir, p.Path, p.Target)
			}
		}
		for _, f := range yamlFiles(t, tc.dir) {
			if !listed[filepath.Base(f)] {
				t.Errorf("%s is not in %s/kustomization.yaml", f, tc.dir)
			}
		}
	}
	return base, overlay
}

// The strict decoder rejects what a lenient one would drop silently.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	data, err := os.ReadFile("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(data, []byte("      hostPID: false\n"), []byte("      hostPID: false\n      hostPid: false\n"), 1)
	if bytes.Equal(bad, data) {
		t.Fatal("test setup: no hostPID line")
	}
	if _, _, err := strict.Decode(bad, nil, nil); err == nil || !runtime.IsStrictDecodingError(err) {
		t.Errorf("a misspelt field decoded: %v", err)
	}
	if _, _, err := strict.Decode(data, nil, nil); err != nil {
		t.Errorf("daemonset.yaml: %v", err)
	}
}

func TestManifests(t *testing.T) {
	o, overlay := load(t)
	if o.ns == nil || o.sa == nil || o.ds == nil || o.svc == nil || len(o.netpols) != 1 {
		t.Fatalf("base lacks an object: %+v", o)
	}
	ns := o.ns.Name
	for _, m := range []metav1.Object{o.sa, o.ds, o.svc, o.netpols[0]} {
		if m.GetNamespace() != ns {
			t.Errorf("%s is in namespace %q, not %q", m.GetName(), m.GetNamespace(), ns)
		}
	}
	if o.ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Error("the namespace must admit hostPath and uid 0 (pod-security enforce=privileged)")
	}

	// serve needs no API access: no token, no RBAC in the base.
	if o.sa.AutomountServiceAccountToken == nil || *o.sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount mounts a token")
	}
	if len(o.roles)+len(o.binds) != 0 {
		t.Error("the base grants RBAC; serve needs none")
	}

	ds := o.ds
	pod := ds.Spec.Template.Spec
	if sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector); err != nil || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("the DaemonSet's selector does not match its pods: %v", err)
	}
	if pod.ServiceAccountName != o.sa.Name {
		t.Errorf("serviceAccountName %q, the ServiceAccount is %q", pod.ServiceAccountName, o.sa.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a ServiceAccount token")
	}
	if pod.HostPID || pod.HostNetwork || pod.HostIPC {
		t.Error("hostPID, hostNetwork and hostIPC must be false")
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != 0 || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsUser 0 (the CRI socket is root-only) and the RuntimeDefault seccomp profile", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("privileged")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation must be false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem must be true")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v: drop ALL, add none", sc.Capabilities)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: requests and a memory limit are required", c.Resources)
	}
	if c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		t.Error("memory limit below the request")
	}

	// Mounts: all read-only; the host root follows host mounts.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
		if !m.ReadOnly {
			t.Errorf("volume mount %s is writable", m.MountPath)
		}
		if _, ok := vols[m.Name]; !ok {
			t.Errorf("volume mount %s: no volume %q", m.MountPath, m.Name)
		}
	}
	hostPath := func(mountPath string) string {
		m, ok := mounts[mountPath]
		if !ok || vols[m.Name].HostPath == nil {
			return ""
		}
		return vols[m.Name].HostPath.Path
	}
	if hostPath("/host/root") != "/" {
		t.Error("the host's / is not mounted at /host/root")
	} else if p := mounts["/host/root"].MountPropagation; p == nil || *p != corev1.MountPropagationHostToContainer {
		t.Error("/host/root must use mountPropagation HostToContainer")
	}
	if hostPath("/run/containerd") != "/run/containerd" {
		t.Error("the runtime socket directory is not mounted at the same path")
	}

	// The args are valid imagefs serve flags, and consistent with the mounts and ports.
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %v: want serve …", c.Args)
	}
	flags := argFlags(t, c.Args)
	if flags["listen"] != "0.0.0.0:9847" {
		t.Errorf("--listen %q: in a pod the exporter must listen on the pod's address", flags["listen"])
	}
	if flags["host-root"] != "/host/root" || flags["mountinfo"] != "/host/root/proc/1/mountinfo" {
		t.Errorf("--host-root %q --mountinfo %q", flags["host-root"], flags["mountinfo"])
	}
	if ep := flags["runtime-endpoint"]; !strings.HasPrefix(ep, "unix:///run/containerd/") {
		t.Errorf("--runtime-endpoint %q is not in the mounted socket directory", ep)
	}
	if flags["node-name"] != "$(NODE_NAME)" || !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}) {
		t.Error("--node-name must come from spec.nodeName (the pod's hostname is the pod name)")
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9847 || c.Ports[0].Name != "metrics" {
		t.Errorf("ports %+v", c.Ports)
	}
	for probe, path := range map[*corev1.Probe]string{c.ReadinessProbe: "/readyz", c.LivenessProbe: "/healthz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("probe %+v: want GET %s on port metrics", probe, path)
		}
	}

	// Service and NetworkPolicy select the pods and name the port.
	if sel := labels.SelectorFromSet(o.svc.Spec.Selector); !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Error("the Service does not select the DaemonSet's pods")
	}
	if o.svc.Spec.ClusterIP != corev1.ClusterIPNone || len(o.svc.Spec.Ports) != 1 || o.svc.Spec.Ports[0].TargetPort.String() != "metrics" || o.svc.Spec.Ports[0].Name != "metrics" {
		t.Errorf("Service spec %+v: want headless, port metrics", o.svc.Spec)
	}
	np := o.netpols[0]
	if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Error("the NetworkPolicy does not select the DaemonSet's pods")
	}

	// The image is the one the kustomization rewrites.
	k := loadKustomization(t, ".")
	if len(k.Images) != 1 || k.Images[0].Name != c.Image {
		t.Errorf("container image %q is not rewritten by kustomization images %+v", c.Image, k.Images)
	}

	// The opt-in RBAC: get on nodes/proxy only, bound to the ServiceAccount,
	// in a component the base names (commented out).
	if lc := loadKustomization(t, "live-compare"); lc.Kind != "Component" {
		t.Error("live-compare must be a kustomize Component: an overlay inside deploy/ that includes ../ is a cycle kustomize rejects")
	}
	if kb, err := os.ReadFile("kustomization.yaml"); err != nil || !bytes.Contains(kb, []byte("#   - live-compare\n")) {
		t.Error("deploy/kustomization.yaml does not show how to enable live-compare")
	}
	if len(overlay.roles) != 1 || len(overlay.binds) != 1 {
		t.Fatalf("live-compare: %d ClusterRoles, %d bindings", len(overlay.roles), len(overlay.binds))
	}
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"get"}}}
	if !reflect.DeepEqual(overlay.roles[0].Rules, want) {
		t.Errorf("live-compare ClusterRole rules %+v, want %+v", overlay.roles[0].Rules, want)
	}
	b := overlay.binds[0]
	if b.RoleRef.Name != overlay.roles[0].Name || len(b.Subjects) != 1 || b.Subjects[0].Name != o.sa.Name || b.Subjects[0].Namespace != ns {
		t.Errorf("live-compare binding %+v", b)
	}
}

// argFlags maps the DaemonSet's --name=value args.
func argFlags(t *testing.T, args []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !strings.HasPrefix(a, "--") {
			t.Errorf("DaemonSet arg %q: write flags as --name=value", a)
			continue
		}
		out[name] = value
	}
	return out
}

// The DaemonSet's args parse with imagefs serve's own flags.
func TestDaemonSetArgsAreServeFlags(t *testing.T) {
	objs := decodeStrict(t, "daemonset.yaml")
	args := objs[0].(*appsv1.DaemonSet).Spec.Template.Spec.Containers[0].Args
	got := parseServeFlags(t, args)
	for name, want := range argFlags(t, args) {
		if got[name] != want {
			t.Errorf("--%s parses to %q, want %q", name, got[name], want)
		}
	}
}

// parseServeFlags parses args with imagefs serve's own flag set.
func parseServeFlags(t *testing.T, args []string) map[string]string {
	t.Helper()
	root := cli.NewRootCommand(cli.IO{Out: io.Discard, ErrOut: io.Discard})
	cmd, rest, err := root.Find(args)
	if err != nil || cmd.Name() != "serve" {
		msg := "imagefs has no serve command yet (root.AddCommand(newServeCommand(g, streams))): the DaemonSet's flags are not checked"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("DaemonSet args %v: %v", args, err)
	}
	out := map[string]string{}
	for name := range argFlags(t, args) {
		if f := cmd.Flags().Lookup(name); f != nil {
			out[name] = f.Value.String()
		}
	}
	if n := cmd.Flags().NArg(); n != 0 {
		t.Errorf("DaemonSet args have %d positional arguments after serve", n)
	}
	return out
}

// Prometheus Operator objects: their documented structure, strictly.
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

type prometheusRule struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       ruleFile          `json:"spec"`
}

type serviceMonitor struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
			Relabelings   []struct {
				SourceLabels []string `json:"sourceLabels,omitempty"`
				TargetLabel  string   `json:"targetLabel,omitempty"`
				Action       string   `json:"action,omitempty"`
				Regex        string   `json:"regex,omitempty"`
				Replacement  string   `json:"replacement,omitempty"`
			} `json:"relabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func TestMonitoring(t *testing.T) {
	base, _ := load(t)
	k := loadKustomization(t, "monitoring")
	listed := map[string]bool{"kustomization.yaml": true}
	for _, r := range k.Resources {
		listed[r] = true
	}
	for _, f := range yamlFiles(t, "monitoring") {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s is not in monitoring/kustomization.yaml", f)
		}
	}
	if len(k.ConfigMapGenerator) != 1 || len(k.ConfigMapGenerator[0].Files) != 1 {
		t.Fatalf("monitoring: configMapGenerator %+v", k.ConfigMapGenerator)
	}
	_, dashboardFile, _ := strings.Cut(k.ConfigMapGenerator[0].Files[0], "=")
	if _, err := os.Stat(filepath.Join("monitoring", dashboardFile)); err != nil {
		t.Error(err)
	}

	var sm serviceMonitor
	unmarshalStrict(t, "monitoring/servicemonitor.yaml", &sm)
	if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Kind != "ServiceMonitor" {
		t.Errorf("ServiceMonitor apiVersion %q kind %q", sm.APIVersion, sm.Kind)
	}
	if sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector); err != nil || !sel.Matches(labels.Set(base.svc.Labels)) {
		t.Error("the ServiceMonitor does not select the Service")
	}
	if !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, base.ns.Name) {
		t.Errorf("the ServiceMonitor does not look in namespace %s", base.ns.Name)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != base.svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v", sm.Spec.Endpoints)
	}
	if !slices.ContainsFunc(sm.Spec.Endpoints[0].Relabelings, func(r struct {
		SourceLabels []string `json:"sourceLabels,omitempty"`
		TargetLabel  string   `json:"targetLabel,omitempty"`
		Action       string   `json:"action,omitempty"`
		Regex        string   `json:"regex,omitempty"`
		Replacement  string   `json:"replacement,omitempty"`
	}) bool {
		return r.TargetLabel == "node" && slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_node_name"})
	}) {
		t.Error("the ServiceMonitor does not label series with their node (the alerts use {{ $labels.node }})")
	}

	// The PrometheusRule carries exactly the promtool-tested rules file.
	var pr prometheusRule
	unmarshalStrict(t, "monitoring/prometheusrule.yaml", &pr)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("PrometheusRule apiVersion %q kind %q", pr.APIVersion, pr.Kind)
	}
	var plain ruleFile
	unmarshalStrict(t, "prometheus/rules.yaml", &plain)
	if !reflect.DeepEqual(pr.Spec, plain) {
		a, _ := json.MarshalIndent(pr.Spec, "", "  ")
		b, _ := json.MarshalIndent(plain, "", "  ")
		t.Errorf("monitoring/prometheusrule.yaml differs from prometheus/rules.yaml: copy the groups over\nPrometheusRule:\n%s\nrules.yaml:\n%s", a, b)
	}
	alerts := map[string]bool{}
	for _, g := range plain.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a severity, a summary and a description", r.Alert)
			}
			checkMetricNames(t, "alert "+r.Alert, r.Expr)
		}
	}
	for _, a := range []string{"ImagefsNearImageGCThreshold", "ImagefsImageFsCapacityMissing", "ImagefsDiskPressurePredicted", "ImagefsRuntimeDown"} {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}
	// Every alert has a promtool unit test.
	tests, err := os.ReadFile("prometheus/rules_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for a := range alerts {
		if !bytes.Contains(tests, []byte("alertname: "+a+"\n")) {
			t.Errorf("alert %s has no test in prometheus/rules_test.yaml", a)
		}
	}
}

var metricName = regexp.MustCompile(`\b(imagefs_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+)\b`)

// checkMetricNames fails for a metric name the exporter does not emit.
func checkMetricNames(t *testing.T, where, expr string) {
	t.Helper()
	known := map[string]bool{}
	for _, m := range exporter.Metrics() {
		known[m.Name] = true
	}
	for _, name := range metricName.FindAllString(expr, -1) {
		if strings.HasPrefix(name, "imagefs_") && !known[name] {
			t.Errorf("%s uses %s, which imagefs serve does not emit", where, name)
		}
	}
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("monitoring/imagefs-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 || len(d.Panels) == 0 {
		t.Fatalf("dashboard lacks uid, title, schemaVersion or panels")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] || !vars["node"] {
		t.Error("dashboard needs $datasource and $node variables")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %q, %d targets", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, tg := range p.Targets {
			checkMetricNames(t, "panel "+p.Title, tg.Expr)
			if !strings.Contains(tg.Expr, `node=~"$node"`) {
				t.Errorf("panel %q: %s ignores $node", p.Title, tg.Expr)
			}
		}
	}
}

// promtool returns promtool's path; it skips without it, except under
// CI=true (Debian package prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	msg := "promtool not found (Debian package prometheus): the rules are not checked"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestPromtoolRules(t *testing.T) {
	p := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "prometheus/rules.yaml"},
		{"test", "rules", "prometheus/rules_test.yaml"},
	} {
		out, err := exec.Command(p, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The Containerfile builds a static binary with go.mod's toolchain on a
// distroless/static or scratch base; its build command, run here, yields a
// binary without an ELF interpreter or shared libraries.
func TestContainerfile(t *testing.T) {
	data, err := os.ReadFile("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, runs []string
	for _, line := range strings.Split(string(data), "\n") {
		switch f := strings.Fields(line); {
		case len(f) >= 2 && f[0] == "FROM":
			froms = append(froms, f[1])
		case len(f) >= 2 && f[0] == "RUN":
			runs = append(runs, strings.TrimPrefix(line, "RUN "))
		}
	}
	if len(froms) < 2 {
		t.Fatalf("not multi-stage: FROM %v", froms)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goVersion == nil || !strings.Contains(froms[0], "golang:"+string(goVersion[1])) {
		t.Errorf("build stage %s does not use go.mod's Go %s", froms[0], goVersion)
	}
	if final := froms[len(froms)-1]; !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("final stage %s: want distroless/static or scratch", final)
	}
	i := slices.IndexFunc(runs, func(r string) bool { return strings.Contains(r, "go build") })
	if i < 0 || !strings.HasPrefix(runs[i], "CGO_ENABLED=0 ") || !strings.HasSuffix(runs[i], "./cmd/imagefs") {
		t.Fatalf("no `CGO_ENABLED=0 … go build … ./cmd/imagefs` step: %v", runs)
	}
	if testing.Short() {
		t.Skip("-short: not building the binary")
	}
	bin := filepath.Join(t.TempDir(), "imagefs")
	cmd := exec.Command("sh", "-c", strings.Replace(runs[i], "/out/imagefs", bin, 1))
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", runs[i], err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}
}
