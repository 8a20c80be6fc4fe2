#!/bin/sh
# TEST STAND-IN for systemctl, installed by the k3s stand-in's install script on the
# acceptance tests' node rig (which has no systemd). NOT systemd. It keeps the verbs of the
# k3s host contract for the units k3s and k3s-agent: is-active (prints active|inactive|failed,
# exit 0 only if active), start, stop, restart, enable, disable, is-enabled, daemon-reload,
# status. A unit is /etc/systemd/system/<unit>.service; its ExecStart runs detached (setsid)
# with its output appended to /var/log/k3s-standin/<unit>.log (what journalctl shows) and its
# pid in /run/k3s-standin/<unit>.pid. `start` waits, like systemd's Type=notify, until the
# service reports it started (/run/k3s-standin/<unit>.started) or exits (then: failed, exit 1).
# `stop` sends SIGTERM, waits up to 30 s, then kills the whole process group.

RUN=/run/k3s-standin
LOGDIR=/var/log/k3s-standin
UNITDIR=/etc/systemd/system

pid_of() { cat "$RUN/$1.pid" 2>/dev/null; }

alive() {
  p=$(pid_of "$1")
  [ -n "$p" ] || return 1
  kill -0 "$p" 2>/dev/null || return 1
  # a zombie is not a running service
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$p/status" 2>/dev/null)
  [ "$state" != Z ]
}

state() {
  if alive "$1"; then echo active
  elif [ -f "$RUN/$1.failed" ] || [ -f "$RUN/$1.pid" ]; then echo failed
  else echo inactive
  fi
}

start() {
  svc=$1
  alive "$svc" && return 0
  unit="$UNITDIR/$svc.service"
  if [ ! -f "$unit" ]; then
    echo "Failed to start $svc.service: Unit $svc.service not found." >&2
    return 5
  fi
  exec_line=$(sed -n 's/^ExecStart=//p' "$unit" | head -n 1)
  mkdir -p "$RUN" "$LOGDIR"
  rm -f "$RUN/$svc.started" "$RUN/$svc.failed" "$RUN/$svc.pid" "$RUN/etcd-left"
  # A clean environment, as systemd gives its services: nothing of the caller's session (an
  # SSH client's markers included) reaches the service.
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    K3S_STANDIN_SERVICE=$svc setsid -f sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$RUN/$svc.pid" $exec_line \
    </dev/null >>"$LOGDIR/$svc.log" 2>&1
  i=0
  while [ "$i" -lt 600 ]; do
    if [ -f "$RUN/$svc.pid" ]; then
      [ -f "$RUN/$svc.started" ] && return 0
      if ! alive "$svc"; then
        touch "$RUN/$svc.failed"
        echo "Job for $svc.service failed because the control process exited with error code." >&2
        echo "See \"systemctl status $svc.service\" and \"journalctl -xeu $svc.service\" for details." >&2
        return 1
      fi
    fi
    sleep 0.2
    i=$((i + 1))
  done
  # systemd would keep waiting (TimeoutStartSec=0); the stand-in gives up after 120 s.
  return 0
}

stop() {
  svc=$1
  p=$(pid_of "$svc")
  if [ -n "$p" ] && alive "$svc"; then
    kill -TERM "$p" 2>/dev/null
    i=0
    while alive "$svc" && [ "$i" -lt 150 ]; do
      sleep 0.2
      i=$((i + 1))
    done
  fi
  [ -n "$p" ] && kill -s KILL -- "-$p" 2>/dev/null
  rm -f "$RUN/$svc.pid" "$RUN/$svc.started" "$RUN/$svc.failed"
  return 0
}

verb=
units=
for arg in "$@"; do
  case "$arg" in
    -*) ;;
    *) if [ -z "$verb" ]; then verb=$arg; else units="$units ${arg%.service}"; fi ;;
  esac
done

rc=0
case "$verb" in
  daemon-reload) exit 0 ;;
  is-active)
    for u in $units; do
      s=$(state "$u")
      echo "$s"
      [ "$s" = active ] || rc=3
    done ;;
  start) for u in $units; do start "$u" || rc=$?; done ;;
  stop) for u in $units; do stop "$u"; done ;;
  restart) for u in $units; do stop "$u"; start "$u" || rc=$?; done ;;
  enable)
    mkdir -p "$UNITDIR/multi-user.target.wants"
    for u in $units; do
      if [ -f "$UNITDIR/$u.service" ]; then
        ln -sf "$UNITDIR/$u.service" "$UNITDIR/multi-user.target.wants/$u.service"
      else
        echo "Failed to enable unit: Unit file $u.service does not exist." >&2
        rc=1
      fi
    done ;;
  disable) for u in $units; do rm -f "$UNITDIR/multi-user.target.wants/$u.service"; done ;;
  is-enabled)
    for u in $units; do
      if [ -e "$UNITDIR/multi-user.target.wants/$u.service" ]; then echo enabled; else echo disabled; rc=1; fi
    done ;;
  status)
    for u in $units; do
      echo "* $u.service (k3s test stand-in unit)"
      echo "     Active: $(state "$u")  Main PID: $(pid_of "$u")"
      tail -n 10 "$LOGDIR/$u.log" 2>/dev/null
      [ "$(state "$u")" = active ] || rc=3
    done ;;
  *)
    echo "systemctl (k3s test stand-in): unsupported command '$verb'" >&2
    exit 1 ;;
esac
exit $rc
