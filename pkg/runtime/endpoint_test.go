package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveEndpoint(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	p := func(name string) string { return filepath.Join(dir, name) }
	write := func(name, content string) string {
		if err := os.WriteFile(p(name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p(name)
	}

	// Candidates: a missing path, a regular file, a directory, then two
	// real sockets; autodetection must pick the first socket.
	sockA, sockB := p("a.sock"), p("b.sock")
	listenUnix(t, sockA)
	listenUnix(t, sockB)
	regular := write("regular.sock", "not a socket")
	if err := os.Mkdir(p("dir.sock"), 0o755); err != nil {
		t.Fatal(err)
	}
	candidates := []string{"unix://" + p("missing.sock"), "unix://" + regular, "unix://" + p("dir.sock"), "unix://" + sockA, "unix://" + sockB}

	cfgWithEndpoint := write("crictl.yaml", "runtime-endpoint: unix:///run/from-crictl.sock\nimage-endpoint: unix:///run/img.sock\ntimeout: 10\n")
	cfgAbs := write("crictl-abs.yaml", "runtime-endpoint: /run/abs-crictl.sock\n")
	cfgNoEndpoint := write("crictl-noep.yaml", "image-endpoint: unix:///run/img.sock\ntimeout: 10\ndebug: false\n")
	cfgEmpty := write("crictl-empty.yaml", "")
	cfgMalformed := write("crictl-bad.yaml", "runtime-endpoint: [unix:///x\n  : :\n")
	cfgTCP := write("crictl-tcp.yaml", "runtime-endpoint: tcp://10.0.0.1:1234\n")
	cfgMissing := p("no-such-crictl.yaml")
	cfgIsDir := p("dir.sock")
	cfgViaEnv := write("crictl-env.yaml", "runtime-endpoint: unix:///run/via-cri-config-file.sock\n")

	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	noEnv := env()

	tests := []struct {
		name string
		opts ResolveOptions
		// want on success
		url, path, source string
		// or the error: a sentinel (nil: any error) and phrases it must contain
		wantErr     bool
		errIs       error
		errNotIs    []error
		errContains []string
	}{
		// Priority: flag > env > crictl config > autodetection.
		{
			name: "flag wins over env, config and sockets",
			opts: ResolveOptions{Flag: "unix:///run/flag.sock", Getenv: env(EnvEndpoint, "unix:///run/env.sock"), CrictlConfig: cfgWithEndpoint, Candidates: candidates},
			url:  "unix:///run/flag.sock", path: "/run/flag.sock", source: "--runtime-endpoint",
		},
		{
			name: "env wins over config and sockets",
			opts: ResolveOptions{Getenv: env(EnvEndpoint, "unix:///run/env.sock"), CrictlConfig: cfgWithEndpoint, Candidates: candidates},
			url:  "unix:///run/env.sock", path: "/run/env.sock", source: "$CONTAINER_RUNTIME_ENDPOINT",
		},
		{
			name: "crictl config wins over sockets",
			opts: ResolveOptions{Getenv: noEnv, CrictlConfig: cfgWithEndpoint, Candidates: candidates},
			url:  "unix:///run/from-crictl.sock", path: "/run/from-crictl.sock", source: cfgWithEndpoint,
		},
		{
			name: "autodetection picks the first candidate that is a socket",
			opts: ResolveOptions{Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: candidates},
			url:  "unix://" + sockA, path: sockA, source: "autodetected",
		},
		{
			name: "autodetection skips malformed candidates",
			opts: ResolveOptions{Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: []string{"tcp://127.0.0.1:1", "relative.sock", sockB}},
			url:  "unix://" + sockB, path: sockB, source: "autodetected",
		},

		// Absolute paths are accepted and normalised to unix://.
		{
			name: "flag absolute path",
			opts: ResolveOptions{Flag: "/run/containerd/containerd.sock", Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: []string{}},
			url:  "unix:///run/containerd/containerd.sock", path: "/run/containerd/containerd.sock", source: "--runtime-endpoint",
		},
		{
			name: "env absolute path",
			opts: ResolveOptions{Getenv: env(EnvEndpoint, "/run/crio/crio.sock"), CrictlConfig: cfgMissing, Candidates: []string{}},
			url:  "unix:///run/crio/crio.sock", path: "/run/crio/crio.sock", source: "$CONTAINER_RUNTIME_ENDPOINT",
		},
		{
			name: "crictl config absolute path",
			opts: ResolveOptions{Getenv: noEnv, CrictlConfig: cfgAbs, Candidates: []string{}},
			url:  "unix:///run/abs-crictl.sock", path: "/run/abs-crictl.sock", source: cfgAbs,
		},

		// Anything but a unix socket path is a usage error.
		{
			name: "flag tcp", opts: ResolveOptions{Flag: "tcp://10.0.0.1:1234", Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: candidates},
			wantErr: true, errIs: ErrBadEndpoint, errContains: []string{`"tcp://10.0.0.1:1234"`, "--runtime-endpoint", "unix:///path/to.sock"},
		},
		{
			name: "flag relative path", opts: ResolveOptions{Flag: "run/containerd.sock", Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: candidates},
			wantErr: true, errIs: ErrBadEndpoint, errContains: []string{`"run/containerd.sock"`, "--runtime-endpoint"},
		},
		{
			name: "flag unix:// with relative path", opts: ResolveOptions{Flag: "unix://run/containerd.sock", Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: candidates},
			wantErr: true, errIs: ErrBadEndpoint, errContains: []string{`"unix://run/containerd.sock"`, "must be absolute"},
		},
		{
			name: "flag unix:// with no path", opts: ResolveOptions{Flag: "unix://", Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: candidates},
			wantErr: true, errIs: ErrBadEndpoint,
		},
		{
			name: "env tcp", opts: ResolveOptions{Getenv: env(EnvEndpoint, "tcp://x"), CrictlConfig: cfgWithEndpoint, Candidates: candidates},
			wantErr: true, errIs: ErrBadEndpoint, errContains: []string{`"tcp://x"`, "$CONTAINER_RUNTIME_ENDPOINT"},
		},
		{
			name: "crictl config tcp", opts: ResolveOptions{Getenv: noEnv, CrictlConfig: cfgTCP, Candidates: candidates},
			wantErr: true, errIs: ErrBadEndpoint, errContains: []string{"tcp://10.0.0.1:1234", cfgTCP},
		},

		// crictl config that names no endpoint falls through.
		{
			name: "crictl config missing falls through",
			opts: ResolveOptions{Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: []string{"unix://" + sockB}},
			url:  "unix://" + sockB, path: sockB, source: "autodetected",
		},
		{
			name: "crictl config without runtime-endpoint falls through",
			opts: ResolveOptions{Getenv: noEnv, CrictlConfig: cfgNoEndpoint, Candidates: []string{"unix://" + sockB}},
			url:  "unix://" + sockB, path: sockB, source: "autodetected",
		},
		{
			name: "empty crictl config falls through",
			opts: ResolveOptions{Getenv: noEnv, CrictlConfig: cfgEmpty, Candidates: []string{"unix://" + sockB}},
			url:  "unix://" + sockB, path: sockB, source: "autodetected",
		},
		{
			name:    "malformed crictl config is an error naming the file",
			opts:    ResolveOptions{Getenv: noEnv, CrictlConfig: cfgMalformed, Candidates: candidates},
			wantErr: true, errNotIs: []error{ErrNoEndpoint, ErrBadEndpoint}, errContains: []string{"parse crictl config", cfgMalformed},
		},
		{
			name:    "unreadable crictl config is an error naming the file",
			opts:    ResolveOptions{Getenv: noEnv, CrictlConfig: cfgIsDir, Candidates: candidates},
			wantErr: true, errNotIs: []error{ErrNoEndpoint, ErrBadEndpoint}, errContains: []string{"read crictl config", cfgIsDir},
		},
		{
			name: "CRI_CONFIG_FILE names the crictl config",
			opts: ResolveOptions{Getenv: env("CRI_CONFIG_FILE", cfgViaEnv), Candidates: candidates},
			url:  "unix:///run/via-cri-config-file.sock", path: "/run/via-cri-config-file.sock", source: cfgViaEnv,
		},
		{
			name: "CrictlConfig option wins over CRI_CONFIG_FILE",
			opts: ResolveOptions{Getenv: env("CRI_CONFIG_FILE", cfgViaEnv), CrictlConfig: cfgWithEndpoint, Candidates: candidates},
			url:  "unix:///run/from-crictl.sock", path: "/run/from-crictl.sock", source: cfgWithEndpoint,
		},

		// Nothing found.
		{
			name:    "no socket among the candidates",
			opts:    ResolveOptions{Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: candidates[:3]},
			wantErr: true, errIs: ErrNoEndpoint, errContains: candidates[:3],
		},
		{
			name:    "empty candidate list is not the default list",
			opts:    ResolveOptions{Getenv: noEnv, CrictlConfig: cfgMissing, Candidates: []string{}},
			wantErr: true, errIs: ErrNoEndpoint, errNotIs: []error{ErrBadEndpoint},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ep, err := ResolveEndpoint(tc.opts)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("ResolveEndpoint: %v", err)
				}
				want := Endpoint{URL: tc.url, Path: tc.path, Source: tc.source}
				if ep != want {
					t.Fatalf("ResolveEndpoint = %+v, want %+v", ep, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ResolveEndpoint = %+v, want an error", ep)
			}
			if ep != (Endpoint{}) {
				t.Errorf("ResolveEndpoint returned %+v with its error", ep)
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("error %q is not %q", err, tc.errIs)
			}
			for _, not := range tc.errNotIs {
				if errors.Is(err, not) {
					t.Errorf("error %q is %q", err, not)
				}
			}
			for _, s := range tc.errContains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// TestDefaultEndpoints pins crictl v1.37's Linux autodetection order.
func TestDefaultEndpoints(t *testing.T) {
	t.Parallel()
	want := []string{"unix:///run/containerd/containerd.sock", "unix:///run/crio/crio.sock", "unix:///var/run/cri-dockerd.sock"}
	if strings.Join(DefaultEndpoints, " ") != strings.Join(want, " ") {
		t.Errorf("DefaultEndpoints = %v, want %v", DefaultEndpoints, want)
	}
}
