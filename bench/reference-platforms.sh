#!/usr/bin/env bash
# `make bench-reference-platforms`: the reference platforms of examples/.
# - The first plan of each (k3s-ha-platform is the largest: 23 resources, among them 10
#   stacks), from an empty state with the cluster connection unknown, as a user's first
#   `terraform plan` is. Nothing is contacted: the examples' hosts and servers are loopback
#   addresses the plan never dials.
# - For all four: apply, the second plan and destroy, by their acceptance tests (see below).
# Wall time (median of BENCH_RUNS, default 5) and the provider's peak RSS over its processes
# (GNU time -v around the release binary). Prints Markdown tables and writes them into
# bench/README.md between the `reference-platforms-results` markers (BENCH_NO_README=1 to
# skip). BENCH_KEEP=1 keeps the work directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
testenv=${PLATFORM_TESTENV_DIR:-$HOME/.cache/terraform-provider-platform/testenv}
runs=${BENCH_RUNS:-5}
log() { echo "bench-reference-platforms: [$(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench-reference-platforms: ERROR: $*" >&2; exit 1; }

[ -n "${TF_ACC_SOPS:-}" ] || { [ -f "$testenv/env.sh" ] || die "run 'make testenv' first"; source "$testenv/env.sh"; }
gnu_time=$(/usr/bin/time -v true 2>&1 || true)
[[ $gnu_time == *"Maximum resident set size"* ]] || die "/usr/bin/time is not GNU time (apt-get install time)"
for tool in ssh-keygen age-keygen "$TF_ACC_SOPS"; do command -v "$tool" >/dev/null || die "$tool is missing"; done
tf=$(command -v terraform) || die "no terraform on PATH"
(cd "$root" && cargo build --quiet --release --bin terraform-provider-platform >&2)
provider=$root/target/release/terraform-provider-platform

work=$(mktemp -d "${TMPDIR:-/tmp}/tfpp-bench-ref.XXXXXX")
cleanup() {
  local rc=$?
  [ -n "${BENCH_KEEP:-}" ] && log "kept $work" || rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
results=$work/results.tsv
: > "$results"

# Plain: dev_overrides to the release binary. RSS: the binary under GNU time, each provider
# process writing its report into $BENCH_RSS_DIR.
mkdir -p "$work/providers/plain" "$work/providers/rss"
ln -s "$provider" "$work/providers/plain/terraform-provider-platform"
printf '#!/bin/sh\nexec /usr/bin/time -v -o "${BENCH_RSS_DIR:?}/$$.txt" "%s" "$@"\n' "$provider" \
  > "$work/providers/rss/terraform-provider-platform"
chmod +x "$work/providers/rss/terraform-provider-platform"
for kind in plain rss; do
  cat > "$work/terraformrc-$kind" <<RC
provider_installation {
  dev_overrides { "registry.terraform.io/platform/platform" = "$work/providers/$kind" }
  direct {}
}
RC
done
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

# Inputs the examples' plan-only variables name (tests/acceptance/fixtures/examples/plan-only,
# shared with the acceptance tests): keys, host keys, a SOPS file, a kubeconfig of a loopback
# address nobody listens on (a plan with the connection unknown never dials it).
ssh-keygen -q -t ed25519 -N '' -f "$work/id_ed25519"
read -r key_type key_data _ < "$work/id_ed25519.pub"
for h in 11 12 13 21 22 23 24; do echo "127.0.0.$h $key_type $key_data"; done > "$work/known_hosts"
age-keygen -o "$work/age.txt" 2>/dev/null
recipient=$(sed -n 's/^# public key: //p' "$work/age.txt")
printf 'DATABASE_PASSWORD: bench\n' > "$work/plain.yaml"
"$TF_ACC_SOPS" encrypt --age "$recipient" --input-type yaml --output-type yaml "$work/plain.yaml" > "$work/secrets.sops.yaml"
rm -f "$work/plain.yaml"
cluster_url=https://127.0.0.1:9
cat > "$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$cluster_url", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: bench}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
KC

variables() {
  sed -e "s#@CLUSTER_URL@#$cluster_url#" -e "s#@KUBECONFIG@#$work/kubeconfig#" \
    -e "s#@SSH_PRIVATE_KEY@#$work/id_ed25519#" -e "s#@KNOWN_HOSTS@#$work/known_hosts#" \
    -e "s#@AGE_KEY_FILE@#$work/age.txt#" -e "s#@APP_SECRETS_FILE@#$work/secrets.sops.yaml#" \
    "$root/tests/acceptance/fixtures/examples/plan-only/$1.tfvars"
}

rss_rows=""
for example in k3s-ha-platform talos-homelab flux-homelab gitops-baseline; do
  dir=$work/$example
  mkdir -p "$dir"
  cp "$root/examples/$example"/*.tf "$dir/"
  cp -r "$root/modules" "$dir/modules"
  sed -i 's#"../../modules/#"./modules/#' "$dir"/*.tf
  variables "$example" > "$dir/bench.tfvars"
  (cd "$dir" && TF_CLI_CONFIG_FILE=$work/terraformrc-plain "$tf" get -no-color > /dev/null)
  resources=$(cd "$dir" && TF_CLI_CONFIG_FILE=$work/terraformrc-plain "$tf" plan -input=false -no-color -var-file=bench.tfvars \
    | sed -n 's/^Plan: \([0-9]*\) to add.*/\1/p')
  [ -n "$resources" ] || die "$example does not plan"
  log "$example: $resources resources, $runs plans"
  for _ in $(seq "$runs"); do
    TF_CLI_CONFIG_FILE=$work/terraformrc-plain timed "$example ($resources resources)" \
      bash -c "cd '$dir' && '$tf' plan -input=false -no-color -var-file=bench.tfvars -out=plan.out"
  done
  mkdir -p "$work/rss-$example"
  (cd "$dir" && TF_CLI_CONFIG_FILE=$work/terraformrc-rss BENCH_RSS_DIR=$work/rss-$example \
    "$tf" plan -input=false -no-color -var-file=bench.tfvars > "$work/rss-$example.log" 2>&1) || die "$example: plan under GNU time failed"
  rss=$(peak_rss_in "$work/rss-$example")
  rss_rows+="| $example | $(( rss / 1024 )) |"$'\n'
done

# --- Apply, with the stand-ins of the acceptance tests -----------------------------------
# Each example is applied, planned again and destroyed by its acceptance test
# (tests/acceptance/reference_platforms_apply.rs: the local control plane, the Flux, Velero,
# VolSync and Sealed Secrets stand-ins, BIND; tests/acceptance/reference_platform_k3s.rs: the
# k3s stand-in on seven rig hosts, installed over SSH, with the Flux, Velero and Cloudflare
# stand-ins), with the release binary under GNU time in place of the debug one
# (TF_ACC_PROVIDER_DIR). The times are Terraform's commands as the harness logs them; setup
# is not counted. k3s-ha-platform's apply includes making the cluster.
apply_results=$work/apply.tsv
: > "$apply_results"
apply_rss_rows=""
for example in k3s-ha-platform gitops-baseline flux-homelab talos-homelab; do
  case $example in
    k3s-ha-platform) test_name="reference_platform_k3s::k3s_ha_platform_applies_on_the_k3s_standin_with_standins_plans_empty_and_destroys_clean" ;;
    *) test_name="reference_platforms_apply::${example//-/_}_applies_with_standins_plans_empty_and_destroys_clean" ;;
  esac
  for r in $(seq "$runs"); do
    rss_dir=$work/rss-apply-$example-$r
    mkdir -p "$rss_dir"
    log "$example: apply run $r of $runs"
    (cd "$root" && TF_ACC_PROVIDER_DIR=$work/providers/rss BENCH_RSS_DIR=$rss_dir TF_ACC_TERRAFORM_PATHS=$tf \
      cargo test --quiet --test acceptance -- --exact "$test_name" --nocapture > "$work/apply-$example-$r.log" 2>&1) \
      || { tail -30 "$work/apply-$example-$r.log" >&2; die "$example: the apply test failed"; }
    # The example's own commands come after its `terraform get` (the harness may run others
    # first, such as its one-off check of a stack without Flux).
    awk -v ex="$example" '
      /^acceptance: `[^ `]*terraform[^ `]* get / { started = 1 }
      started && /^acceptance: `[^ `]*terraform[^ `]* (apply|plan|destroy) / && / in [0-9.]+(ms|s)$/ {
        split($0, words, " "); cmd = words[3]
        if (cmd == "plan" && seen_plan++) next
        t = $NF; if (t ~ /ms$/) { sub(/ms$/, "", t); t = t / 1000 } else sub(/s$/, "", t)
        printf "%s: %s\t%s\n", ex, cmd, t
      }' "$work/apply-$example-$r.log" >> "$apply_results"
  done
  rss=$(peak_rss_in "$work/rss-apply-$example-"*)
  apply_rss_rows+="| $example | $(( rss / 1024 )) |"$'\n'
done

table=$(median_table "$results" "first plan, connection unknown ($(basename "$tf") $(TF_CLI_CONFIG_FILE=$work/terraformrc-plain "$tf" version | head -1 | cut -d" " -f2))")
rss_table=$(printf '| example | provider peak RSS during the first plan (MiB) |\n|---|---:|\n%s' "$rss_rows")
apply_table=$(median_table "$apply_results" "with the stand-ins (terraform command)")
apply_rss_table=$(printf '| example | provider peak RSS over apply, plan and destroy (MiB) |\n|---|---:|\n%s' "$apply_rss_rows")
all="$table

$rss_table

$apply_table

$apply_rss_table"
echo "$all"
if [ -z "${BENCH_NO_README:-}" ]; then
  write_readme_block "$root/bench/README.md" reference-platforms-results "Reference platforms" \
    "Measured $(date -u +%Y-%m-%d) on $(nproc) cores; \`make bench-reference-platforms\`. Apply rows are Terraform's commands in the acceptance tests (tests/acceptance/reference_platforms_apply.rs, reference_platform_k3s.rs), with the stand-ins (k3s-ha-platform's apply makes its cluster of seven k3s stand-in nodes over SSH); \`plan\` is the second plan after the apply, which must be empty." "$all"
fi
