#!/usr/bin/env bash
# demo.sh: build imagefs and show what it reports on this machine.
#
# If a container runtime answers on one of the usual sockets (or
# $CONTAINER_RUNTIME_ENDPOINT), imagefs runs against it, read-only.
# Otherwise (or with IMAGEFS_DEMO_LAB=1) it starts a throwaway containerd
# with its root on a loop-mounted filesystem (FS=ext4|xfs|btrfs|tmpfs,
# default ext4), imports a few images built offline, runs imagefs against
# it and tears everything down on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

bash scripts/install-deps.sh
mkdir -p bin
go build -o bin/imagefs ./cmd/imagefs
go build -o bin/imagefs-lab ./cmd/imagefs-lab

run() { printf '\n$ %s\n' "$*"; "$@" || printf '(exit code %d)\n' "$?"; }

root_dir=/var/lib/kubelet
if [ "${IMAGEFS_DEMO_LAB:-0}" != 1 ] && bin/imagefs stats >/dev/null 2>&1; then
	echo "demo: a container runtime answers on this machine; imagefs only reads it"
	[ -d "$root_dir" ] || root_dir=/
else
	dir=$(mktemp -d /tmp/imagefs-demo.XXXXXX)
	trap 'bin/imagefs-lab down --dir "$dir"' EXIT
	echo "demo: no runtime found (or IMAGEFS_DEMO_LAB=1): starting a throwaway containerd on ${FS:-ext4} under $dir"
	eval "$(bin/imagefs-lab up --dir "$dir" --fs "${FS:-ext4}")"
	mkdir -p "$dir/kubelet"
	root_dir=$dir/kubelet
fi

run bin/imagefs stats --root-dir "$root_dir"
run bin/imagefs stats --root-dir "$root_dir" --bytes
run bin/imagefs stats --root-dir "$root_dir" -o json
run bin/imagefs explain imagefs --root-dir "$root_dir"
run bin/imagefs doctor --root-dir "$root_dir"
run bin/imagefs pressure --root-dir "$root_dir"
run bin/imagefs gc --dry-run --force --root-dir "$root_dir"
run bin/imagefs images --root-dir "$root_dir"
if [ -n "${IMAGEFS_LAB_SNAPSHOTTER_DIR:-}" ]; then
	run bin/imagefs du "$IMAGEFS_LAB_SNAPSHOTTER_DIR/snapshots"
fi
