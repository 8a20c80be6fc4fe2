"""The charts of the helm-controller stand-in's tests, made, packaged and indexed with real
Helm (helm-python-sdk), and a loopback HTTP chart repository serving them.

    charts.py make REPO_DIR       # hello 0.1.0 and 0.2.0, indexed (REPO_DIR/index.yaml)
    charts.py serve REPO_DIR PORT_FILE   # serves REPO_DIR on 127.0.0.1:<free port>
    charts.py push REPO_DIR oci://HOST:PORT/PATH   # Helm's push of each chart archive

`hello` renders a ConfigMap, a Deployment and a Service from its values:
- `greeting` and `auth.password` (ConfigMap data), `replicas` (Deployment),
  `service.port` (Service);
- `explode`: when set, the chart fails to render with Helm's `fail` and this text.
Version 0.2.0 also renders `data.edition: "two"` into the ConfigMap.
"""

from __future__ import annotations

import http.server
import os
import shutil
import sys
import tempfile

import helm_python as helm

VALUES = """\
greeting: hello
replicas: 1
explode: ""
auth:
  password: ""
service:
  port: 80
"""

CONFIGMAP = """\
{{- if .Values.explode }}{{ fail .Values.explode }}{{ end -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  labels:
    helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
data:
  greeting: {{ .Values.greeting | quote }}
  password: {{ .Values.auth.password | quote }}
  chartVersion: {{ .Chart.Version | quote }}
  {{- if eq .Chart.Version "0.2.0" }}
  edition: "two"
  {{- end }}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: web
          image: "registry.invalid/hello:{{ .Chart.AppVersion }}"
          ports:
            - containerPort: 8080
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
  labels:
    helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
spec:
  selector:
    app: {{ .Release.Name }}
  ports:
    - port: {{ .Values.service.port }}
      targetPort: 8080
      protocol: TCP
"""


def make(repo: str) -> None:
    os.makedirs(repo, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="helm-standin-charts-") as work:
        with helm.Chart.create("hello", work):
            pass
        chart = os.path.join(work, "hello")
        # The scaffold's templates are replaced by ours.
        shutil.rmtree(os.path.join(chart, "templates"))
        os.makedirs(os.path.join(chart, "templates"))
        for name, text in (("values.yaml", VALUES), ("templates/configmap.yaml", CONFIGMAP),
                           ("templates/deployment.yaml", DEPLOYMENT), ("templates/service.yaml", SERVICE)):
            with open(os.path.join(chart, name), "w", encoding="utf-8") as f:
                f.write(text)
        report = helm.lint(chart)
        if report.get("errors"):
            raise SystemExit(f"helm lint: {report['errors']}")
        for version in ("0.1.0", "0.2.0"):
            print(helm.package(chart, destination=repo, version=version, app_version=version))
    index = helm.repo_index_generate(repo)
    print({name: [e["version"] for e in entries] for name, entries in index["entries"].items()})


def push(repo: str, remote: str) -> None:
    """Pushes every chart archive of `repo` to the OCI registry `remote` (oci://host/path)."""
    with helm.RegistryClient(plain_http=True) as client:
        for archive in sorted(f for f in os.listdir(repo) if f.endswith(".tgz")):
            client.push(os.path.join(repo, archive), remote, plain_http=True)
            print(f"pushed {archive} to {remote}")


def serve(repo: str, port_file: str) -> None:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=repo, **kwargs)

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            sys.stderr.write("chart repository: " + (format % args) + "\n")
            sys.stderr.flush()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "push":
        push(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
