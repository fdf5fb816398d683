#!/usr/bin/env bash
# Check the deployment artefacts with their ecosystems' own tools, offline (scripts/test.sh
# runs it; the tools are built or installed into the tool cache once):
#   docker-compose.yml  loaded by compose-go, the loader of `docker compose config`
#                       (scripts/deploy/compose-check), strictly;
#   k8s/overlays/*      rendered by kustomize, every built-in object validated strictly
#                       against the Kubernetes schemas (kubernetes-validate --strict), the
#                       ServiceMonitor and PrometheusRule against the Prometheus Operator's
#                       CRDs (scripts/deploy/validate_crs.py), and scanned by kube-score with
#                       warnings failing; exceptions are annotations on the objects, each
#                       with its reason.
# Prints nothing but failures and one line per check.
source "$(dirname "$0")/lib.sh"

kustomize="$(go_tool kustomize-v5.8.1 sigs.k8s.io/kustomize/kustomize/v5@v5.8.1)/kustomize"
kube_score="$(go_tool kube-score-v1.20.0 github.com/zegl/kube-score/cmd/kube-score@v1.20.0)/kube-score"
operator=v0.85.0
crds="$(go_env go mod download -json "github.com/prometheus-operator/prometheus-operator@$operator" \
  | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/example/prometheus-operator-crd"
[[ -d "$crds" ]] || die "the Prometheus Operator's CRDs ($operator) could not be fetched"
python="$("$ROOT/scripts/install-python.sh")"

compose_check="$TOOLS_DIR/compose-check-$(cat "$ROOT"/scripts/deploy/compose-check/{go.mod,go.sum,main.go} | sha256sum | cut -c1-12)"
if [[ ! -x "$compose_check" ]]; then
  (cd "$ROOT/scripts/deploy/compose-check" && go_env go build -o "$compose_check" .) \
    || die "building scripts/deploy/compose-check failed"
fi
CONTINUITY_HASH_SECRET=checked-not-used "$compose_check" "$ROOT/docker-compose.yml" >/dev/null \
  || die "docker-compose.yml does not load (above)"
log "docker-compose.yml: valid"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for overlay in dev prod; do
  "$kustomize" build "$ROOT/k8s/overlays/$overlay" >"$out/$overlay.yaml" \
    || die "k8s/overlays/$overlay does not build (above)"
  "$(dirname "$python")/kubernetes-validate" --strict --quiet --no-warn "$out/$overlay.yaml" \
    || die "k8s/overlays/$overlay: objects invalid against the Kubernetes schemas (above)"
  "$python" "$ROOT/scripts/deploy/validate_crs.py" \
    "$crds/monitoring.coreos.com_servicemonitors.yaml" "$crds/monitoring.coreos.com_prometheusrules.yaml" \
    -- "$out/$overlay.yaml" >/dev/null || die "k8s/overlays/$overlay: custom resources invalid (above)"
  "$kube_score" score --output-format ci --exit-one-on-warning "$out/$overlay.yaml" \
    | grep -E '^\[(WARNING|CRITICAL)\]' && die "k8s/overlays/$overlay: hardening checks failed (above)"
  log "k8s/overlays/$overlay: $(grep -c '^kind:' "$out/$overlay.yaml") objects valid, hardening checks passed"
done
