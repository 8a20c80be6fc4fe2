#!/usr/bin/env bash
# `make bench-stack-plan`: how long `terraform plan` takes on a 1000-object platform_stack
# (10 namespaces and 990 ConfigMaps in two components) against the local control plane:
# a plan with no change (every object refreshed) and a plan after one changed value (the
# plan renders the stack, looks up every object and dry-runs it on the server, so that only
# that object's entry is unknown). Each provider build named in BENCH_PROVIDERS is measured
# the same way, so a change can be compared with the commit before it:
#   BENCH_PROVIDERS="after=target/release before=/path/to/other/target/release"
# (default: "current=target/release", built first). Prints a Markdown table and writes it
# into bench/README.md between the `stack-plan-results` markers (BENCH_NO_README=1 to skip).
# Knobs: BENCH_ROUNDS (3), BENCH_KEEP=1 (keep the work directory).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
testenv=${PLATFORM_TESTENV_DIR:-$HOME/.cache/terraform-provider-platform/testenv}
rounds=${BENCH_ROUNDS:-3}
providers=${BENCH_PROVIDERS:-current=$root/target/release}
log() { echo "bench-stack-plan: [$(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench-stack-plan: ERROR: $*" >&2; exit 1; }

[ -n "${TF_ACC_KUBE_BIN_DIR:-}" ] || { [ -f "$testenv/env.sh" ] || die "run 'make testenv' first"; source "$testenv/env.sh"; }
tf=$(command -v terraform || echo "$testenv/bin/terraform-1.0.3")
if [ -z "${BENCH_PROVIDERS:-}" ]; then
  (cd "$root" && cargo build --quiet --release --bin terraform-provider-platform >&2)
fi
for entry in $providers; do
  dir=${entry#*=}
  [ -x "$dir/terraform-provider-platform" ] || die "no terraform-provider-platform in $dir (BENCH_PROVIDERS entry $entry)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tfpp-bench-stack-plan.XXXXXX")
cleanup() {
  local rc=$?
  set +e
  bash "$root/scripts/local-cluster.sh" down "$work/cluster" >/dev/null 2>&1
  [ -n "${BENCH_KEEP:-}" ] && log "kept $work" || rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

kubeconfig=$(bash "$root/scripts/local-cluster.sh" up "$work/cluster")
export KUBECONFIG=$kubeconfig TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

# --- the 1000 objects (cm-0500's value is the one the second plan changes) ---------------
objects() { # value of cm-0500
  python3 - "$1" <<'PY'
import sys
docs = []
for n in range(990):
    value = sys.argv[1] if n == 500 else f"value-{n}"
    docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{n:04}\n  namespace: bench-plan-{n % 10}\ndata:\n  key: {value}\n  other: '{n * 7}'")
print("\n---\n".join(docs))
PY
}
python3 -c 'print("\n---\n".join(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench-plan-{i}" for i in range(10)))' > "$work/namespaces.yaml"
objects original > "$work/original.yaml"
objects changed > "$work/changed.yaml"
mkdir -p "$work/tf"
main_tf() { # configmaps file
  cat > "$work/tf/main.tf" <<TF
terraform {
  required_providers {
    platform = { source = "platform/platform" }
  }
}
provider "platform" {}
resource "platform_stack" "bench" {
  name = "bench-plan"
  component {
    name      = "namespaces"
    manifests = file("$work/namespaces.yaml")
  }
  component {
    name       = "configmaps"
    depends_on = ["namespaces"]
    manifests  = file("$1")
  }
}
TF
}

results=$work/results.tsv
: > "$results"
tfw() { (cd "$work/tf" && "$tf" "$@" -no-color); }

for entry in $providers; do
  label=${entry%%=*}
  dir=$(cd "${entry#*=}" && pwd)
  cat > "$work/terraformrc" <<RC
provider_installation {
  dev_overrides { "registry.terraform.io/platform/platform" = "$dir" }
  direct {}
}
RC
  export TF_CLI_CONFIG_FILE=$work/terraformrc
  log "$label: apply 1000 objects ($("$tf" version | head -1))"
  main_tf "$work/original.yaml"
  tfw apply -auto-approve > "$work/apply.log" 2>&1 || { tail -20 "$work/apply.log" >&2; die "apply failed"; }
  for round in $(seq "$rounds"); do
    log "$label: round $round/$rounds"
    main_tf "$work/original.yaml"
    timed "$label: plan, no change (1000 objects)" exits 0 tfw plan -detailed-exitcode
    main_tf "$work/changed.yaml"
    timed "$label: plan, one value changed" exits 2 tfw plan -detailed-exitcode
  done
  main_tf "$work/original.yaml"
  tfw destroy -auto-approve > "$work/destroy.log" 2>&1 || { tail -20 "$work/destroy.log" >&2; die "destroy failed"; }
done

table=$(median_table "$results" "provider: step")
header="\`terraform plan\` of a 1000-object \`platform_stack\` ($("$tf" version | head -1), $(nproc) cores, $(date -u +%Y-%m-%d)):"
printf '%s\n\n%s\n' "$header" "$table"
if [ -z "${BENCH_NO_README:-}" ]; then
  write_readme_block "$root/bench/README.md" stack-plan-results "Results: plans of a 1000-object stack" "$header" "$table"
  log "wrote the table into bench/README.md"
fi
