package kubelettest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// Defaults of the imagefs DaemonSet the exporter pods belong to.
const (
	DefaultExporterNamespace = "imagefs"
	DefaultExporterPort      = 9847
	// ExporterLabel is the label every exporter pod carries, with the
	// value ExporterLabelValue.
	ExporterLabel      = "app.kubernetes.io/name"
	ExporterLabelValue = "imagefs"
)

// NodeSpec is one node of a cluster server (Options.Nodes).
type NodeSpec struct {
	// Name is required and unique.
	Name string
	// Labels are added to kubernetes.io/hostname and kubernetes.io/os.
	Labels map[string]string
	// Summary is what its node proxy serves; nil means NewSummary(Name, now).
	Summary *statsapi.Summary
	// Body, when non-nil, is served verbatim (200, application/json)
	// instead of the Summary.
	Body []byte
	// Delay holds this node's proxied answers instead of Options.Latency;
	// negative means no delay.
	Delay time.Duration
	// Hang never answers: the request is held until the client gives up,
	// a kubelet that accepted the connection and stalled.
	Hang bool
	// ServerError is the kubelet's 500 "Internal Error: " + ServerError.
	ServerError string
	// KubeletUnreachable is the API server's 503 for a kubelet it cannot
	// dial.
	KubeletUnreachable bool
	// NoSummary is a kubelet without /stats/summary: its plain-text 404
	// passed through the proxy.
	NoSummary bool
	// Gone is a node deleted after it was listed: GET of it and of its
	// proxy answer the API server's 404 Status, but lists still show it.
	Gone bool
	// DiskPressure sets the Node's DiskPressure condition to True.
	DiskPressure bool
	// NotReady sets the Node's Ready condition to Unknown, as the node
	// lifecycle controller does for a kubelet that stopped posting status.
	NotReady bool

	// ExporterPod names the imagefs exporter pod on this node; "" means
	// none runs there.
	ExporterPod string
	// ExporterPhase is the pod's phase; Running if empty.
	ExporterPhase corev1.PodPhase
	// Doctor is what the pod's /doctor serves as JSON; nil means an
	// empty report whose worst severity is "ok".
	Doctor any
	// ExporterDown makes the pod proxy answer 503, a pod that is not
	// listening.
	ExporterDown bool
}

type clusterNode struct {
	spec    NodeSpec
	obj     *corev1.Node
	pod     *corev1.Pod
	summary *statsapi.Summary
	body    []byte // the Summary as served
	doctor  []byte
}

// initCluster prepares Options.Nodes; every body is marshalled once, so a
// thousand-node server spends its time on latency, not on JSON.
func (s *Server) initCluster() error {
	if len(s.opts.Nodes) == 0 {
		return nil
	}
	if s.opts.ExporterNamespace == "" {
		s.opts.ExporterNamespace = DefaultExporterNamespace
	}
	if s.opts.ExporterPort == 0 {
		s.opts.ExporterPort = DefaultExporterPort
	}
	now := time.Now()
	s.cluster = make(map[string]*clusterNode, len(s.opts.Nodes))
	for i, spec := range s.opts.Nodes {
		if spec.Name == "" {
			return fmt.Errorf("Nodes[%d] has no name", i)
		}
		if s.cluster[spec.Name] != nil {
			return fmt.Errorf("node %s listed twice", spec.Name)
		}
		n := &clusterNode{spec: spec, summary: spec.Summary}
		if n.summary == nil {
			n.summary = NewSummary(spec.Name, now)
		}
		var err error
		if n.body, err = json.MarshalIndent(n.summary, "", " "); err != nil {
			return fmt.Errorf("node %s: %w", spec.Name, err)
		}
		n.obj = newNode(spec.Name, "127.0.0.1:10250")
		for k, v := range spec.Labels {
			n.obj.Labels[k] = v
		}
		n.obj.ResourceVersion = strconv.Itoa(1000 + i)
		n.obj.Status.Conditions = conditions(spec.DiskPressure, spec.NotReady, now)
		if spec.ExporterPod != "" {
			n.pod = s.exporterPod(spec, i)
			doc := spec.Doctor
			if doc == nil {
				doc = map[string]any{"nodeName": spec.Name, "findings": []any{}, "worst": "ok"}
			}
			if n.doctor, err = json.MarshalIndent(doc, "", "  "); err != nil {
				return fmt.Errorf("node %s doctor: %w", spec.Name, err)
			}
		}
		s.cluster[spec.Name] = n
		s.order = append(s.order, spec.Name)
	}
	sort.Strings(s.order)
	return nil
}

// NodeSummary is what node's proxy serves, nil for a name not served.
func (s *Server) NodeSummary(node string) *statsapi.Summary {
	if s.cluster == nil {
		if node == s.Node {
			return s.Summary
		}
		return nil
	}
	if n := s.cluster[node]; n != nil {
		return n.summary
	}
	return nil
}

// MaxInFlight is the most proxied requests (node or pod proxy) the server
// held at once since it started or ResetStats.
func (s *Server) MaxInFlight() int { return int(s.maxIn.Load()) }

// Conns is how many connections clients opened.
func (s *Server) Conns() int { return int(s.conns.Load()) }

// ResetStats zeroes MaxInFlight, Conns and Requests.
func (s *Server) ResetStats() {
	s.maxIn.Store(s.inFlight.Load())
	s.conns.Store(0)
	s.mu.Lock()
	s.reqs = nil
	s.mu.Unlock()
}

func (s *Server) enter() {
	n := s.inFlight.Add(1)
	for {
		m := s.maxIn.Load()
		if n <= m || s.maxIn.CompareAndSwap(m, n) {
			return
		}
	}
}

func conditions(diskPressure, notReady bool, now time.Time) []corev1.NodeCondition {
	t := metav1.NewTime(now.Add(-time.Hour).Truncate(time.Second))
	dp := corev1.NodeCondition{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure", LastHeartbeatTime: t, LastTransitionTime: t}
	if diskPressure {
		dp.Status, dp.Reason, dp.Message = corev1.ConditionTrue, "KubeletHasDiskPressure", "kubelet has disk pressure"
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status", LastHeartbeatTime: t, LastTransitionTime: t}
	if notReady {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	return []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available", LastHeartbeatTime: t, LastTransitionTime: t},
		dp,
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available", LastHeartbeatTime: t, LastTransitionTime: t},
		ready,
	}
}

func (s *Server) exporterPod(spec NodeSpec, i int) *corev1.Pod {
	phase := spec.ExporterPhase
	if phase == "" {
		phase = corev1.PodRunning
	}
	ready := corev1.ConditionFalse
	if phase == corev1.PodRunning {
		ready = corev1.ConditionTrue
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            spec.ExporterPod,
			Namespace:       s.opts.ExporterNamespace,
			Labels:          map[string]string{ExporterLabel: ExporterLabelValue, "controller-revision-hash": "6d4b9f7c8"},
			ResourceVersion: strconv.Itoa(5000 + i),
		},
		Spec: corev1.PodSpec{
			NodeName: spec.Name,
			Containers: []corev1.Container{{
				Name:  "exporter",
				Image: "ghcr.io/imagefs/imagefs:latest",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(s.opts.ExporterPort), Protocol: corev1.ProtocolTCP}},
			}},
		},
		Status: corev1.PodStatus{
			Phase:      phase,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}},
			PodIP:      fmt.Sprintf("10.244.%d.%d", i/250, i%250+2),
		},
	}
}

// listNodes is GET /api/v1/nodes with labelSelector and chunking
// (limit, continue), as kubectl and pagers use it.
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	sel, ok := s.selector(w, r)
	if !ok {
		return
	}
	var all []*corev1.Node
	if s.cluster == nil {
		all = []*corev1.Node{s.NodeObject}
	} else {
		for _, name := range s.order {
			all = append(all, s.cluster[name].obj)
		}
	}
	var match []corev1.Node
	for _, n := range all {
		if sel.Matches(labels.Set(n.Labels)) {
			match = append(match, *n)
		}
	}
	list := &corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: "99999"}}
	items, cont, ok := page(w, r, match)
	if !ok {
		return
	}
	list.Items, list.Continue = items, cont
	writeJSON(w, http.StatusOK, list)
}

// listPods is GET /api/v1/namespaces/{ns}/pods: the exporter pods.
func (s *Server) listPods(w http.ResponseWriter, r *http.Request) {
	sel, ok := s.selector(w, r)
	if !ok {
		return
	}
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: "99999"}}
	var match []corev1.Pod
	if r.PathValue("ns") == s.opts.ExporterNamespace {
		for _, name := range s.order {
			if p := s.cluster[name].pod; p != nil && sel.Matches(labels.Set(p.Labels)) {
				match = append(match, *p)
			}
		}
	}
	items, cont, ok := page(w, r, match)
	if !ok {
		return
	}
	list.Items, list.Continue = items, cont
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) selector(w http.ResponseWriter, r *http.Request) (labels.Selector, bool) {
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "unable to parse requirement: "+err.Error(), nil)
		return nil, false
	}
	return sel, true
}

// page cuts items at limit; the continue token is the next offset.
func page[T any](w http.ResponseWriter, r *http.Request, items []T) ([]T, string, bool) {
	q := r.URL.Query()
	start := 0
	if c := q.Get("continue"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "kubelettest-"))
		if err != nil || n < 0 || n > len(items) {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "continue key is not valid: "+c, nil)
			return nil, "", false
		}
		start = n
	}
	items = items[start:]
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit >= len(items) {
		return items, "", true
	}
	return items[:limit], "kubelettest-" + strconv.Itoa(start+limit), true
}

// clusterSummary is the node proxy of a cluster server: RBAC was checked,
// then the node lookup, then the node's own behaviour.
func (s *Server) clusterSummary(w http.ResponseWriter, r *http.Request, name string) {
	n := s.cluster[name]
	if n == nil || n.spec.Gone {
		s.notFound(w, name)
		return
	}
	if n.spec.KubeletUnreachable {
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"error trying to reach service: dial tcp 127.0.0.1:10250: connect: connection refused", nil)
		return
	}
	s.hold(r, n)
	switch {
	case n.spec.ServerError != "":
		writeText(w, http.StatusInternalServerError, "Internal Error: "+n.spec.ServerError)
	case n.spec.NoSummary:
		writeText(w, http.StatusNotFound, "404 page not found\n")
	case n.spec.Body != nil:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(n.spec.Body)
	default:
		writeRaw(w, n.body)
	}
}

// hold applies the node's latency or hang.
func (s *Server) hold(r *http.Request, n *clusterNode) {
	d := s.opts.Latency
	if n.spec.Delay != 0 {
		d = max(n.spec.Delay, 0)
	}
	if n.spec.Hang {
		d = -1
	}
	s.wait(r, d)
}

// podProxy is GET /api/v1/namespaces/{ns}/pods/{name}/proxy/{path}: name
// is POD, POD:PORT or SCHEME:POD:PORT.
func (s *Server) podProxy(w http.ResponseWriter, r *http.Request) {
	ns, ref, path := r.PathValue("ns"), r.PathValue("name"), r.PathValue("path")
	parts := strings.Split(ref, ":")
	pod, port := parts[0], s.opts.ExporterPort
	switch len(parts) {
	case 2:
		pod = parts[0]
		port, _ = strconv.Atoi(parts[1])
	case 3:
		pod = parts[1]
		port, _ = strconv.Atoi(parts[2])
	}
	if s.opts.ForbidProxy {
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
			fmt.Sprintf("pods %q is forbidden: User %q cannot get resource \"pods/proxy\" in API group \"\" in the namespace %q", ref, s.opts.User, ns),
			&metav1.StatusDetails{Name: ref, Kind: "pods"})
		return
	}
	var n *clusterNode
	for _, name := range s.order {
		if c := s.cluster[name]; c.pod != nil && c.pod.Name == pod && ns == s.opts.ExporterNamespace {
			n = c
			break
		}
	}
	if n == nil {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pods %q not found", pod), &metav1.StatusDetails{Name: pod, Kind: "pods"})
		return
	}
	if n.spec.ExporterDown || port != s.opts.ExporterPort || n.pod.Status.Phase != corev1.PodRunning {
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			fmt.Sprintf("error trying to reach service: dial tcp %s:%d: connect: connection refused", n.pod.Status.PodIP, port), nil)
		return
	}
	s.hold(r, n)
	switch path {
	case "stats/summary":
		writeRaw(w, n.body)
	case "doctor":
		writeRaw(w, n.doctor)
	default:
		writeText(w, http.StatusNotFound, "404 page not found\n")
	}
}

func writeRaw(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// SummaryWithImageFs is NewSummary with an imageFs of
// capacity bytes and available bytes (containerFs the same object), inodes
// kept; capacity 0 omits capacityBytes, availableBytes and inodes, the
// shape the kubelet serves when cadvisor had no data for the device.
func SummaryWithImageFs(node string, now time.Time, capacity, available uint64) *statsapi.Summary {
	s := NewSummary(node, now)
	img := *s.Node.Runtime.ImageFs
	if capacity == 0 {
		img.CapacityBytes, img.AvailableBytes, img.Inodes, img.InodesFree = nil, nil, nil, nil
	} else {
		img.CapacityBytes, img.AvailableBytes = &capacity, &available
	}
	s.Node.Runtime = &statsapi.RuntimeStats{ImageFs: &img, ContainerFs: &img}
	return s
}
