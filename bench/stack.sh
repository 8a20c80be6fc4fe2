#!/usr/bin/env bash
# `make bench-stack` (also part of `make bench`): one platform_stack of 300 objects (10 CRDs,
# 10 namespaces, 100 custom resources, 180 ConfigMaps) applied by terraform, against
# `kubectl apply --server-side` of the same YAML (CRDs and namespaces first, then
# `kubectl wait --for condition=established`, then the rest: kubectl cannot apply a custom
# resource before its CRD is served). Also the no-change plan (300 objects refreshed) and
# the teardown. Prints a Markdown table and writes it into bench/README.md between the
# `stack-results` markers (BENCH_NO_README=1 to skip). Knobs: BENCH_ROUNDS (3),
# BENCH_KEEP=1 (keep the work directory).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
testenv=${PLATFORM_TESTENV_DIR:-$HOME/.cache/terraform-provider-platform/testenv}
rounds=${BENCH_ROUNDS:-3}
log() { echo "bench-stack: [$(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench-stack: ERROR: $*" >&2; exit 1; }

[ -n "${TF_ACC_KUBE_BIN_DIR:-}" ] || { [ -f "$testenv/env.sh" ] || die "run 'make testenv' first"; source "$testenv/env.sh"; }
tf=$(command -v terraform || echo "$testenv/bin/terraform-1.0.3")
(cd "$root" && cargo build --quiet --release --bin terraform-provider-platform >&2)

work=$(mktemp -d "${TMPDIR:-/tmp}/tfpp-bench-stack.XXXXXX")
cleanup() {
  local rc=$?
  set +e
  bash "$root/scripts/local-cluster.sh" down "$work/cluster" >/dev/null 2>&1
  [ -n "${BENCH_KEEP:-}" ] && log "kept $work" || rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

kubeconfig=$(bash "$root/scripts/local-cluster.sh" up "$work/cluster")
export KUBECONFIG=$kubeconfig TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=$work/terraformrc
cat > "$work/terraformrc" <<RC
provider_installation {
  dev_overrides { "registry.terraform.io/platform/platform" = "$root/target/release" }
  direct {}
}
RC

# --- the 300 objects ------------------------------------------------------------------
python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
crds, rest = [], []
for i in range(10):
    crds.append(f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadget{i}s.bench.example.com
spec:
  group: bench.example.com
  names: {{kind: Gadget{i}, plural: gadget{i}s, singular: gadget{i}, listKind: Gadget{i}List}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}""")
    crds.append(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench-{i}")
for i in range(10):
    for j in range(10):
        rest.append(f"apiVersion: bench.example.com/v1\nkind: Gadget{i}\nmetadata:\n  name: g{j}\n  namespace: bench-{j}\nspec:\n  size: {j}\n  owner: team-{i}")
for n in range(180):
    rest.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{n}\n  namespace: bench-{n % 10}\ndata:\n  key: value-{n}\n  other: '{n * 7}'")
open(f"{work}/crds.yaml", "w").write("\n---\n".join(crds) + "\n")
open(f"{work}/rest.yaml", "w").write("\n---\n".join(rest) + "\n")
PY
mkdir -p "$work/tf"
cat > "$work/tf/main.tf" <<TF
terraform {
  required_providers {
    platform = { source = "platform/platform" }
  }
}
provider "platform" {}
resource "platform_stack" "bench" {
  name = "bench"
  component {
    name      = "crds"
    manifests = file("$work/crds.yaml")
  }
  component {
    name       = "objects"
    depends_on = ["crds"]
    manifests  = file("$work/rest.yaml")
  }
}
TF

results=$work/results.tsv
: > "$results"
tfw() { (cd "$work/tf" && "$tf" "$@" -no-color); }
plan_empty() { tfw plan -detailed-exitcode; }
crds=$(for i in $(seq 0 9); do echo "crd/gadget${i}s.bench.example.com"; done)
kubectl_apply() {
  kubectl apply --server-side -f "$work/crds.yaml" || return 1
  # shellcheck disable=SC2086
  kubectl wait --for condition=established --timeout=120s $crds || return 1
  kubectl apply --server-side -f "$work/rest.yaml"
}
kubectl_delete() {
  kubectl delete --wait -f "$work/rest.yaml" && kubectl delete --wait -f "$work/crds.yaml"
}

for round in $(seq "$rounds"); do
  log "round $round/$rounds: terraform ($("$tf" version | head -1))"
  timed "terraform apply (create 300)" tfw apply -auto-approve
  timed "terraform plan (no changes, 300 refreshed)" plan_empty
  timed "terraform destroy" tfw destroy -auto-approve
  log "round $round/$rounds: kubectl"
  timed "kubectl apply --server-side (CRDs, wait, rest)" kubectl_apply
  timed "kubectl delete --wait" kubectl_delete
done

table=$(median_table "$results" "step")
header="300 objects in one \`platform_stack\` ($("$tf" version | head -1), $(nproc) cores, $(date -u +%Y-%m-%d)):"
printf '%s\n\n%s\n' "$header" "$table"
if [ -z "${BENCH_NO_README:-}" ]; then
  write_readme_block "$root/bench/README.md" stack-results "Results: a 300-object stack" "$header" "$table"
  log "wrote the table into bench/README.md"
fi
