package gc

import (
	"fmt"
	"sort"
	"strings"
	"time"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels the kubelet puts on every container it creates
// (pkg/kubelet/types/labels.go).
const (
	labelPodName      = "io.kubernetes.pod.name"
	labelPodNamespace = "io.kubernetes.pod.namespace"
)

// Times says how imagefs stands in for the kubelet's in-memory times.
type Times struct {
	// KubeletStart is when the kubelet started (its GC loop's beganGC and
	// first image detection follow within seconds); zero if unknown.
	KubeletStart       time.Time `json:"kubeletStart,omitzero"`
	KubeletStartSource string    `json:"kubeletStartSource"`
	// FirstDetected is given to every image.
	FirstDetected       time.Time `json:"firstDetected"`
	FirstDetectedSource string    `json:"firstDetectedSource"`
}

// label names FirstDetected's origin in a few words, for Image.Assumed.
func (t Times) label() string {
	switch {
	case strings.HasPrefix(t.FirstDetectedSource, "--"):
		return strings.Fields(t.FirstDetectedSource)[0]
	case !t.FirstDetected.IsZero() && t.FirstDetected.Equal(t.KubeletStart):
		return "kubelet start"
	}
	return "unknown"
}

// Assumptions states Times and what follows from them, for Plan.Assumptions.
func (t Times) Assumptions(now time.Time) []string {
	ks := "unknown"
	if !t.KubeletStart.IsZero() {
		ks = t.KubeletStart.UTC().Format(time.RFC3339)
	}
	return []string{
		fmt.Sprintf("firstDetected = %s for every image (%s). The kubelet records an image when its detection (every 5m, and at each GC run) first sees it after the kubelet started: an image pulled later was detected up to 5m after its pull, so it may really be younger than imageMinimumGCAge", t.FirstDetected.UTC().Format(time.RFC3339), t.FirstDetectedSource),
		"lastUsed = the GC time for images in use now, else never (the kubelet's zero time): imagefs cannot see containers removed since the kubelet started. The kubelet remembers the last detection at which such an image was in use, so it visits those images later than this plan, and max-age counts from that time",
		fmt.Sprintf("kubelet start (beganGC, for imageMaximumGCAge) = %s (%s)", ks, t.KubeletStartSource),
		fmt.Sprintf("the kubelet runs image GC every %v (the first run at its start); this plan is for a run at %s, with available measured now (the kubelet reads cadvisor's cached statfs sample, up to ~15 s old)", Period, now.UTC().Format(time.RFC3339)),
	}
}

// Counted returns the containers the kubelet's detectImages sees: all of
// ListContainers (any state: GetPods(all=true) uses no filter) except
// those getPods drops (no metadata) or toKubeContainer rejects (no id, no
// image). Only these are asked for ContainerStatus (image volumes).
func Counted(containers []*criapi.Container) []*criapi.Container {
	var out []*criapi.Container
	for _, c := range containers {
		if c.GetMetadata() == nil || c.GetId() == "" || c.GetImage() == nil {
			continue
		}
		out = append(out, c)
	}
	return out
}

// ContainerImageID is the image id the kubelet records for a container:
// image_id when the runtime sets it (CRI v1.30+), else image_ref.
func ContainerImageID(c *criapi.Container) string {
	if c.GetImageId() != "" {
		return c.GetImageId()
	}
	return c.GetImageRef()
}

// Detect builds the kubelet's image records from ListImages, ListContainers
// and, per counted container, ContainerStatus (statuses by container id;
// nil or missing entries have no image volumes). It also returns notes on
// containers whose image the kubelet cannot match.
func Detect(images []*criapi.Image, containers []*criapi.Container, statuses map[string]*criapi.ContainerStatus, t Times, now time.Time) ([]Image, []string) {
	byID := map[string]bool{}
	for _, img := range images {
		byID[img.GetId()] = true
	}
	usedBy := map[string][]string{}
	var notes []string
	for _, c := range Counted(containers) {
		id := ContainerImageID(c)
		who := containerName(c)
		usedBy[id] = append(usedBy[id], fmt.Sprintf("%s (%s)", who, state(c.GetState())))
		if id != "" && !byID[id] {
			notes = append(notes, fmt.Sprintf("container %s references image %q, which is not the id of any listed image: the kubelet does not protect any image for it", who, id))
		}
		for _, m := range statuses[c.GetId()].GetMounts() {
			if ref := m.GetImage().GetImage(); ref != "" && byID[ref] {
				usedBy[ref] = append(usedBy[ref], fmt.Sprintf("%s (image volume at %s)", who, m.GetContainerPath()))
			}
		}
	}
	out := make([]Image, 0, len(images))
	label := t.label()
	for _, img := range images {
		g := Image{
			ID: img.GetId(), Tags: img.GetRepoTags(), Digests: img.GetRepoDigests(),
			Size: img.GetSize(), Pinned: img.GetPinned(),
			FirstDetected: t.FirstDetected,
		}
		if users := usedBy[g.ID]; len(users) > 0 {
			sort.Strings(users)
			g.InUse, g.UsedBy, g.LastUsed = true, users, now
			g.Assumed = "firstDetected = " + label + "; lastUsed = now (in use)"
		} else {
			g.Assumed = "firstDetected = " + label + "; lastUsed = never (not in use now)"
		}
		out = append(out, g)
	}
	return out, notes
}

func containerName(c *criapi.Container) string {
	name := c.GetMetadata().GetName()
	ns, pod := c.GetLabels()[labelPodNamespace], c.GetLabels()[labelPodName]
	if pod != "" {
		return fmt.Sprintf("%s/%s/%s", ns, pod, name)
	}
	id := c.GetId()
	if len(id) > 12 {
		id = id[:12]
	}
	return fmt.Sprintf("%s [%s]", name, id)
}

func state(s criapi.ContainerState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CONTAINER_"))
}
