// Package runtime talks to a container runtime over CRI (k8s.io/cri-api v1):
// it finds the endpoint the way crictl does, dials it over a unix socket and
// makes the few read-only calls imagefs needs, each under its own deadline.
package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// DefaultEndpoints are tried in this order when nothing names an endpoint;
// it is crictl v1.37's order on Linux (cmd/crictl/main_unix.go).
var DefaultEndpoints = []string{
	"unix:///run/containerd/containerd.sock",
	"unix:///run/crio/crio.sock",
	"unix:///var/run/cri-dockerd.sock",
}

// DefaultCrictlConfig is where crictl reads its configuration unless
// CRI_CONFIG_FILE says otherwise.
const DefaultCrictlConfig = "/etc/crictl.yaml"

// EnvEndpoint is the environment variable crictl and imagefs read the
// endpoint from.
const EnvEndpoint = "CONTAINER_RUNTIME_ENDPOINT"

// Endpoint is a resolved CRI endpoint and how it was chosen.
type Endpoint struct {
	// URL as given, e.g. unix:///run/containerd/containerd.sock.
	URL string `json:"url"`
	// Path of the unix socket.
	Path string `json:"path"`
	// Source says where the endpoint came from, e.g. "--runtime-endpoint",
	// "$CONTAINER_RUNTIME_ENDPOINT", "/etc/crictl.yaml" or "autodetected".
	Source string `json:"source"`
}

// ResolveOptions are the inputs of ResolveEndpoint, in priority order.
type ResolveOptions struct {
	Flag         string              // --runtime-endpoint
	Getenv       func(string) string // os.Getenv when nil
	CrictlConfig string              // crictl config file; "" means $CRI_CONFIG_FILE or /etc/crictl.yaml
	Candidates   []string            // autodetection list; nil means DefaultEndpoints
}

// ErrNoEndpoint means nothing named an endpoint and no default socket exists.
var ErrNoEndpoint = errors.New("no container runtime endpoint found")

// ResolveEndpoint picks the CRI endpoint: the flag, then
// $CONTAINER_RUNTIME_ENDPOINT, then crictl's config file, then the first
// default socket that exists (crictl's order).
func ResolveEndpoint(o ResolveOptions) (Endpoint, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if o.Flag != "" {
		return parseEndpoint(o.Flag, "--runtime-endpoint")
	}
	if v := getenv(EnvEndpoint); v != "" {
		return parseEndpoint(v, "$"+EnvEndpoint)
	}
	cfgPath := o.CrictlConfig
	if cfgPath == "" {
		cfgPath = getenv("CRI_CONFIG_FILE")
	}
	if cfgPath == "" {
		cfgPath = DefaultCrictlConfig
	}
	ep, found, err := endpointFromCrictlConfig(cfgPath)
	if err != nil {
		return Endpoint{}, err
	}
	if found {
		return ep, nil
	}
	candidates := o.Candidates
	if candidates == nil {
		candidates = DefaultEndpoints
	}
	for _, c := range candidates {
		ep, err := parseEndpoint(c, "autodetected")
		if err != nil {
			continue
		}
		if fi, err := os.Stat(ep.Path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return ep, nil
		}
	}
	return Endpoint{}, fmt.Errorf("%w (tried %s)", ErrNoEndpoint, strings.Join(candidates, ", "))
}

// crictlConfig is the part of crictl's YAML config imagefs reads.
type crictlConfig struct {
	RuntimeEndpoint string `json:"runtime-endpoint"`
}

func endpointFromCrictlConfig(path string) (Endpoint, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Endpoint{}, false, nil
	}
	if err != nil {
		return Endpoint{}, false, fmt.Errorf("read crictl config %s: %w", path, err)
	}
	var cfg crictlConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return Endpoint{}, false, fmt.Errorf("parse crictl config %s: %w", path, err)
	}
	if cfg.RuntimeEndpoint == "" {
		return Endpoint{}, false, nil
	}
	ep, err := parseEndpoint(cfg.RuntimeEndpoint, path)
	return ep, err == nil, err
}

// ErrBadEndpoint means an endpoint string is not a unix socket address.
var ErrBadEndpoint = errors.New("not a unix socket endpoint")

func parseEndpoint(s, source string) (Endpoint, error) {
	path := s
	switch {
	case strings.HasPrefix(s, "unix://"):
		path = strings.TrimPrefix(s, "unix://")
	case strings.HasPrefix(s, "/"):
		s = "unix://" + s
	default:
		return Endpoint{}, fmt.Errorf("endpoint %q from %s: %w (want unix:///path/to.sock)", s, source, ErrBadEndpoint)
	}
	if !strings.HasPrefix(path, "/") {
		return Endpoint{}, fmt.Errorf("endpoint %q from %s: %w (the socket path must be absolute)", s, source, ErrBadEndpoint)
	}
	return Endpoint{URL: s, Path: path, Source: source}, nil
}
