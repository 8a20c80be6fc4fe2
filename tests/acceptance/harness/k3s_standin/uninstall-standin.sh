#!/bin/sh
# TEST STAND-IN for k3s-uninstall.sh / k3s-agent-uninstall.sh (acceptance tests' node rig).
# NOT the real script. Keeps the contract: a server first leaves the embedded etcd cluster
# (member remove while its etcd still runs, so the other members keep quorum), then the
# service is stopped and /usr/local/bin/k3s*, /etc/rancher/k3s and /var/lib/rancher/k3s are
# removed. The unit is taken from the script's name. Appends `uninstall <unit>` to the
# stand-in's event log (/var/lib/rancher/k3s-standin/events.log, which is kept).
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
case "$(basename "$0")" in
  k3s-agent-uninstall.sh) svc=k3s-agent ;;
  *) svc=k3s ;;
esac
if [ "$svc" = k3s ] && [ -x /usr/local/bin/k3s ]; then
  /usr/local/bin/k3s standin-etcd-leave >>/var/log/k3s-standin/k3s.log 2>&1 || true
fi
/usr/local/bin/systemctl stop "$svc"
/usr/local/bin/systemctl disable "$svc"
rm -f "/etc/systemd/system/$svc.service" "/etc/systemd/system/$svc.service.env"
rm -f "/run/k3s-standin/$svc".* /run/k3s-standin/etcd-left
mkdir -p /var/lib/rancher/k3s-standin
echo "$(date +%s%3N) uninstall $svc" >> /var/lib/rancher/k3s-standin/events.log
rm -f "$0"
if ls /etc/systemd/system/k3s*.service >/dev/null 2>&1; then
  echo "Additional k3s services installed, skipping uninstall of k3s"
  exit 0
fi
/usr/local/bin/k3s-killall.sh
rm -rf /etc/rancher/k3s /run/k3s /var/lib/rancher/k3s /var/lib/kubelet
rm -f /usr/local/bin/k3s /usr/local/bin/k3s-killall.sh /usr/local/bin/k3s-uninstall.sh \
  /usr/local/bin/k3s-agent-uninstall.sh
exit 0
