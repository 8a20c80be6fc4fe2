#!/usr/bin/env python3
"""Start-up benchmark of one Terraform provider binary, started the way Terraform starts it.

Starts BINARY with the go-plugin environment Terraform sets, waits for the handshake line
on its stdout, and kills it. Two series of RUNS runs each, after one unmeasured warm-up:

  * time: from just before fork/exec to the handshake line (time.perf_counter);
  * rss:  the same, with the provider run under `/usr/bin/time -v`, whose
          "Maximum resident set size" is read after the provider is killed.

With --tls a client certificate is passed in PLUGIN_CLIENT_CERT, as Terraform does
(AutoMTLS): the provider then generates its own key and certificate before answering.

Prints one result a line on stdout, tab-separated: `KEY:time_ms <ms>` and `KEY:rss_kb <kB>`.
Every socket lives in a private temporary directory (TMPDIR) that is removed at the end.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
TIMEOUT_SECONDS = 30


class Hung(Exception):
    pass


def on_alarm(signum, frame):
    raise Hung()


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
        # after the parenthesised command name: state, then the parent's pid
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


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    proc.stdout.close()


def one_run(argv, env):
    """Starts argv; returns (seconds until the handshake line, the line, the Popen)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT_SECONDS)
    try:
        line = proc.stdout.readline()
    except Hung:
        kill_group(proc)
        raise SystemExit(f"handshake.py: no handshake line from {argv[-1]} within {TIMEOUT_SECONDS}s")
    finally:
        signal.alarm(0)
    elapsed = time.perf_counter() - start
    if not line:
        kill_group(proc)
        raise SystemExit(f"handshake.py: {argv[-1]} exited with {proc.returncode} before a handshake line")
    return elapsed, line.decode().strip(), proc


def peak_rss_run(time_bin, binary, env, report):
    """One run under /usr/bin/time -v; returns the provider's peak RSS in kB."""
    _, _, proc = one_run([time_bin, "-v", "-o", report, binary], env)
    # proc is /usr/bin/time: kill only the provider, so that time still writes its report
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
                return int(text.rsplit(":", 1)[1])
    raise SystemExit("handshake.py: no 'Maximum resident set size' in the report of /usr/bin/time")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--protocol", required=True, help="PLUGIN_PROTOCOL_VERSIONS, e.g. 6 or 5")
    ap.add_argument("--key", required=True, help="prefix of the result keys")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tls", action="store_true", help="pass a client certificate (AutoMTLS)")
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

        # Unmeasured warm-up: every binary starts from a warm page cache.
        _, line, proc = one_run([args.binary], env)
        kill_group(proc)

        times = []
        for _ in range(args.runs):
            elapsed, line, proc = one_run([args.binary], env)
            kill_group(proc)
            times.append(elapsed * 1000.0)

        report = os.path.join(workdir, "time.txt")
        rss = [peak_rss_run(args.time_bin, args.binary, env, report) for _ in range(args.runs)]

        fields = line.split("|")
        shown = fields[:3] + ["<address>"] + fields[4:5]
        if len(fields) > 5 and fields[5]:
            shown.append("<certificate>")
        print(f"handshake.py: {os.path.basename(args.binary)} answered {'|'.join(shown)}", file=sys.stderr)
        for value in times:
            print(f"{args.key}:time_ms\t{value:.3f}")
        for value in rss:
            print(f"{args.key}:rss_kb\t{value}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
