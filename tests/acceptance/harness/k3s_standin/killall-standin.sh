#!/bin/sh
# TEST STAND-IN for k3s-killall.sh (acceptance tests' node rig). NOT the real script: it stops
# every k3s unit with the stand-in systemctl and kills what is left of their process groups.
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
for unit in /etc/systemd/system/k3s*.service; do
  [ -s "$unit" ] && /usr/local/bin/systemctl stop "$(basename "$unit" .service)"
done
for pidfile in /run/k3s-standin/*.pid; do
  [ -f "$pidfile" ] || continue
  kill -s KILL -- "-$(cat "$pidfile")" 2>/dev/null
  rm -f "$pidfile"
done
exit 0
