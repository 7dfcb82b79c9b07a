#!/usr/bin/env bash
# install-deps.sh: install everything imagefs's tests and demo need on a Debian
# bookworm machine, idempotently. Nothing is started here: the tests and the demo
# start their own private containerd instances and stop them by PID.
#
# Installs (only what is missing):
#   Debian: containerd (1.6) + runc, mkfs tools for ext4/xfs/btrfs, skopeo, umoci,
#           docker-registry (local registry on 127.0.0.1), gdu (benchmark peer),
#           busybox-static (pause image for pod tests), prometheus (for promtool:
#           metrics lint and alert-rule unit tests; its service is not started)
#   Go:     crictl v1.37.0 (independent CRI client used as a test oracle),
#           containerd, ctr and containerd-shim-runc-v2 v2.4.2 built from their Go
#           module (containerd 2.x as production nodes run it), under
#           /usr/local/libexec/imagefs/containerd-v2.4.2
set -euo pipefail

CONTAINERD2_VERSION=v2.4.2
CRICTL_VERSION=v1.37.0
CONTAINERD2_DIR=/usr/local/libexec/imagefs/containerd-${CONTAINERD2_VERSION}

log() { printf 'install-deps: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
	log "must run as root (it installs Debian packages); re-run with sudo"
	exit 1
fi

apt_packages=(containerd runc xfsprogs btrfs-progs e2fsprogs skopeo umoci docker-registry gdu busybox-static util-linux prometheus)
missing=()
for p in "${apt_packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "apt-get install ${missing[*]}"
	# Debian's policy-rc.d convention: exit 101 forbids package scripts to
	# start services (containerd, prometheus, docker-registry); the tests
	# start private instances themselves.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	export PATH=$PATH:/usr/local/go/bin
fi

if [ ! -x /usr/local/bin/crictl ]; then
	log "building crictl ${CRICTL_VERSION} from its Go module"
	GOBIN=/usr/local/bin go install sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}
fi

# The 2.x shim too: Debian's 1.6 shim cannot run pods for containerd 2.x.
if [ ! -x "${CONTAINERD2_DIR}/containerd" ] || [ ! -x "${CONTAINERD2_DIR}/ctr" ] || [ ! -x "${CONTAINERD2_DIR}/containerd-shim-runc-v2" ]; then
	log "building containerd, ctr and containerd-shim-runc-v2 ${CONTAINERD2_VERSION} from their Go module (about a minute)"
	mkdir -p "${CONTAINERD2_DIR}"
	GOFLAGS=-tags=no_btrfs GOBIN="${CONTAINERD2_DIR}" go install \
		github.com/containerd/containerd/v2/cmd/containerd@${CONTAINERD2_VERSION} \
		github.com/containerd/containerd/v2/cmd/ctr@${CONTAINERD2_VERSION} \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@${CONTAINERD2_VERSION}
fi
log "ready: containerd $(containerd --version | awk '{print $3}'), ${CONTAINERD2_DIR}/containerd $("${CONTAINERD2_DIR}/containerd" --version | awk '{print $3}'), crictl ${CRICTL_VERSION}"
