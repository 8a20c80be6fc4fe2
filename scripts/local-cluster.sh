#!/usr/bin/env bash
# A throwaway Kubernetes control plane on loopback: etcd + kube-apiserver +
# kube-controller-manager, for `make demo` and the benchmarks.
#
#   scripts/local-cluster.sh up DIR     start it; writes DIR/kubeconfig, prints its path
#   scripts/local-cluster.sh down DIR   stop it and delete DIR
#
# Binaries come from TF_ACC_KUBE_BIN_DIR (see scripts/testenv.sh). Everything listens on
# 127.0.0.1 only, on free ports.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 up|down DIR" >&2; exit 2; }

bin_dir=${TF_ACC_KUBE_BIN_DIR:-${PLATFORM_TESTENV_DIR:-$HOME/.cache/terraform-provider-platform/testenv}/bin}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

stop() {
  for name in kube-controller-manager kube-apiserver etcd; do
    if [ -f "$dir/$name.pid" ]; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
    fi
  done
  sleep 1
  for name in kube-controller-manager kube-apiserver etcd; do
    if [ -f "$dir/$name.pid" ]; then
      kill -9 "$(cat "$dir/$name.pid")" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

case "$cmd" in
down)
  [ -d "$dir" ] || exit 0
  stop
  rm -rf "$dir"
  exit 0
  ;;
up) ;;
*) echo "usage: $0 up|down DIR" >&2; exit 2 ;;
esac

for b in etcd kube-apiserver kube-controller-manager; do
  [ -x "$bin_dir/$b" ] || { echo "missing $bin_dir/$b: run scripts/testenv.sh (or make testenv) first" >&2; exit 1; }
done

mkdir -p "$dir/pki" "$dir/etcd"
pki=$dir/pki
# CA, API server certificate for 127.0.0.1/localhost, and the service-account key pair.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=local-cluster-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$pki/apiserver.ext"
openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
  -days 2 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
token=$(openssl rand -hex 24)
echo "$token,admin,admin,system:masters" > "$pki/tokens.csv"

etcd_client=$(free_port); etcd_peer=$(free_port); api_port=$(free_port)

"$bin_dir/etcd" --name local --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "local=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync \
  > "$dir/etcd.log" 2>&1 &
echo $! > "$dir/etcd.pid"

"$bin_dir/kube-apiserver" --bind-address=127.0.0.1 --insecure-port=0 --advertise-address=127.0.0.1 --secure-port="$api_port" \
  --etcd-servers="http://127.0.0.1:$etcd_client" \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" --client-ca-file="$pki/ca.crt" \
  --token-auth-file="$pki/tokens.csv" --authorization-mode=RBAC \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range=10.0.0.0/24 \
  --enable-admission-plugins=NamespaceLifecycle,ServiceAccount --disable-admission-plugins=StorageObjectInUseProtection \
  > "$dir/kube-apiserver.log" 2>&1 &
echo $! > "$dir/kube-apiserver.pid"

cat > "$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 < "$pki/ca.crt")
users:
- name: admin
  user:
    token: $token
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
KUBECONFIG

ready=
for _ in $(seq 1 120); do
  if kubectl --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "kube-apiserver did not become ready; log tail:" >&2; tail -20 "$dir/kube-apiserver.log" >&2; stop; exit 1; }

"$bin_dir/kube-controller-manager" --kubeconfig="$dir/kubeconfig" --bind-address=127.0.0.1 --secure-port=0 --port=0 \
  --leader-elect=false --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --use-service-account-credentials=false --controllers='*' \
  > "$dir/kube-controller-manager.log" 2>&1 &
echo $! > "$dir/kube-controller-manager.pid"

for _ in $(seq 1 60); do
  kubectl --kubeconfig "$dir/kubeconfig" get namespace default >/dev/null 2>&1 && break
  sleep 0.5
done
echo "$dir/kubeconfig"
