#!/bin/sh
# TEST STAND-IN for the k3s install script (get.k3s.io), served by the acceptance tests'
# harness (harness/k3s_standin.rs) for the node rig, where real k3s cannot be downloaded.
# NOT the real script. It keeps the host contract (/tmp/k3s/contract.md):
#   INSTALL_K3S_VERSION=<v> INSTALL_K3S_EXEC=server|agent [INSTALL_K3S_SKIP_DOWNLOAD=true] sh -s - < script
# "downloads" the stand-in k3s binary of <v> from the release directory baked in below (a
# version that does not exist: exit 1 with a message on stderr), or with skip-download uses
# the uploaded /usr/local/bin/k3s; writes the unit (k3s or k3s-agent), k3s-killall.sh,
# k3s-uninstall.sh / k3s-agent-uninstall.sh and the stand-in systemctl and journalctl; then
# enables and (re)starts the unit and exits 0 once it started (not necessarily Ready).
# Running it again with another version is an upgrade. Appends `install <version> <unit>` to
# /var/lib/rancher/k3s-standin/events.log.
set -e

RELEASE_DIR='@K3S_STANDIN_RELEASE_DIR@'
BIN_DIR=/usr/local/bin
UNIT_DIR=/etc/systemd/system

info() { echo "[INFO]  $*"; }
fatal() { echo "[ERROR]  $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fatal "the k3s install script (test stand-in) must run as root"

# INSTALL_K3S_EXEC: `server`, `agent` or flags (then: server, or agent when K3S_URL is set).
set -- ${INSTALL_K3S_EXEC:-}
case "${1:-}" in
  server|agent) CMD=$1 ;;
  *) if [ -n "${K3S_URL:-}" ]; then CMD=agent; else CMD=server; fi ;;
esac
if [ "$CMD" = agent ]; then SYSTEM_NAME=k3s-agent; UNINSTALL=k3s-agent-uninstall.sh; else SYSTEM_NAME=k3s; UNINSTALL=k3s-uninstall.sh; fi

mkdir -p "$BIN_DIR" "$UNIT_DIR" /etc/rancher/k3s /var/lib/rancher/k3s-standin

if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" = true ]; then
  [ -x "$BIN_DIR/k3s" ] || fatal "INSTALL_K3S_SKIP_DOWNLOAD=true but $BIN_DIR/k3s is missing or not executable"
  info "Skipping k3s download and verify"
else
  VERSION=${INSTALL_K3S_VERSION:-}
  [ -n "$VERSION" ] || fatal "INSTALL_K3S_VERSION is required (the test stand-in has no release channel)"
  release="$RELEASE_DIR/$VERSION"
  if [ ! -f "$release/k3s" ]; then
    fatal "Download failed: k3s release $VERSION not found (stand-in release dir $RELEASE_DIR has: $(ls "$RELEASE_DIR" 2>/dev/null | tr '\n' ' '))"
  fi
  info "Downloading binary $release/k3s"
  expected=$(sed -n 's/^\([0-9a-f]\{64\}\)[[:space:]]\{1,\}k3s$/\1/p' "$release/sha256sum-amd64.txt")
  cp "$release/k3s" "$BIN_DIR/.k3s.download"
  actual=$(sha256sum "$BIN_DIR/.k3s.download" | cut -d ' ' -f 1)
  if [ "$expected" != "$actual" ]; then
    rm -f "$BIN_DIR/.k3s.download"
    fatal "Download sha256 does not match $expected, got $actual"
  fi
  info "Installing k3s to $BIN_DIR/k3s"
  chmod 755 "$BIN_DIR/.k3s.download"
  mv -f "$BIN_DIR/.k3s.download" "$BIN_DIR/k3s"
fi
INSTALLED=$("$BIN_DIR/k3s" --version | head -n 1 | cut -d ' ' -f 3)
[ -n "$INSTALLED" ] || fatal "$BIN_DIR/k3s --version printed no version"

write() { # write <path> <mode>: stdin to path, atomically
  cat > "$1.tmp.$$"
  chmod "$2" "$1.tmp.$$"
  mv -f "$1.tmp.$$" "$1"
}

info "Creating $BIN_DIR/systemctl and $BIN_DIR/journalctl (stand-ins: the node rig has no systemd)"
write "$BIN_DIR/systemctl" 755 <<'K3S_STANDIN_EOF'
@SYSTEMCTL_STANDIN@
K3S_STANDIN_EOF
write "$BIN_DIR/journalctl" 755 <<'K3S_STANDIN_EOF'
@JOURNALCTL_STANDIN@
K3S_STANDIN_EOF
info "Creating killall script $BIN_DIR/k3s-killall.sh"
write "$BIN_DIR/k3s-killall.sh" 755 <<'K3S_STANDIN_EOF'
@KILLALL_STANDIN@
K3S_STANDIN_EOF
info "Creating uninstall script $BIN_DIR/$UNINSTALL"
write "$BIN_DIR/$UNINSTALL" 755 <<'K3S_STANDIN_EOF'
@UNINSTALL_STANDIN@
K3S_STANDIN_EOF
info "systemd: Creating service file $UNIT_DIR/$SYSTEM_NAME.service"
write "$UNIT_DIR/$SYSTEM_NAME.service" 644 <<K3S_STANDIN_EOF
[Unit]
Description=Lightweight Kubernetes (k3s test stand-in)
[Service]
Type=notify
ExecStart=$BIN_DIR/k3s $CMD
[Install]
WantedBy=multi-user.target
K3S_STANDIN_EOF
: > "$UNIT_DIR/$SYSTEM_NAME.service.env"
chmod 600 "$UNIT_DIR/$SYSTEM_NAME.service.env"

echo "$(date +%s%3N) install $INSTALLED $SYSTEM_NAME" >> /var/lib/rancher/k3s-standin/events.log
"$BIN_DIR/systemctl" daemon-reload
info "systemd: Enabling $SYSTEM_NAME unit"
"$BIN_DIR/systemctl" enable "$SYSTEM_NAME"
info "systemd: Starting $SYSTEM_NAME"
"$BIN_DIR/systemctl" restart "$SYSTEM_NAME"
