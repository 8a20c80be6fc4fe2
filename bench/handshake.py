#!/usr/bin/env python3
"""Start-up benchmark of one Terraform provider binary, as Terraform starts it.

Starts BINARY with the go-plugin environment Terraform sets, waits for the handshake line
on its stdout, and kills it. Two series:

  * time: from just before fork/exec to the handshake line (perf_counter), RUNS runs;
  * rss:  the same, with the provider run under `/usr/bin/time -v`, and its
          "Maximum resident set size" read after the kill, RUNS runs.

With --tls a client certificate is passed in PLUGIN_CLIENT_CERT, as Terraform does
(AutoMTLS): the provider then generates its own key and certificate before answering.

Prints one JSON object on stdout: {"time_ms": [...], "rss_kb": [...], "line": "..."}.
Every socket lives in a private temporary directory (TMPDIR) that is removed at the end.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def children_of(pid):
    """Direct children of pid, from /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the field after the parenthesised command name: state, then ppid
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def client_cert(workdir):
    key = os.path.join(workdir, "client.key")
    crt = os.path.join(workdir, "client.crt")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "1", "-subj", "/CN=localhost", "-keyout", key, "-out", crt],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(crt) as f:
        return f.read()


class Hung(Exception):
    pass


def on_alarm(signum, frame):
    raise Hung()


def one_run(argv, env, timeout):
    """Returns (seconds to the handshake line, the line, the Popen)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(timeout)
    try:
        line = proc.stdout.readline()
    except Hung:
        kill_group(proc)
        raise SystemExit(f"handshake.py: no handshake line from {argv[-1]} within {timeout}s")
    finally:
        signal.alarm(0)
    elapsed = time.perf_counter() - start
    if not line:
        proc.kill()
        proc.wait()
        raise SystemExit(f"handshake.py: {argv[-1]} exited with {proc.returncode} before a handshake line")
    return elapsed, line.decode().strip(), proc


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    proc.stdout.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--protocol", required=True, help="PLUGIN_PROTOCOL_VERSIONS, e.g. 6 or 5")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--time-bin", default="/usr/bin/time")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="tfpp-handshake-")
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "TMPDIR": workdir,  # go-plugin servers put their unix socket here
            "TF_PLUGIN_MAGIC_COOKIE": MAGIC_COOKIE,
            "PLUGIN_PROTOCOL_VERSIONS": args.protocol,
            "PLUGIN_MIN_PORT": "10000",
            "PLUGIN_MAX_PORT": "25000",
        }
        if args.tls:
            env["PLUGIN_CLIENT_CERT"] = client_cert(workdir)

        # One unmeasured run first, so both binaries start from a warm page cache.
        _, line, proc = one_run([args.binary], env, 30)
        kill_group(proc)

        times = []
        for _ in range(args.runs):
            elapsed, line, proc = one_run([args.binary], env, 30)
            kill_group(proc)
            times.append(elapsed * 1000.0)

        rss = []
        report = os.path.join(workdir, "time.txt")
        for _ in range(args.runs):
            _, _, proc = one_run([args.time_bin, "-v", "-o", report, args.binary], env, 30)
            # proc is /usr/bin/time; kill only the provider so time still writes its report
            kids = children_of(proc.pid)
            if not kids:
                kill_group(proc)
                raise SystemExit("handshake.py: could not find the provider under /usr/bin/time")
            for kid in kids:
                os.kill(kid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            with open(report) as f:
                for text in f:
                    if "Maximum resident set size" in text:
                        rss.append(int(text.rsplit(":", 1)[1]))
                        break
                else:
                    raise SystemExit("handshake.py: no 'Maximum resident set size' in /usr/bin/time's report")

        fields = line.split("|")
        json.dump({"time_ms": times, "rss_kb": rss,
                   "line": "|".join(fields[:3] + ["<address>"] + fields[4:5] + (["<cert>"] if len(fields) > 5 and fields[5] else []))},
                  sys.stdout)
        print()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
