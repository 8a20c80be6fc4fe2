#!/bin/sh
# TEST STAND-IN for journalctl, installed by the k3s stand-in's install script on the
# acceptance tests' node rig (no systemd, no journald). NOT journald. It keeps what the k3s
# host contract uses: `journalctl -u <unit> -n N --no-pager` prints the last N lines of the
# unit's log, /var/log/k3s-standin/<unit>.log, written by the stand-in systemctl.

LOGDIR=/var/log/k3s-standin
unit=
lines=10
want=
for arg in "$@"; do
  if [ -n "$want" ]; then
    case "$want" in u) unit=${arg%.service} ;; n) lines=$arg ;; esac
    want=
    continue
  fi
  case "$arg" in
    --unit=*) unit=${arg#--unit=}; unit=${unit%.service} ;;
    --lines=*) lines=${arg#--lines=} ;;
    -u|--unit|-*u) want=u ;;
    -n|--lines) want=n ;;
    -n*) lines=${arg#-n} ;;
    *) ;;
  esac
done
[ "$lines" = all ] && lines=100000000
if [ -z "$unit" ]; then
  set -- "$LOGDIR"/*.log
else
  set -- "$LOGDIR/$unit.log"
fi
if [ ! -f "$1" ]; then
  echo "-- No entries --"
  exit 0
fi
cat "$@" | tail -n "$lines"
