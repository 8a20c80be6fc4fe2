"""A stand-in for Flux's source-controller and helm-controller around real Helm.

Flux's controllers cannot run here (no images), but Helm can: this program drives the Helm v4
library of PyPI's helm-python-sdk against the tests' kube-apiserver. It is a polling loop:

- HelmRepositories (source.toolkit.fluxcd.io/v1) and OCIRepositories (v1beta2) whose
  `spec.url` starts with one of the `--serve` prefixes are ours (the loopback chart
  repositories and registry the tests run); every other object is left to the scripted
  Flux stand-in of flux_standin.rs. A HelmRepository is Ready once Helm could read its
  `index.yaml`; its artifact revision is the index's digest. A HelmRepository of `type: oci`
  is Ready as it is (its charts are pulled per release). An OCIRepository is Ready once the
  registry resolved its tag (or the newest tag, or an exact `semver`); a new artifact makes
  its releases reconcile again.
- HelmReleases (helm.toolkit.fluxcd.io/v2) whose chart comes from one of ours get the
  finalizer `finalizers.fluxcd.io` first, as helm-controller does. Each new generation (or
  `reconcile.fluxcd.io/requestedAt` request) is reconciled: dependsOn checked, the chart
  version picked from the index and downloaded (its digest checked against the index) or
  pulled from the registry, the values composed as Flux documents it (valuesFrom in order,
  a targetPath entry set with Helm's --set parser, then spec.values on top), and Helm
  installs, upgrades (or finds the release in sync). A failure is remediated (uninstall
  after a failed install, rollback after a failed upgrade) and retried up to
  `remediation.retries` times, then reported Stalled (RetriesExceeded) with Helm's message
  in Ready/Released. Deleting a HelmRelease uninstalls its Helm release, then the
  finalizer is removed.

Where it is simpler than helm-controller: no HelmChart objects (the chart is fetched from
the source directly), no drift detection, no periodic re-reconcile at `spec.interval`, no
tests/post-renderers/impersonation/kubeConfig, and Helm does not wait for workloads to
become ready (no kubelet runs here, so nothing would ever be ready): `disableWait` is in
effect always true.

The harness's reaper ends it when the test process exits.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import faulthandler
import hashlib
import json
import os
import re
import signal
import ssl
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import helm_python as helm

FINALIZER = "finalizers.fluxcd.io"
REQUEST = "reconcile.fluxcd.io/requestedAt"
HELM_RELEASES = "/apis/helm.toolkit.fluxcd.io/v2"
SOURCES_V1 = "/apis/source.toolkit.fluxcd.io/v1"
SOURCES_V1BETA2 = "/apis/source.toolkit.fluxcd.io/v1beta2"
RELEASE_NAME_MAX = 53
HISTORY_MAX = 5


def log(message: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    print(f"{stamp} {message}", flush=True)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(kind: str, status: str, reason: str, message: str, generation: int) -> dict:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now(),
    }


class Kube:
    """The few REST calls the controllers make, with the harness's bearer token."""

    def __init__(self, server: str, token: str, ca_file: str) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file)

    def request(self, method: str, path: str, body=None, content_type: str = "application/json"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, {"message": text}

    def get(self, path: str):
        """The object, or None when it does not exist (any other failure raises)."""
        status, body = self.request("GET", path)
        if status == 404:
            return None
        if status >= 300:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body.get('message', body)}")
        return body

    def items(self, path: str) -> list:
        status, body = self.request("GET", path)
        if status >= 300:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body.get('message', body)}")
        return body.get("items") or []

    def patch_status(self, path: str, status: dict):
        """The object as patched, or None (the refusal is logged)."""
        code, body = self.request("PATCH", path + "/status", {"status": status}, "application/merge-patch+json")
        if code >= 300:
            log(f"PATCH {path}/status refused: HTTP {code}: {body.get('message', body)}")
            return None
        return body

    def json_patch(self, path: str, operations: list):
        return self.request("PATCH", path, operations, "application/json-patch+json")


class ValuesError(Exception):
    pass


class ArtifactError(Exception):
    pass


def merge_maps(base: dict, overlay: dict) -> dict:
    """Flux's transform.MergeMaps: a deep merge where `overlay` wins; maps merge, the rest replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def replace_path_value(values: dict, path: str, value: str) -> dict:
    """Flux's ReplacePathValue: `path=value` through Helm's --set parser (strvals); a value
    wrapped in single or double quotes has every leading and trailing quote stripped and is
    parsed as --set-string (it stays a string)."""
    quoted = len(value) >= 1 and any(value.startswith(q) and value.endswith(q) for q in ("'", '"'))
    if quoted:
        parsed = helm.parse_set_string_values(f"{path}={value.strip(chr(39) + chr(34))}")
    else:
        parsed = helm.parse_set_string(f"{path}={value}")
    return merge_maps(values, parsed)


def shorten_name(name: str) -> str:
    if len(name) <= RELEASE_NAME_MAX:
        return name
    return f"{name[:40]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def parse_duration(text: str | None, default: int) -> int:
    """Seconds of a Flux duration such as `5m`, `1h30m`, `90s`."""
    if not text:
        return default
    total = 0.0
    for number, unit in re.findall(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", text):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return max(1, int(total)) if total else default


def version_key(version: str):
    core = version.split("+")[0]
    main, _, pre = core.partition("-")
    numbers = []
    for part in main.split("."):
        numbers.append(int(part) if part.isdigit() else 0)
    return (numbers, pre == "", pre)


class StandIn:
    def __init__(self, args) -> None:
        self.kube = Kube(args.server, args.token, args.ca_file)
        self.kubeconfig = args.kubeconfig
        self.prefixes = [p.rstrip("/") for p in args.serve]
        self.poll = args.poll
        # uid -> (storage namespace, release name) of what we installed, to uninstall a
        # release whose HelmRelease vanished without our finalizer running.
        self.installed: dict[str, tuple[str, str]] = {}
        # uid -> monotonic time before which a waiting release is not looked at again.
        self.not_before: dict[str, float] = {}
        self.registry_client = None

    # -- sources -------------------------------------------------------------------------

    def ours(self, url: str) -> bool:
        url = (url or "").rstrip("/")
        return any(url == p or url.startswith(p + "/") for p in self.prefixes)

    def reconcile_sources(self) -> dict:
        """Marks our sources Ready; returns {(kind, namespace, name): object} of ours."""
        found = {}
        for base, plural, kind in ((SOURCES_V1, "helmrepositories", "HelmRepository"), (SOURCES_V1BETA2, "ocirepositories", "OCIRepository")):
            for item in self.kube.items(f"{base}/{plural}"):
                meta = item["metadata"]
                if not self.ours(item.get("spec", {}).get("url", "")):
                    continue
                found[(kind, meta["namespace"], meta["name"])] = item
                generation = meta.get("generation", 1)
                status = item.get("status") or {}
                oci_type = kind == "HelmRepository" and item["spec"].get("type") == "oci"
                if status.get("observedGeneration") == generation and (status.get("artifact") or oci_type):
                    continue
                path = f"{base}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
                if oci_type:
                    # An OCI HelmRepository has no artifact: the chart is pulled per release.
                    log(f"{kind} {meta['namespace']}/{meta['name']}: OCI repository, nothing to fetch")
                    found[(kind, meta["namespace"], meta["name"])] = self.kube.patch_status(path, {
                        "observedGeneration": generation,
                        "conditions": [condition("Ready", "True", "Succeeded", "Helm repository is ready", generation)],
                    }) or item
                    continue
                try:
                    artifact = self.helm_repository_artifact(item) if kind == "HelmRepository" else self.oci_artifact(item)
                except Exception as e:  # noqa: BLE001 - any failure is the source's status
                    message = f"{e}"
                    log(f"{kind} {meta['namespace']}/{meta['name']}: fetch failed: {message}")
                    self.kube.patch_status(path, {
                        "observedGeneration": generation,
                        "conditions": [
                            condition("FetchFailed", "True", "FetchFailed", message, generation),
                            condition("Ready", "False", "FetchFailed", message, generation),
                        ],
                    })
                    continue
                log(f"{kind} {meta['namespace']}/{meta['name']}: stored artifact {artifact['revision']}")
                found[(kind, meta["namespace"], meta["name"])] = self.kube.patch_status(path, {
                    "observedGeneration": generation,
                    "url": artifact["url"],
                    "artifact": artifact,
                    "conditions": [
                        condition("Ready", "True", "Succeeded", f"stored artifact: revision '{artifact['revision']}'", generation),
                        condition("ArtifactInStorage", "True", "Succeeded", f"stored artifact: revision '{artifact['revision']}'", generation),
                    ],
                }) or item
        return found

    def helm_repository_artifact(self, repo: dict) -> dict:
        url = repo["spec"]["url"].rstrip("/")
        index = helm.repo_index(url)
        digest = hashlib.sha256(json.dumps(index.get("entries", {}), sort_keys=True).encode()).hexdigest()
        meta = repo["metadata"]
        return {
            "path": f"helmrepository/{meta['namespace']}/{meta['name']}/index-{digest}.yaml",
            "url": f"{url}/index.yaml",
            "revision": f"sha256:{digest}",
            "digest": f"sha256:{digest}",
            "lastUpdateTime": now(),
        }

    def registry(self):
        if self.registry_client is None:
            self.registry_client = helm.RegistryClient(plain_http=True)
        return self.registry_client

    def oci_artifact(self, repo: dict) -> dict:
        url = repo["spec"]["url"].rstrip("/")
        ref = repo["spec"].get("ref") or {}
        tag = ref.get("tag")
        if ref.get("semver") and not tag:
            # Only exact versions and "*"; source-controller resolves any semver range.
            wanted = ref["semver"]
            tags = self.registry().tags(url)
            if wanted != "*" and wanted not in tags:
                raise ArtifactError(f"failed to determine the artifact tag for '{url}': no match found for semver: {wanted}")
            tag = tags[0] if wanted == "*" else wanted
        if not tag:
            tags = self.registry().tags(url)
            if not tags:
                raise ArtifactError(f"no tags found for {url}")
            tag = tags[0]
        descriptor = self.registry().resolve(f"{url}:{tag}")
        meta = repo["metadata"]
        return {
            "path": f"ocirepository/{meta['namespace']}/{meta['name']}/{descriptor['digest']}.tar.gz",
            "url": f"{url}:{tag}",
            "revision": f"{tag}@{descriptor['digest']}",
            "digest": descriptor["digest"],
            "lastUpdateTime": now(),
            "metadata": {"tag": tag},
        }

    # -- releases ------------------------------------------------------------------------

    def source_of(self, release: dict):
        """(kind, namespace, name) of the release's chart source."""
        spec = release.get("spec") or {}
        ns = release["metadata"]["namespace"]
        if spec.get("chartRef"):
            ref = spec["chartRef"]
            return (ref.get("kind", ""), ref.get("namespace") or ns, ref.get("name", ""))
        ref = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or {}
        return (ref.get("kind", ""), ref.get("namespace") or ns, ref.get("name", ""))

    def run_once(self) -> None:
        sources = self.reconcile_sources()
        releases = self.kube.items(f"{HELM_RELEASES}/helmreleases")
        seen = set()
        for release in releases:
            uid = release["metadata"].get("uid", "")
            seen.add(uid)
            source_key = self.source_of(release)
            if source_key not in sources and uid not in self.installed and FINALIZER not in (release["metadata"].get("finalizers") or []):
                continue
            try:
                self.reconcile_release(release, releases, sources.get(source_key))
            except Exception:  # noqa: BLE001 - keep the loop alive, but say what went wrong
                log(f"HelmRelease {release['metadata']['namespace']}/{release['metadata']['name']}: reconcile crashed:\n{traceback.format_exc()}")
                self.not_before[uid] = time.monotonic() + 2
        for uid in list(self.installed):
            if uid not in seen:
                storage_ns, name = self.installed.pop(uid)
                log(f"HelmRelease with uid {uid} is gone without its finalizer running: uninstalling {storage_ns}/{name}")
                self.uninstall(storage_ns, name)

    def config(self, storage_namespace: str):
        return helm.Config(kubeconfig_path=self.kubeconfig, namespace=storage_namespace)

    def uninstall(self, storage_namespace: str, name: str) -> None:
        with self.config(storage_namespace) as cfg:
            result = cfg.uninstall(name, ignore_not_found=True)
        log(f"helm uninstall {storage_namespace}/{name}: {result.get('info') or 'done'}")

    def finalize(self, release: dict, path: str) -> None:
        meta, spec, status = release["metadata"], release.get("spec") or {}, release.get("status") or {}
        finalizers = meta.get("finalizers") or []
        storage_ns = status.get("storageNamespace")
        history = status.get("history") or []
        uninstalled = False
        if not spec.get("suspend") and storage_ns and history:
            try:
                self.uninstall(storage_ns, history[0]["name"])
            except helm.HelmError as e:
                message = f"Helm uninstall failed for release {storage_ns}/{history[0]['name']}: {e}"
                log(message)
                self.kube.patch_status(path, {"conditions": [condition("Ready", "False", "UninstallFailed", message, meta.get("generation", 1))]})
                self.not_before[meta["uid"]] = time.monotonic() + 2
                return
            uninstalled = True
        self.installed.pop(meta.get("uid", ""), None)
        if FINALIZER in finalizers:
            remaining = [f for f in finalizers if f != FINALIZER]
            code, body = self.kube.json_patch(path, [
                {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                {"op": "replace", "path": "/metadata/finalizers", "value": remaining},
            ])
            if code >= 300 and code != 404:
                log(f"removing the finalizer of {path}: HTTP {code}: {body.get('message', body)}")
            else:
                done = "uninstalled" if uninstalled else "nothing to uninstall"
                log(f"HelmRelease {meta['namespace']}/{meta['name']}: {done}, finalizer removed")

    def reconcile_release(self, release: dict, all_releases: list, source) -> None:
        meta = release["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta.get("uid", "")
        generation = meta.get("generation", 1)
        path = f"{HELM_RELEASES}/namespaces/{ns}/helmreleases/{name}"
        spec = release.get("spec") or {}
        status = release.get("status") or {}

        if meta.get("deletionTimestamp"):
            if time.monotonic() >= self.not_before.get(uid, 0):
                self.finalize(release, path)
            return
        finalizers = meta.get("finalizers") or []
        if FINALIZER not in finalizers:
            operation = {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER} if finalizers else {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
            code, body = self.kube.json_patch(path, [operation])
            if code >= 300:
                log(f"adding the finalizer to {path}: HTTP {code}: {body.get('message', body)}")
                return
            release = body
            meta = release["metadata"]
        if spec.get("suspend"):
            return
        requested = (meta.get("annotations") or {}).get(REQUEST)
        request_pending = requested is not None and requested != status.get("lastHandledReconcileAt")
        # An OCIRepository chartRef: a new artifact (another tag or digest) is reconciled
        # without a new generation of the release, as helm-controller watches its source.
        source_digest = None
        if source is not None and self.source_of(release)[0] == "OCIRepository":
            source_digest = ((source.get("status") or {}).get("artifact") or {}).get("digest")
        source_changed = source_digest is not None and source_digest != status.get("lastAttemptedRevisionDigest")
        if status.get("observedGeneration") == generation and not request_pending and not source_changed:
            return
        if time.monotonic() < self.not_before.get(uid, 0):
            return

        # dependsOn: every dependency Ready at its generation.
        for dependency in spec.get("dependsOn") or []:
            dep_ns = dependency.get("namespace") or ns
            dep = next((r for r in all_releases if r["metadata"]["namespace"] == dep_ns and r["metadata"]["name"] == dependency.get("name")), None)
            if dep is None or not is_ready(dep):
                message = f"dependency '{dep_ns}/{dependency.get('name')}' is not ready"
                if not has_condition(status, "Ready", "False", "DependencyNotReady", generation):
                    log(f"HelmRelease {ns}/{name}: {message}")
                    self.kube.patch_status(path, {"conditions": [condition("Ready", "False", "DependencyNotReady", message, generation)]})
                self.not_before[uid] = time.monotonic() + 0.5
                return

        base = {"lastAttemptedGeneration": generation}
        if source_digest is not None:
            base["lastAttemptedRevisionDigest"] = source_digest
        if request_pending:
            base["lastHandledReconcileAt"] = requested

        if not has_condition(status, "Reconciling", "True", "Progressing", generation):
            self.kube.patch_status(path, {"conditions": [
                condition("Reconciling", "True", "Progressing", f"Fulfilling prerequisites (helm-controller stand-in, generation {generation})", generation),
                condition("Ready", "Unknown", "Progressing", "reconciliation in progress", generation),
            ]})

        def retry_later(reason: str, error: Exception) -> None:
            """Not Ready for `reason`, tried again in 2 s, as helm-controller requeues."""
            message = f"{error}"
            log(f"HelmRelease {ns}/{name}: {reason}: {message}")
            self.kube.patch_status(path, {**base, "conditions": [
                condition("Ready", "False", reason, message, generation),
                condition("Reconciling", "True", "ProgressingWithRetry", message, generation),
            ]})
            self.not_before[uid] = time.monotonic() + 2

        try:
            values = self.compose_values(release)
        except ValuesError as e:
            retry_later("ValuesError", e)
            return
        try:
            chart, chart_bytes_digest = self.load_chart(release, source)
        except (ArtifactError, helm.HelmError, OSError) as e:
            retry_later("ArtifactFailed", e)
            return
        with chart:
            self.release(release, path, chart, values, base, chart_bytes_digest)

    def compose_values(self, release: dict) -> dict:
        ns = release["metadata"]["namespace"]
        spec = release.get("spec") or {}
        result: dict = {}
        cache: dict = {}
        for ref in spec.get("valuesFrom") or []:
            kind, ref_name = ref.get("kind", ""), ref.get("name", "")
            key = ref.get("valuesKey") or "values.yaml"
            optional = bool(ref.get("optional"))
            prefix = f"could not resolve{' optional' if optional else ''} {kind} chart values reference '{ns}/{ref_name}' with key '{key}'"
            plural = {"Secret": "secrets", "ConfigMap": "configmaps"}.get(kind)
            if plural is None:
                raise ValuesError(f"{prefix}: unsupported values reference kind")
            if (kind, ref_name) not in cache:
                cache[(kind, ref_name)] = self.kube.get(f"/api/v1/namespaces/{ns}/{plural}/{ref_name}")
            obj = cache[(kind, ref_name)]
            if obj is None:
                if optional:
                    continue
                raise ValuesError(f'{prefix}: {plural} "{ref_name}" not found')
            data = obj.get("data") or {}
            if key not in data:
                if optional:
                    continue
                raise ValuesError(f"{prefix}: key not found")
            text = base64.b64decode(data[key]).decode() if kind == "Secret" else data[key]
            if ref.get("targetPath"):
                try:
                    result = replace_path_value(result, ref["targetPath"], text)
                except helm.HelmError as e:
                    raise ValuesError(f"{prefix}: failed to merge value: {e}") from e
                continue
            try:
                result = merge_maps(result, helm.values_from_yaml(text))
            except helm.HelmError as e:
                raise ValuesError(f"{prefix}: failed to read values data: {e}") from e
        return merge_maps(result, spec.get("values") or {})

    def load_chart(self, release: dict, source):
        kind, src_ns, src_name = self.source_of(release)
        if source is None:
            raise ArtifactError(f"{kind} '{src_ns}/{src_name}' not found")
        if not is_ready(source):
            raise ArtifactError(f"{kind} '{src_ns}/{src_name}' is not ready")
        if kind == "OCIRepository":
            reference = source["status"]["artifact"]["url"]
            tag = source["status"]["artifact"]["metadata"]["tag"]
            url, _, _ = reference.rpartition(":")
            return self.pull_oci(url, tag)
        chart_spec = release["spec"]["chart"]["spec"]
        chart_name, wanted = chart_spec.get("chart", ""), chart_spec.get("version") or "*"
        url = source["spec"]["url"].rstrip("/")
        if source["spec"].get("type") == "oci":
            reference = f"{url}/{chart_name}"
            tags = self.registry().tags(reference)
            if wanted not in ("", "*") and wanted not in tags:
                raise ArtifactError(f"invalid chart reference: failed to get chart version for remote reference: no '{chart_name}' chart with version matching '{wanted}' found")
            if not tags:
                raise ArtifactError(f"no tags found for {reference}")
            return self.pull_oci(reference, tags[0] if wanted in ("", "*") else wanted)
        index = helm.repo_index(url)
        entries = (index.get("entries") or {}).get(chart_name) or []
        if wanted in ("", "*"):
            candidates = sorted(entries, key=lambda e: version_key(e.get("version", "")), reverse=True)
        else:
            candidates = [e for e in entries if e.get("version") == wanted]
        if not candidates:
            raise ArtifactError(f"invalid chart reference: failed to get chart version for remote reference: no '{chart_name}' chart with version matching '{wanted}' found")
        entry = candidates[0]
        chart_url = urllib.parse.urljoin(url + "/", (entry.get("urls") or [""])[0])
        with urllib.request.urlopen(chart_url, timeout=30) as resp:
            data = resp.read()
        digest = hashlib.sha256(data).hexdigest()
        if entry.get("digest") and entry["digest"] != digest:
            raise ArtifactError(f"chart {chart_name}-{entry.get('version')} from {chart_url}: digest {digest} does not match the index's {entry['digest']}")
        return helm.Chart.load_archive(data), f"sha256:{digest}"

    def pull_oci(self, reference: str, tag: str):
        """Helm's pull of `reference:tag`: the chart and the archive's digest."""
        with helm.RegistryClient(plain_http=True) as client, TempDir() as tmp:
            pulled = helm.pull(reference, client=client, version=tag, destination=tmp.path, plain_http=True)
            archives = [f for f in os.listdir(tmp.path) if f.endswith(".tgz")]
            if not archives:
                raise ArtifactError(f"pulling {reference}:{tag} left no chart archive ({pulled})")
            with open(os.path.join(tmp.path, archives[0]), "rb") as f:
                data = f.read()
        return helm.Chart.load_archive(data), "sha256:" + hashlib.sha256(data).hexdigest()

    def release(self, release: dict, path: str, chart, values: dict, base: dict, chart_digest: str) -> None:
        meta, spec, status = release["metadata"], release.get("spec") or {}, release.get("status") or {}
        ns, name, uid, generation = meta["namespace"], meta["name"], meta.get("uid", ""), meta.get("generation", 1)
        target_ns = spec.get("targetNamespace") or ns
        storage_ns = spec.get("storageNamespace") or ns
        release_name = spec.get("releaseName") or shorten_name(f"{spec['targetNamespace']}-{name}" if spec.get("targetNamespace") else name)
        chart_meta = chart.metadata
        chart_label = f"{chart_meta['name']}@{chart_meta['version']}"
        config_digest = "sha256:" + hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        base = {
            **base,
            "lastAttemptedRevision": chart_meta["version"],
            "lastAttemptedConfigDigest": config_digest,
        }
        history = status.get("history") or []

        # A changed release name or namespace: uninstall the old release first, as
        # helm-controller does ("release target configuration changed").
        if history and status.get("storageNamespace") and (history[0].get("name") != release_name or status.get("storageNamespace") != storage_ns or history[0].get("namespace") != target_ns):
            log(f"HelmRelease {ns}/{name}: release target changed ({status['storageNamespace']}/{history[0].get('name')} -> {storage_ns}/{release_name}): uninstalling the old release")
            self.uninstall(status["storageNamespace"], history[0]["name"])
            history = []

        install_opts = spec.get("install") or {}
        upgrade_opts = spec.get("upgrade") or {}
        timeout = parse_duration(spec.get("timeout"), 300)
        with self.config(storage_ns) as cfg:
            try:
                current = cfg.history(release_name)
            except helm.HelmNotFoundError:
                current = []
            latest = current[-1] if current else None
            if latest is not None and latest.get("status") == "deployed" and latest.get("chart_name") == chart_meta["name"] \
                    and latest.get("chart_version") == chart_meta["version"] and cfg.get_values(release_name) == values:
                # In sync: nothing for Helm to do.
                previous = next((c for c in status.get("conditions") or [] if c.get("type") == "Released" and c.get("status") == "True"), None)
                reason = previous["reason"] if previous else "InstallSucceeded"
                message = previous["message"] if previous else f"Helm release {target_ns}/{release_name}.v{latest['revision']} is in sync with chart {chart_label}"
                log(f"HelmRelease {ns}/{name}: in sync ({target_ns}/{release_name}.v{latest['revision']})")
                self.installed[uid] = (storage_ns, release_name)
                self.kube.patch_status(path, {**base, "observedGeneration": generation, "storageNamespace": storage_ns,
                    "history": snapshots(cfg, release_name, config_digest, chart_digest),
                    "conditions": [condition("Ready", "True", reason, message, generation), condition("Released", "True", reason, message, generation)]})
                return

            action = "install" if latest is None or all(r.get("status") == "uninstalled" for r in current) else "upgrade"
            remediation = (install_opts if action == "install" else upgrade_opts).get("remediation") or {}
            retries = int(remediation.get("retries") or 0)
            failures = 0
            while True:
                try:
                    if action == "install":
                        result = cfg.install(chart, release_name, values, namespace=target_ns, create_namespace=bool(install_opts.get("createNamespace")),
                                             timeout=timeout, description=f"Helm install by the helm-controller stand-in for HelmRelease {ns}/{name}")
                    else:
                        result = cfg.upgrade(chart, release_name, values, namespace=target_ns, timeout=timeout, max_history=int(spec.get("maxHistory") or 5),
                                             description=f"Helm upgrade by the helm-controller stand-in for HelmRelease {ns}/{name}")
                except helm.HelmError as e:
                    failures += 1
                    message = f"Helm {action} failed for release {target_ns}/{release_name} with chart {chart_label}: {e}"
                    log(f"HelmRelease {ns}/{name}: attempt {failures}: {message}")
                    reason = "InstallFailed" if action == "install" else "UpgradeFailed"
                    if failures > retries:
                        # remediateLastFailure defaults to true when retries are set.
                        if remediation.get("remediateLastFailure", retries > 0):
                            self.remediate(cfg, action, release_name, ns, name)
                        self.kube.patch_status(path, {**base, "observedGeneration": generation, "storageNamespace": storage_ns,
                            f"{action}Failures": failures,
                            "conditions": [
                                condition("Stalled", "True", "RetriesExceeded", f"Failed to {action} after {failures} attempt(s)", generation),
                                condition("Ready", "False", reason, message, generation),
                                condition("Released", "False", reason, message, generation),
                            ]})
                        return
                    self.kube.patch_status(path, {**base, f"{action}Failures": failures, "conditions": [
                        condition("Reconciling", "True", "ProgressingWithRetry", f"retrying after failure {failures} of {retries + 1}", generation),
                        condition("Ready", "False", reason, message, generation),
                        condition("Released", "False", reason, message, generation),
                    ]})
                    self.remediate(cfg, action, release_name, ns, name)
                    continue
                break
            verb = "install" if action == "install" else "upgrade"
            reason = "InstallSucceeded" if action == "install" else "UpgradeSucceeded"
            message = f"Helm {verb} succeeded for release {target_ns}/{release_name}.v{result['revision']} with chart {chart_label}"
            log(f"HelmRelease {ns}/{name}: {message}")
            self.installed[uid] = (storage_ns, release_name)
            self.kube.patch_status(path, {**base, "observedGeneration": generation, "storageNamespace": storage_ns,
                "lastReleaseRevision": result["revision"], "installFailures": None, "upgradeFailures": None,
                "history": snapshots(cfg, release_name, config_digest, chart_digest),
                "conditions": [condition("Ready", "True", reason, message, generation), condition("Released", "True", reason, message, generation)]})

    def remediate(self, cfg, action: str, release_name: str, ns: str, name: str) -> None:
        """helm-controller's default remediation: uninstall a failed install, roll back a failed upgrade."""
        try:
            if action == "install":
                cfg.uninstall(release_name, ignore_not_found=True)
                log(f"HelmRelease {ns}/{name}: remediated the failed install (uninstall)")
            else:
                cfg.rollback(release_name)
                log(f"HelmRelease {ns}/{name}: remediated the failed upgrade (rollback)")
        except helm.HelmError as e:
            log(f"HelmRelease {ns}/{name}: remediation failed: {e}")


def snapshots(cfg, release_name: str, config_digest: str, chart_digest: str) -> list:
    """status.history: the release's newest revisions first, as helm-controller keeps them."""
    out = []
    for rev in reversed(cfg.history(release_name)[-HISTORY_MAX:]):
        out.append({
            "name": rev["name"],
            "namespace": rev["namespace"],
            "version": rev["revision"],
            "status": rev["status"],
            "chartName": rev.get("chart_name"),
            "chartVersion": rev.get("chart_version"),
            "appVersion": rev.get("app_version"),
            "lastDeployed": rev.get("deployed_at"),
        })
    if out:
        out[0]["configDigest"] = config_digest
        out[0]["digest"] = chart_digest
    return out


def has_condition(status: dict, kind: str, value: str, reason: str, generation: int) -> bool:
    return any(c.get("type") == kind and c.get("status") == value and c.get("reason") == reason and c.get("observedGeneration") == generation
               for c in status.get("conditions") or [])


def is_ready(obj: dict) -> bool:
    generation = obj["metadata"].get("generation")
    status = obj.get("status") or {}
    return status.get("observedGeneration") == generation and any(
        c.get("type") == "Ready" and c.get("status") == "True" and c.get("observedGeneration", generation) == generation for c in status.get("conditions") or [])


class TempDir:
    def __init__(self) -> None:
        import tempfile
        self._dir = tempfile.TemporaryDirectory(prefix="helm-standin-")
        self.path = self._dir.name

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._dir.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--kubeconfig", required=True, help="for Helm")
    parser.add_argument("--serve", action="append", default=[], help="URL prefix of a chart repository or registry this stand-in owns")
    parser.add_argument("--poll", type=float, default=0.3)
    args = parser.parse_args()
    # `kill -USR1 <pid>` prints every thread's stack to the log (a stuck Helm call).
    faulthandler.register(signal.SIGUSR1)
    standin = StandIn(args)
    log(f"helm-controller stand-in (Helm {helm.helm_sdk_version()}, helm-python-sdk {helm.__version__}) serving {standin.prefixes}")
    print("READY", flush=True)
    while True:
        try:
            standin.run_once()
        except Exception:  # noqa: BLE001 - a passing API failure must not end the loop
            log(f"loop failed:\n{traceback.format_exc()}")
            time.sleep(1)
        time.sleep(standin.poll)


if __name__ == "__main__":
    main()
