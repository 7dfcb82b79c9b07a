#!/usr/bin/env bash
# test.sh: run every imagefs test, unit and integration, on this machine.
# Installs what the tests need (scripts/install-deps.sh), then vets and runs
# `go test -tags integration ./...`. The integration tests mount loop
# filesystems and start private containerd instances themselves, stop them
# by PID and unmount what they mounted, even when a test fails.
# Needs root. Under CI=true an integration test that cannot start its
# runtime fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

bash scripts/install-deps.sh

echo "== go vet"
go vet ./...
go vet -tags integration ./...

echo "== go test (unit + integration)"
# -p 2: integration packages each start their own containerd; two at once
# fit this 2-core machine.
go test -tags integration -count=1 -p 2 -timeout 40m ./... "$@"
