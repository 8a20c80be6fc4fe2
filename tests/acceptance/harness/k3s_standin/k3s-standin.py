#!/usr/bin/python3
# TEST STAND-IN for the k3s binary (`/usr/local/bin/k3s`), used only by the acceptance tests'
# node rig because real k3s cannot be downloaded there. It is NOT k3s. It keeps the host
# contract the provider relies on (/tmp/k3s/contract.md, module docs of harness/k3s_standin.rs):
# `k3s --version`, `k3s server` / `k3s agent` reading /etc/rancher/k3s/config.yaml, embedded
# etcd (a real etcd) and a real kube-apiserver on 0.0.0.0:6443, /etc/rancher/k3s/k3s.yaml,
# /var/lib/rancher/k3s/server/token (K10<sha256 of server CA PEM>::server:<secret>), joining
# servers and agents validated by the token, a "kubelet" keeping the Node Ready with
# heartbeats and finishing deleted pods, `k3s etcd-snapshot save --name N`, `k3s kubectl`.
# Stand-in extras: an event log /var/lib/rancher/k3s-standin/events.log and the fault file
# /etc/k3s-standin/fail-start. Python 3 stdlib plus the openssl, etcd, kube-apiserver and
# kubectl programs of the test machine (paths baked in by the harness below).

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# ---- baked in per release by harness/k3s_standin.rs -------------------------------------
VERSION = "@K3S_STANDIN_VERSION@"
COMMIT = "@K3S_STANDIN_COMMIT@"
GO_VERSION = "go1.21.6"
KUBE_BIN_DIR = "@K3S_STANDIN_KUBE_BIN_DIR@"
KUBECTL = "@K3S_STANDIN_KUBECTL@"
# -----------------------------------------------------------------------------------------

CONFIG = "/etc/rancher/k3s/config.yaml"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
DATA = "/var/lib/rancher/k3s"
SERVER = DATA + "/server"
TLS = SERVER + "/tls"
DB = SERVER + "/db"
AGENT = DATA + "/agent"
STANDIN = "/var/lib/rancher/k3s-standin"
EVENTS = STANDIN + "/events.log"
CHILD_LOGS = "/var/log/k3s-standin"
RUN = "/run/k3s-standin"
FAIL_START = "/etc/k3s-standin/fail-start"
HEARTBEAT = 5.0
POD_POLL = 2.0
API_PORT = 6443


# ---------------------------------------------------------------- logging and events


def log(level, msg):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write('time="%s" level=%s msg=%s\n' % (stamp, level, json.dumps(msg)))
    sys.stderr.flush()


def event(name, details=""):
    os.makedirs(STANDIN, exist_ok=True)
    line = "%d %s %s" % (int(time.time() * 1000), name, details)
    with open(EVENTS, "a") as f:
        f.write(line.rstrip() + "\n")


class Fatal(Exception):
    pass


# ---------------------------------------------------------------- config.yaml subset


def parse_scalar(text):
    t = text.strip()
    if t == "" or t in ("~", "null", "Null", "NULL"):
        return None
    if t[0] == '"':
        return json.loads(t)
    if t[0] == "'":
        return t[1:-1].replace("''", "'")
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t[0] == "[" and t[-1] == "]":
        inner = t[1:-1].strip()
        return [parse_scalar(p) for p in split_flow(inner)] if inner else []
    if t[0] == "{" and t[-1] == "}":
        return json.loads(t)
    try:
        return int(t)
    except ValueError:
        pass
    if " #" in t:
        return parse_scalar(t.split(" #", 1)[0])
    return t


def split_flow(text):
    parts, cur, quote = [], "", None
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def split_key(line):
    """`key: value` -> (key, value) outside quotes, or None."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == ":" and (i + 1 == len(line) or line[i + 1] == " "):
            return parse_scalar(line[:i]), line[i + 1:]
    return None


def parse_yaml(text):
    """Block-style YAML as serde_yaml writes it: a top-level map of scalars, lists of scalars
    and one level of nested maps; flow lists and JSON documents are accepted too."""
    if text.lstrip().startswith("{"):
        return json.loads(text)
    lines = []
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#") or raw.strip() in ("---", "..."):
            continue
        lines.append(raw.rstrip())
    result, i = {}, 0
    while i < len(lines):
        line = lines[i]
        if line[0] == " ":
            raise Fatal("config.yaml: unexpected indentation: %r" % line)
        kv = split_key(line)
        if kv is None:
            raise Fatal("config.yaml: expected `key: value`: %r" % line)
        key, rest = kv
        i += 1
        if rest.strip():
            result[key] = parse_scalar(rest)
            continue
        block = []
        while i < len(lines) and (lines[i].startswith(" ") or lines[i].startswith("- ") or lines[i] == "-"):
            block.append(lines[i])
            i += 1
        if not block:
            result[key] = None
        elif block[0].strip().startswith("-"):
            result[key] = [parse_scalar(b.strip()[1:]) for b in block if b.strip().startswith("-")]
        else:
            sub = {}
            for b in block:
                skv = split_key(b.strip())
                if skv:
                    sub[skv[0]] = parse_scalar(skv[1])
            result[key] = sub
    return result


def load_config():
    try:
        with open(CONFIG) as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    cfg = parse_yaml(text)
    if not isinstance(cfg, dict):
        raise Fatal("config.yaml is not a map")
    return cfg


def as_list(v):
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v]
    return [x.strip() for x in str(v).split(",") if x.strip()]


# ---------------------------------------------------------------- helpers


def write_file(path, content, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_file(path):
    with open(path) as f:
        return f.read()


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise Fatal("%s failed: %s" % (" ".join(args), (p.stderr or p.stdout).strip()))
    return p.stdout


def node_ip(cfg):
    if cfg.get("node-ip"):
        return str(as_list(cfg.get("node-ip"))[0])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        return s.getsockname()[0]
    finally:
        s.close()


def node_name(cfg):
    return str(cfg.get("node-name") or socket.gethostname())


def parse_token(token):
    """(ca_hash or None, secret) of a full `K10<hash>::<user>:<secret>` or short token."""
    token = str(token).strip()
    if token.startswith("K10") and "::" in token:
        ca_hash, creds = token[3:].split("::", 1)
        secret = creds.split(":", 1)[1] if ":" in creds else creds
        return ca_hash, secret
    return None, token


def sha256_hex(data):
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def bootstrap_key(secret):
    return "/k3s-standin/bootstrap/" + sha256_hex("k3s-standin-bootstrap-id:" + secret)[:32]


def _keystream(key, nonce, n):
    out, counter = b"", 0
    while len(out) < n:
        out += hashlib.sha256(key + nonce + counter.to_bytes(8, "big")).digest()
        counter += 1
    return out[:n]


def seal(secret, data):
    """Encrypts bootstrap data with the token secret (SHA-256 keystream + HMAC; a stand-in
    for k3s's AES-GCM sealed bootstrap data)."""
    key = hashlib.sha256(("k3s-standin-enc:" + secret).encode()).digest()
    mac_key = hashlib.sha256(("k3s-standin-mac:" + secret).encode()).digest()
    nonce = os.urandom(16)
    plain = data.encode()
    ct = bytes(a ^ b for a, b in zip(plain, _keystream(key, nonce, len(plain))))
    mac = hmac.new(mac_key, nonce + ct, hashlib.sha256).hexdigest()
    return json.dumps({"nonce": nonce.hex(), "ct": base64.b64encode(ct).decode(), "mac": mac})


def unseal(secret, sealed):
    key = hashlib.sha256(("k3s-standin-enc:" + secret).encode()).digest()
    mac_key = hashlib.sha256(("k3s-standin-mac:" + secret).encode()).digest()
    doc = json.loads(sealed)
    nonce, ct = bytes.fromhex(doc["nonce"]), base64.b64decode(doc["ct"])
    if not hmac.compare_digest(hmac.new(mac_key, nonce + ct, hashlib.sha256).hexdigest(), doc["mac"]):
        raise Fatal("failed to validate token: bootstrap data cannot be decrypted with this token")
    return bytes(a ^ b for a, b in zip(ct, _keystream(key, nonce, len(ct)))).decode()


# ---------------------------------------------------------------- etcd v3 JSON gateway


def etcd(endpoint, path, body, timeout=10):
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def etcd_get(endpoint, key):
    resp = etcd(endpoint, "/v3/kv/range", {"key": b64(key)})
    kvs = resp.get("kvs") or []
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def etcd_put(endpoint, key, value):
    etcd(endpoint, "/v3/kv/put", {"key": b64(key), "value": b64(value)})


def etcd_members(endpoint):
    return etcd(endpoint, "/v3/cluster/member/list", {}).get("members") or []


def etcd_healthy(endpoint):
    try:
        with urllib.request.urlopen(endpoint + "/health", timeout=3) as r:
            return json.loads(r.read()).get("health") == "true"
    except Exception:
        return False


# ---------------------------------------------------------------- certificates (openssl CLI)


def genkey(path):
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
    os.chmod(path, 0o600)


def make_ca(name, cn):
    key, crt = TLS + "/" + name + ".key", TLS + "/" + name + ".crt"
    genkey(key)
    run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=" + cn, "-days", "3650", "-out", crt,
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"])


def sign(ca, key, crt, subject, ext):
    csr = crt + ".csr"
    extfile = crt + ".ext"
    genkey(key)
    run(["openssl", "req", "-new", "-key", key, "-subj", subject, "-out", csr])
    write_file(extfile, ext, 0o600)
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
         "-days", "3650", "-out", crt, "-extfile", extfile])
    os.remove(csr)
    os.remove(extfile)


CLIENT_EXT = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"


def serving_sans(cfg, ip):
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", socket.gethostname(), node_name(cfg)]
    ips = ["127.0.0.1", "10.43.0.1", ip]
    for san in as_list(cfg.get("tls-san")):
        try:
            ips.append(str(ipaddress.ip_address(san)))
        except ValueError:
            names.append(san)
    out, seen = [], set()
    for v in ["DNS:" + n for n in names] + ["IP:" + i for i in ips]:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return ",".join(out)


BOOTSTRAP_FILES = ["server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key", "service.key"]


# ---------------------------------------------------------------- HTTPS to the API server


class Api:
    def __init__(self, server, ca, cert, key):
        self.server = server.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)

    def call(self, method, path, body=None, content_type="application/json", timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")


# ---------------------------------------------------------------- the "kubelet"


class Kubelet:
    def __init__(self, api, name, ip, labels, annotations):
        self.api, self.name, self.ip = api, name, ip
        self.labels, self.annotations = labels, annotations
        self.stop = threading.Event()
        self.registered = False
        self.announced = False
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def start(self):
        self.thread.start()

    def node_status(self, ready):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if ready:
            cond = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status", "lastHeartbeatTime": now}
        else:
            cond = {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": now}
        if ready != getattr(self, "last_ready", None):
            cond["lastTransitionTime"] = now
            self.last_ready = ready
        else:
            cond["lastTransitionTime"] = getattr(self, "transition", now)
        self.transition = cond["lastTransitionTime"]
        conditions = [cond] + [
            {"type": t, "status": "False", "reason": "KubeletHas" + r, "message": "kubelet has " + m,
             "lastHeartbeatTime": now, "lastTransitionTime": self.transition}
            for t, r, m in [("MemoryPressure", "SufficientMemory", "sufficient memory available"),
                            ("DiskPressure", "NoDiskPressure", "no disk pressure"),
                            ("PIDPressure", "SufficientPID", "sufficient PID available")]]
        return {"status": {
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.ip}, {"type": "Hostname", "address": self.name}],
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "20Gi"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "20Gi"},
            "nodeInfo": {"machineID": sha256_hex(self.name)[:32], "systemUUID": sha256_hex("uuid" + self.name)[:32],
                         "bootID": sha256_hex("boot" + self.name)[:32], "kernelVersion": os.uname().release,
                         "osImage": "k3s stand-in", "containerRuntimeVersion": "containerd://1.7.15-k3s1",
                         "kubeletVersion": VERSION, "kubeProxyVersion": VERSION,
                         "operatingSystem": "linux", "architecture": "amd64"}}}

    def register(self):
        st, node = self.api.call("GET", "/api/v1/nodes/" + self.name)
        if st == 404:
            body = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": self.name, "labels": self.labels, "annotations": self.annotations},
                    "spec": {}}
            st, resp = self.api.call("POST", "/api/v1/nodes", body)
            if st not in (200, 201, 409):
                raise Fatal("creating Node %s: HTTP %s %s" % (self.name, st, resp))
            log("info", "Successfully registered node " + self.name)
        elif st == 200:
            patch = {"metadata": {"labels": self.labels, "annotations": self.annotations}}
            st, resp = self.api.call("PATCH", "/api/v1/nodes/" + self.name, patch, "application/merge-patch+json")
            if st != 200:
                raise Fatal("updating Node %s: HTTP %s %s" % (self.name, st, resp))
        else:
            raise Fatal("reading Node %s: HTTP %s %s" % (self.name, st, node))
        self.registered = True

    def post_status(self, ready):
        st, resp = self.api.call("PATCH", "/api/v1/nodes/%s/status" % self.name, self.node_status(ready),
                                 "application/merge-patch+json", timeout=10 if ready else 5)
        if st != 200:
            raise Fatal("HTTP %s %s" % (st, resp if isinstance(resp, str) else resp.get("message")))

    def pods(self):
        sel = urllib.parse.quote("spec.nodeName=" + self.name)
        st, resp = self.api.call("GET", "/api/v1/pods?fieldSelector=" + sel)
        if st != 200:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for pod in resp.get("items", []):
            md = pod["metadata"]
            path = "/api/v1/namespaces/%s/pods/%s" % (md["namespace"], md["name"])
            if md.get("deletionTimestamp"):
                self.api.call("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                                               "preconditions": {"uid": md["uid"]}})
                log("info", "pod %s/%s finished and deleted" % (md["namespace"], md["name"]))
            elif pod.get("status", {}).get("phase", "Pending") == "Pending":
                status = {"status": {"phase": "Running", "hostIP": self.ip, "startTime": now, "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": now}
                    for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]}}
                self.api.call("PATCH", path + "/status", status, "application/merge-patch+json")

    def loop(self):
        next_beat = 0.0
        while not self.stop.is_set():
            try:
                if not self.registered:
                    self.register()
                if time.monotonic() >= next_beat:
                    self.post_status(True)
                    next_beat = time.monotonic() + HEARTBEAT
                    if not self.announced:
                        self.announced = True
                        log("info", "Node %s is Ready (kubelet %s)" % (self.name, VERSION))
                        event("ready", VERSION)
                self.pods()
            except Exception as e:  # the API may be restarting; keep trying like a kubelet
                log("error", "kubelet: node %s: %s" % (self.name, e))
            self.stop.wait(POD_POLL)

    def shutdown(self):
        self.stop.set()
        self.thread.join(timeout=15)
        try:
            self.post_status(False)
        except Exception as e:
            log("warning", "could not mark Node %s not ready: %s" % (self.name, e))

    def unschedulable(self):
        try:
            st, node = self.api.call("GET", "/api/v1/nodes/" + self.name, timeout=5)
            if st == 200:
                return "true" if node.get("spec", {}).get("unschedulable") else "false"
            return "unknown(HTTP %s)" % st
        except Exception:
            return "unknown"


# ---------------------------------------------------------------- the service process


class Service:
    def __init__(self, role):
        self.role = role
        self.children = []
        self.kubelet = None
        self.stopping = threading.Event()

    def spawn(self, name, args):
        os.makedirs(CHILD_LOGS, exist_ok=True)
        out = open("%s/%s.log" % (CHILD_LOGS, name), "a")
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.children.append((name, p))
        log("info", "Running %s (pid %d), log %s/%s.log" % (name, p.pid, CHILD_LOGS, name))
        return p

    def check_children(self):
        for name, p in self.children:
            if p.poll() is not None and name == "etcd" and os.path.exists(RUN + "/etcd-left"):
                log("info", "etcd member removed from the cluster (uninstall); stopping")
                self.stopping.set()
            elif p.poll() is not None:
                raise Fatal("%s exited with status %s (see %s/%s.log)" % (name, p.returncode, CHILD_LOGS, name))

    def wait(self, what, timeout, check):
        deadline = time.monotonic() + timeout
        while True:
            if self.stopping.is_set():
                raise Fatal("stopped while waiting for " + what)
            self.check_children()
            if check():
                return
            if time.monotonic() > deadline:
                raise Fatal("timed out waiting for " + what)
            time.sleep(0.5)

    def started(self):
        """Tells the stand-in systemctl that startup passed its checks (systemd's READY=1)."""
        event("start", "%s role=%s" % (VERSION, self.role))
        svc = os.environ.get("K3S_STANDIN_SERVICE")
        if svc:
            write_file("%s/%s.started" % (RUN, svc), str(os.getpid()), 0o644)

    # ---- server

    def server(self, cfg):
        name, ip = node_name(cfg), node_ip(cfg)
        os.makedirs(TLS, mode=0o700, exist_ok=True)
        join = cfg.get("server")
        token_cfg = cfg.get("token")
        etcd_name_file = DB + "/etcd-name"
        have_certs = all(os.path.exists(TLS + "/" + f) for f in BOOTSTRAP_FILES)
        if join and not token_cfg:
            raise Fatal("starting kubernetes: preparing server: token is required to join a cluster")
        if join:
            host = urllib.parse.urlparse(str(join)).hostname
            remote = "http://%s:2379" % host
            ca_hash, secret = parse_token(token_cfg)
            if not have_certs:
                data = self.fetch_bootstrap(remote, secret, ca_hash)
                for f in BOOTSTRAP_FILES:
                    write_file(TLS + "/" + f, data[f])
                write_file(SERVER + "/token-secret", secret)
            else:
                self.validate_local_token(secret, ca_hash)
        else:
            if not have_certs:
                log("info", "Generating cluster CA certificates and service account key")
                make_ca("server-ca", "k3s-server-ca@%d" % time.time())
                make_ca("client-ca", "k3s-client-ca@%d" % time.time())
                genkey(TLS + "/service.key")
                secret = parse_token(token_cfg)[1] if token_cfg else secrets.token_hex(16)
                write_file(SERVER + "/token-secret", secret)
            else:
                secret = read_file(SERVER + "/token-secret").strip()
                if token_cfg and parse_token(token_cfg)[1] != secret:
                    raise Fatal("starting kubernetes: preparing server: failed to validate token: "
                                "the configured token does not match the cluster's token")
        ca_pem = read_file(TLS + "/server-ca.crt")
        full_token = "K10%s::server:%s" % (sha256_hex(ca_pem), secret)
        if not os.path.exists(TLS + "/client-admin.crt"):
            sign(TLS + "/client-ca", TLS + "/client-admin.key", TLS + "/client-admin.crt",
                 "/O=system:masters/CN=system:admin", CLIENT_EXT)
        sign(TLS + "/server-ca", TLS + "/serving-kube-apiserver.key", TLS + "/serving-kube-apiserver.crt",
             "/CN=kube-apiserver",
             "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
             "extendedKeyUsage=serverAuth\nsubjectAltName=" + serving_sans(cfg, ip) + "\n")
        self.started()

        # embedded etcd
        data_dir = DB + "/etcd"
        fresh = not os.path.isdir(data_dir + "/member")
        if os.path.exists(etcd_name_file):
            etcd_name = read_file(etcd_name_file).strip()
        else:
            etcd_name = "%s-%s" % (name, secrets.token_hex(4))
            write_file(etcd_name_file, etcd_name)
        peer = "http://%s:2380" % ip
        initial, state = "%s=%s" % (etcd_name, peer), "new"
        if fresh and join:
            initial = self.etcd_join(remote, etcd_name, peer)
            state = "existing"
        elif fresh:
            log("info", "Starting etcd for a new cluster")
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        self.spawn("etcd", [KUBE_BIN_DIR + "/etcd", "--name=" + etcd_name, "--data-dir=" + data_dir,
                            "--listen-client-urls=http://%s:2379,http://127.0.0.1:2379" % ip,
                            "--advertise-client-urls=http://%s:2379" % ip,
                            "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
                            "--initial-cluster=" + initial, "--initial-cluster-state=" + state,
                            "--unsafe-no-fsync", "--snapshot-count=10000", "--log-level=warn"])
        local = "http://127.0.0.1:2379"
        self.wait("etcd", 120, lambda: etcd_healthy(local))
        log("info", "etcd %s is healthy (%s)" % (etcd_name, "joined " + str(join) if join and fresh else "local"))
        etcd_put(local, bootstrap_key(secret), seal(secret, json.dumps(
            {f: read_file(TLS + "/" + f) for f in BOOTSTRAP_FILES})))
        write_file(SERVER + "/token", full_token + "\n")
        write_file(SERVER + "/node-token", full_token + "\n")
        write_file(SERVER + "/agent-token", full_token + "\n")

        # kube-apiserver
        t = lambda f: TLS + "/" + f  # noqa: E731
        run(["openssl", "pkey", "-in", t("service.key"), "-pubout", "-out", t("service.pub")])
        self.spawn("kube-apiserver", [
            KUBE_BIN_DIR + "/kube-apiserver", "--bind-address=0.0.0.0", "--advertise-address=" + ip,
            "--secure-port=%d" % API_PORT, "--insecure-port=0", "--etcd-servers=" + local,
            "--tls-cert-file=" + t("serving-kube-apiserver.crt"), "--tls-private-key-file=" + t("serving-kube-apiserver.key"),
            "--client-ca-file=" + t("client-ca.crt"), "--authorization-mode=Node,RBAC",
            "--service-account-key-file=" + t("service.pub"), "--service-account-signing-key-file=" + t("service.key"),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local,k3s",
            "--service-cluster-ip-range=10.43.0.0/16", "--allow-privileged=true", "--anonymous-auth=false",
            "--cert-dir=" + SERVER + "/apiserver-certs", "--profiling=false", "--v=1"])
        api = Api("https://127.0.0.1:%d" % API_PORT, t("server-ca.crt"), t("client-admin.crt"), t("client-admin.key"))

        def readyz():
            try:
                st, body = api.call("GET", "/readyz", timeout=5)
                return st == 200
            except Exception:
                return False
        self.wait("kube-apiserver /readyz", 300, readyz)
        kubeconfig = (
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n"
            "    server: https://127.0.0.1:%d\n  name: default\ncontexts:\n- context:\n    cluster: default\n"
            "    user: default\n  name: default\ncurrent-context: default\nkind: Config\npreferences: {}\n"
            "users:\n- name: default\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n"
            % (b64(ca_pem), API_PORT, b64(read_file(t("client-admin.crt"))), b64(read_file(t("client-admin.key")))))
        write_file(KUBECONFIG, kubeconfig, 0o600)
        log("info", "Wrote kubeconfig " + KUBECONFIG)
        # kube-controller-manager (service accounts, namespaces, garbage collection, node
        # lifecycle), leader-elected among the servers as in k3s.
        write_file(SERVER + "/cred/controller.kubeconfig", kubeconfig, 0o600)
        self.spawn("kube-controller-manager", [
            KUBE_BIN_DIR + "/kube-controller-manager", "--kubeconfig=" + SERVER + "/cred/controller.kubeconfig",
            "--bind-address=127.0.0.1", "--secure-port=0", "--port=0", "--leader-elect=true",
            "--use-service-account-credentials=false", "--service-account-private-key-file=" + t("service.key"),
            "--root-ca-file=" + t("server-ca.crt"), "--cluster-signing-cert-file=" + t("client-ca.crt"),
            "--cluster-signing-key-file=" + t("client-ca.key"), "--v=1"])
        log("info", "k3s is up and running")
        if not cfg.get("disable-agent"):
            labels = self.labels(cfg, name, server=True)
            self.kubelet = Kubelet(api, name, ip, labels, {"etcd.k3s.cattle.io/node-name": etcd_name,
                                                            "k3s.io/internal-ip": ip})
            self.kubelet.start()
        else:
            event("ready", VERSION)

    def fetch_bootstrap(self, remote, secret, ca_hash, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            try:
                sealed = etcd_get(remote, bootstrap_key(secret))
                break
            except Exception as e:
                if time.monotonic() > deadline or self.stopping.is_set():
                    raise Fatal("failed to get bootstrap data from %s: %s" % (remote, e))
                log("info", "Waiting for the cluster datastore at %s: %s" % (remote, e))
                time.sleep(2)
        if sealed is None:
            raise Fatal("failed to validate token: no bootstrap data for this token in the cluster at %s "
                        "(wrong token?)" % remote)
        data = json.loads(unseal(secret, sealed))
        if ca_hash and ca_hash != sha256_hex(data["server-ca.crt"]):
            raise Fatal("failed to validate token: token CA hash does not match the Cluster CA certificate hash")
        return data

    def validate_local_token(self, secret, ca_hash):
        stored = read_file(SERVER + "/token-secret").strip() if os.path.exists(SERVER + "/token-secret") else None
        if stored is not None and stored != secret:
            raise Fatal("failed to validate token: the configured token does not match the cluster's token")
        if ca_hash and ca_hash != sha256_hex(read_file(TLS + "/server-ca.crt")):
            raise Fatal("failed to validate token: token CA hash does not match the Cluster CA certificate hash")

    def etcd_join(self, remote, etcd_name, peer):
        members = etcd_members(remote)
        if not any(peer in m.get("peerURLs", []) for m in members):
            log("info", "Adding member %s=%s to etcd cluster at %s" % (etcd_name, peer, remote))
            # etcd refuses a member add (503) until every member has been connected for a few
            # seconds; k3s retries its join the same way.
            deadline = time.time() + 90
            while True:
                try:
                    members = etcd(remote, "/v3/cluster/member/add", {"peerURLs": [peer]}).get("members") or []
                    break
                except urllib.error.HTTPError as e:
                    if e.code != 503 or time.time() > deadline:
                        raise
                    log("info", "etcd member add refused (%s), retrying" % e.code)
                    time.sleep(2)
        parts = []
        for m in members:
            urls = m.get("peerURLs") or []
            if peer in urls:
                parts.append("%s=%s" % (etcd_name, peer))
            elif m.get("name") and urls:
                parts.append("%s=%s" % (m["name"], urls[0]))
        return ",".join(parts)

    # ---- agent

    def agent(self, cfg):
        name, ip = node_name(cfg), node_ip(cfg)
        server = cfg.get("server")
        token = cfg.get("token")
        if not server:
            raise Fatal("--server is required for an agent")
        if not token:
            raise Fatal("--token is required for an agent")
        host = urllib.parse.urlparse(str(server)).hostname
        ca_hash, secret = parse_token(token)
        data = self.fetch_bootstrap("http://%s:2379" % host, secret, ca_hash)
        os.makedirs(AGENT, mode=0o700, exist_ok=True)
        write_file(AGENT + "/server-ca.crt", data["server-ca.crt"])
        write_file(AGENT + "/client-ca.crt", data["client-ca.crt"])
        write_file(AGENT + "/client-ca.key", data["client-ca.key"])
        sign(AGENT + "/client-ca", AGENT + "/client-kubelet.key", AGENT + "/client-kubelet.crt",
             "/O=system:nodes/O=system:masters/CN=system:node:" + name, CLIENT_EXT)
        os.remove(AGENT + "/client-ca.key")
        self.started()
        api = Api(str(server), AGENT + "/server-ca.crt", AGENT + "/client-kubelet.crt", AGENT + "/client-kubelet.key")
        log("info", "Connecting to the cluster at %s as node %s" % (server, name))
        self.kubelet = Kubelet(api, name, ip, self.labels(cfg, name, server=False), {"k3s.io/internal-ip": ip})
        self.kubelet.start()

    def labels(self, cfg, name, server):
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                  "node.kubernetes.io/instance-type": "k3s"}
        if server:
            for role in ("control-plane", "master", "etcd"):
                labels["node-role.kubernetes.io/" + role] = "true"
        for entry in as_list(cfg.get("node-label")):
            k, _, v = entry.partition("=")
            labels[k.strip()] = v.strip()
        return labels

    # ---- lifecycle

    def on_term(self, signum, frame):
        self.stopping.set()

    def shutdown(self):
        unsched = self.kubelet.unschedulable() if self.kubelet else "unknown"
        event("stop", "%s unschedulable=%s" % (VERSION, unsched))
        log("info", "Shutting down k3s %s (%s)" % (self.role, VERSION))
        if self.kubelet:
            self.kubelet.shutdown()
        for name, p in reversed(self.children):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()

    def main(self):
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGINT, self.on_term)
        log("info", "Starting k3s %s %s (%s) [test stand-in]" % (self.role, VERSION, COMMIT))
        try:
            if os.path.exists(FAIL_START):
                reason = read_file(FAIL_START).strip()
                raise Fatal("stand-in fault injection (%s): %s" % (FAIL_START, reason))
            cfg = load_config()
            if self.role == "server":
                self.server(cfg)
            else:
                self.agent(cfg)
            while not self.stopping.wait(1.0):
                self.check_children()
        except Fatal as e:
            if self.stopping.is_set():
                self.shutdown()
                return 0
            log("fatal", str(e))
            event("start-failed", "%s %s" % (VERSION, str(e).replace("\n", " ")))
            for _, p in self.children:
                if p.poll() is None:
                    p.kill()
            return 1
        self.shutdown()
        return 0


# ---------------------------------------------------------------- other subcommands


def etcd_snapshot(args):
    if not args or args[0] != "save":
        sys.stderr.write("usage: k3s etcd-snapshot save [--name NAME] (the stand-in knows only `save`)\n")
        return 1
    name = "on-demand"
    rest = args[1:]
    i = 0
    while i < len(rest):
        if rest[i] == "--name" and i + 1 < len(rest):
            name = rest[i + 1]
            i += 2
        elif rest[i].startswith("--name="):
            name = rest[i].split("=", 1)[1]
            i += 1
        else:
            i += 1
    cfg = load_config()
    node = node_name(cfg)
    endpoint = "http://127.0.0.1:2379"
    if not etcd_healthy(endpoint):
        log("fatal", "etcd-snapshot: etcd is not running on this node")
        return 1
    snap_dir = DB + "/snapshots"
    os.makedirs(snap_dir, mode=0o700, exist_ok=True)
    path = "%s/%s-%s-%d" % (snap_dir, name, node, int(time.time()))
    req = urllib.request.Request(endpoint + "/v3/maintenance/snapshot", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        raw = r.read().decode()
    dec, pos, blob = json.JSONDecoder(), 0, b""
    while pos < len(raw):
        while pos < len(raw) and raw[pos].isspace():
            pos += 1
        if pos >= len(raw):
            break
        obj, pos = dec.raw_decode(raw, pos)
        if "error" in obj:
            log("fatal", "etcd-snapshot: %s" % obj["error"])
            return 1
        blob += base64.b64decode(obj.get("result", {}).get("blob", ""))
    if not blob:
        log("fatal", "etcd-snapshot: empty snapshot")
        return 1
    with open(path, "wb") as f:
        f.write(blob)
    os.chmod(path, 0o600)
    log("info", "Snapshot %s saved." % os.path.basename(path))
    print(path)
    return 0


def main(argv):
    if not argv or argv[0] in ("--version", "-v", "version"):
        print("k3s version %s (%s)" % (VERSION, COMMIT))
        print("go version " + GO_VERSION)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd in ("server", "agent"):
        return Service(cmd).main()
    if cmd == "kubectl":
        env = dict(os.environ)
        env.setdefault("KUBECONFIG", KUBECONFIG)
        os.execve(KUBECTL, [KUBECTL] + rest, env)
    if cmd == "etcd-snapshot":
        return etcd_snapshot(rest)
    if cmd == "standin-etcd-leave":
        return etcd_leave()
    sys.stderr.write("k3s (test stand-in %s): unknown command %r; known: --version, server, agent, kubectl, "
                     "etcd-snapshot save\n" % (VERSION, cmd))
    return 1


def etcd_leave():
    """Used by k3s-uninstall.sh: removes this server's member from the etcd cluster while the
    service still runs, so the remaining members keep quorum."""
    endpoint = "http://127.0.0.1:2379"
    if not os.path.exists(DB + "/etcd-name") or not etcd_healthy(endpoint):
        return 0
    me = read_file(DB + "/etcd-name").strip()
    members = etcd_members(endpoint)
    mine = [m for m in members if m.get("name") == me]
    if not mine or len(members) < 2:
        return 0
    others = [m for m in members if m.get("name") != me and m.get("clientURLs")]
    target = others[0]["clientURLs"][0] if others else endpoint
    write_file(RUN + "/etcd-left", me, 0o644)
    etcd(target, "/v3/cluster/member/remove", {"ID": mine[0]["ID"]})
    log("info", "Removed etcd member %s (%s) from the cluster" % (me, mine[0]["ID"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
