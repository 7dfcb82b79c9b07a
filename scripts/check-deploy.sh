#!/usr/bin/env bash
# check-deploy.sh: validate deploy/ beyond what go test ./deploy does offline:
# promtool on the alert rules and their unit tests, and a kustomize build of
# every kustomization (with the live-compare component enabled once) when
# kustomize or kubectl is installed. Needs promtool (Debian: prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== promtool"
promtool check rules deploy/prometheus/rules.yaml
promtool test rules deploy/prometheus/rules_test.yaml

echo "== go test ./deploy ./pkg/exporter"
go test -count=1 ./deploy/ ./pkg/exporter/

if command -v kustomize >/dev/null; then
	build() { kustomize build "$1"; }
elif command -v kubectl >/dev/null; then
	build() { kubectl kustomize "$1"; }
else
	echo "== kustomize: not installed, skipping the builds"
	exit 0
fi
echo "== kustomize build"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r deploy "$tmp/deploy"
sed -i 's/^# components:/components:/; s/^#   - live-compare/  - live-compare/' "$tmp/deploy/kustomization.yaml"
for d in deploy deploy/monitoring "$tmp/deploy"; do
	printf '%s: ' "$d"
	build "$d" | grep -c '^kind:' | tr -d '\n'
	echo " objects"
done
