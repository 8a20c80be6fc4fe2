#!/usr/bin/env bash
# `make demo`: start a local control plane, apply examples/quickstart with the freshly
# built provider, and show what it made. `make demo-down` (or `demo.sh down`) cleans up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
demo=$root/.demo

if [ "${1:-}" = down ]; then
  if [ -f "$demo/work/terraform.tfstate" ] && [ -f "$demo/cluster/kubeconfig" ]; then
    (cd "$demo/work" && TF_CLI_CONFIG_FILE="$demo/terraformrc" KUBECONFIG="$demo/cluster/kubeconfig" \
      "${TERRAFORM:-terraform}" destroy -auto-approve -input=false -no-color >/dev/null) || true
  fi
  bash "$root/scripts/local-cluster.sh" down "$demo/cluster"
  rm -rf "$demo"
  echo "demo cleaned up"
  exit 0
fi

terraform_bin=${TERRAFORM:-$(command -v terraform || true)}
if [ -z "$terraform_bin" ]; then
  terraform_bin=$(echo "${TF_ACC_TERRAFORM_PATHS:-}" | cut -d: -f1)
fi
[ -n "$terraform_bin" ] || { echo "no terraform found; run make testenv" >&2; exit 1; }

bash "$root/scripts/local-cluster.sh" down "$demo/cluster" >/dev/null 2>&1 || true
mkdir -p "$demo/work"
echo "==> starting a local control plane (etcd, kube-apiserver, kube-controller-manager on 127.0.0.1)"
kubeconfig=$(bash "$root/scripts/local-cluster.sh" up "$demo/cluster")
export KUBECONFIG=$kubeconfig

cat > "$demo/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/platform/platform" = "$root/target/release"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE=$demo/terraformrc TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
cp "$root/examples/quickstart/main.tf" "$demo/work/main.tf"
cd "$demo/work"

echo "==> $("$terraform_bin" version | head -1): apply examples/quickstart"
"$terraform_bin" apply -auto-approve -input=false -no-color 2>&1 | grep -v -e "Provider development overrides" -e "^│" -e "^╷" -e "^╵" || true
echo
echo "==> a second plan changes nothing:"
set +e
"$terraform_bin" plan -detailed-exitcode -input=false -no-color >/dev/null 2>&1
code=$?
set -e
[ "$code" = 0 ] && echo "    no changes" || { echo "    unexpected plan exit code $code" >&2; exit 1; }
echo
echo "==> the namespaces in the cluster:"
kubectl get namespaces -L app.kubernetes.io/part-of -L environment -L platform/area
echo
echo "==> the stack's custom resources (their CRD was created in the same apply):"
kubectl get backuppolicies.platform.example.com -A -L platform.terraform.io/stack
echo
echo "==> the stack's inventory in state:"
"$terraform_bin" state show -no-color platform_stack.backups | sed -n '/objects/,/}/p'
echo
echo "The control plane keeps running: try 'KUBECONFIG=$kubeconfig kubectl get ns', or edit"
echo "$demo/work/main.tf and run terraform there (TF_CLI_CONFIG_FILE=$demo/terraformrc)."
echo "Clean up with: make demo-down"
