#!/usr/bin/env bash
# `make bench-k3s` (also part of `make bench`): platform_k3s_cluster on the acceptance tests'
# node rig (hosts in network namespaces with their own sshd) with the k3s stand-in (real etcd
# and kube-apiserver on the servers). Per round, on a fresh rig of 5 hosts: bootstrap of
# 3 servers + 2 agents (one terraform apply), the no-change plan, the upgrade
# v1.29.1+k3s2 -> v1.29.4+k3s1, destroy. The applies' split (SSH, waiting for Ready, the rest)
# comes from the provider's `k3s rollout finished` log line. The benchmark itself is
# bench/k3s.rs, run by `cargo bench --bench k3s` (release build: target/release, never the
# debug provider the acceptance tests use). Prints a Markdown table and writes it into
# bench/README.md between the `k3s-results` markers (BENCH_NO_README=1 to skip).
# Knobs: BENCH_ROUNDS (1), TF_ACC_KEEP=1 (keep the rig's and terraform's temp dirs).
# Needs root (the rig makes network namespaces).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
testenv=${PLATFORM_TESTENV_DIR:-$HOME/.cache/terraform-provider-platform/testenv}
log() { echo "bench-k3s: [$(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench-k3s: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "the node rig needs root (network namespaces)"
[ -n "${TF_ACC_KUBE_BIN_DIR:-}" ] || { [ -f "$testenv/env.sh" ] || die "run 'make testenv' first"; source "$testenv/env.sh"; }
log "cargo bench --bench k3s (builds the release provider and the benchmark first)"
cd "$root" && exec cargo bench --locked --quiet --bench k3s
