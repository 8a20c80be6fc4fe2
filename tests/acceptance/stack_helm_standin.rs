//! `platform_stack` Helm components installed by real Helm: the HelmRepository and
//! HelmRelease the provider writes are reconciled by the helm-controller stand-in of
//! [`crate::harness::helm_standin`] (Flux's controllers cannot run here; Helm's library can),
//! from a loopback chart repository holding charts that Helm made and indexed. The tests
//! assert on what Helm rendered into the cluster and on Helm's own release records, not only
//! on the Flux objects.

use serde_json::{json, Value};

use crate::harness::helm_standin::{self, release_record, release_secrets, HelmStandIn, FINALIZER};
use crate::harness::{
    cluster, flux_standin, for_each_terraform, kubectl, newest_terraform, unique_name, TerraformBin, Workdir,
};
use crate::stack::{folded, hcl, PROVIDER};

/// One Helm test's names: the stack, its Flux namespace, the chart's target namespace and
/// the values objects the release reads through `valuesFrom`.
struct Names {
    stack: String,
    flux_ns: String,
    target: String,
    /// `<stack>-web`: the HelmRelease, its HelmRepository and the Helm release.
    release: String,
}

impl Names {
    fn new(prefix: &str) -> Names {
        let stack = unique_name(prefix);
        Names {
            release: format!("{stack}-web"),
            flux_ns: format!("{stack}-flux"),
            target: format!("{stack}-apps"),
            stack,
        }
    }
}

/// The `helm` block's settings a test varies.
struct Web<'a> {
    version: &'a str,
    /// Raw HCL for `values`.
    values: &'a str,
    /// More of the `helm` block as raw HCL: `values_from` blocks, `release_name`.
    blocks: &'a str,
}

/// A stack of three components: the Flux namespace, a ConfigMap and a Secret with values
/// in it (`values.yaml` and `password`), and the Helm component `web` (chart `hello`).
fn config(standin: &HelmStandIn, names: &Names, web: &Web) -> String {
    config_from(&standin.repo_url, names, web)
}

/// [`config`] with the chart from `repository` (the loopback chart repository or registry).
fn config_from(repository: &str, names: &Names, web: &Web) -> String {
    config_with(names, "", &web_component(repository, names, web))
}

/// The Helm component `web` (chart `hello` from `repository`) as raw HCL.
fn web_component(repository: &str, names: &Names, web: &Web) -> String {
    format!(
        r#"component {{
    name       = "web"
    depends_on = ["values"]
    namespace  = {target}
    helm {{
      repository = {repo}
      chart      = "hello"
      version    = {version}
      values     = {values}
      {blocks}
    }}
  }}"#,
        target = hcl(&names.target),
        repo = hcl(repository),
        version = hcl(web.version),
        values = web.values,
        blocks = web.blocks,
    )
}

/// The stack with `stack_attributes` (raw HCL at its top level: `repository` blocks,
/// `sensitive_values`), the components `flux-ns` and `values`, then `components` (raw HCL).
fn config_with(names: &Names, stack_attributes: &str, components: &str) -> String {
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": names.flux_ns}});
    let values_objects = [
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-values", "namespace": names.flux_ns},
            "data": {"values.yaml": "greeting: from-configmap\nreplicas: 3\nservice:\n  port: 8080\n"},
        }),
        // A value given through `targetPath` is parsed like `helm --set`: ',' must be escaped.
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "web-secret", "namespace": names.flux_ns},
            "stringData": {"password": "pa\\,ss"},
        }),
    ];
    let docs = |objects: &[Value]| objects.iter().map(|o| format!("---\n{o}\n")).collect::<String>();
    format!(
        r#"{PROVIDER}
resource "platform_stack" "this" {{
  name      = {stack}
  namespace = {flux_ns}
  timeouts {{
    create = "3m"
    update = "3m"
  }}
  {stack_attributes}
  component {{
    name      = "flux-ns"
    manifests = {namespace}
  }}
  component {{
    name       = "values"
    depends_on = ["flux-ns"]
    manifests  = {values_objects}
  }}
  {components}
}}
"#,
        stack = hcl(&names.stack),
        flux_ns = hcl(&names.flux_ns),
        namespace = hcl(&docs(&[namespace])),
        values_objects = hcl(&docs(&values_objects)),
    )
}

/// The ConfigMap first (whole values), then the Secret's `password` at `auth.password`.
const VALUES_FROM: &str = r#"values_from {
        kind = "ConfigMap"
        name = "web-values"
      }
      values_from {
        kind        = "Secret"
        name        = "web-secret"
        values_key  = "password"
        target_path = "auth.password"
      }"#;

fn get(path: &str) -> Option<Value> {
    cluster().get_json(path)
}

/// What Helm rendered for `release` in `namespace`: its ConfigMap's data, the Deployment and the Service.
struct Rendered {
    config: Value,
    deployment: Value,
    service: Value,
}

#[track_caller]
fn rendered(standin: &HelmStandIn, namespace: &str, release: &str) -> Rendered {
    let found =
        |path: String| get(&path).unwrap_or_else(|| panic!("Helm did not render {path}\n{}", standin.log_tail(30)));
    let config = found(format!("/api/v1/namespaces/{namespace}/configmaps/{release}-config"));
    let deployment = found(format!("/apis/apps/v1/namespaces/{namespace}/deployments/{release}"));
    let service = found(format!("/api/v1/namespaces/{namespace}/services/{release}"));
    for object in [&config, &deployment, &service] {
        let annotations = &object["metadata"]["annotations"];
        assert_eq!(annotations["meta.helm.sh/release-name"], release, "not Helm's: {}", object["metadata"]);
        assert_eq!(annotations["meta.helm.sh/release-namespace"], namespace);
    }
    Rendered { config: config["data"].clone(), deployment, service }
}

#[track_caller]
fn helm_release(standin: &HelmStandIn, names: &Names) -> Value {
    flux_standin::helm_release(&names.flux_ns, &names.release)
        .unwrap_or_else(|| panic!("HelmRelease {}/{} missing\n{}", names.flux_ns, names.release, standin.log_tail(30)))
}

/// The HelmRelease is Ready at its generation, as the stand-in wrote it after Helm's `action`.
#[track_caller]
fn assert_released(standin: &HelmStandIn, names: &Names, reason: &str, revision: i64, chart_version: &str) -> Value {
    let release = helm_release(standin, names);
    let status = &release["status"];
    assert!(flux_standin::is_ready(&release), "not Ready: {status}\n{}", standin.log_tail(30));
    let ready = flux_standin::condition(&release, "Ready").unwrap();
    assert_eq!(ready["reason"], reason, "{status}");
    let message = format!(
        "Helm {} succeeded for release {}/{}.v{revision} with chart hello@{chart_version}",
        if reason == "InstallSucceeded" { "install" } else { "upgrade" },
        names.target,
        names.release
    );
    assert_eq!(ready["message"], message.as_str());
    assert_eq!(flux_standin::condition(&release, "Released").unwrap()["status"], "True");
    assert_eq!(status["lastAttemptedRevision"], chart_version);
    assert_eq!(status["storageNamespace"], names.target.as_str());
    assert_eq!(status["history"][0]["version"], revision, "{status}");
    assert_eq!(status["history"][0]["chartVersion"], chart_version);
    assert_eq!(status["history"][0]["status"], "deployed");
    let finalizers = release["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    assert!(finalizers.iter().any(|f| f == FINALIZER), "no {FINALIZER} on the release: {finalizers:?}");
    release
}

/// Helm's record of `revision`: deployed, with `chart_version` and exactly `values`.
#[track_caller]
fn assert_record(names: &Names, revision: i64, chart_version: &str, values: &Value) {
    let record = release_record(&names.target, &names.release, revision)
        .unwrap_or_else(|| panic!("no Helm release Secret for {}.v{revision}", names.release));
    assert_eq!(record["name"], names.release.as_str());
    assert_eq!(record["namespace"], names.target.as_str());
    assert_eq!(record["version"], revision);
    assert_eq!(record["info"]["status"], "deployed", "{}", record["info"]);
    assert_eq!(record["chart"]["metadata"]["name"], "hello");
    assert_eq!(record["chart"]["metadata"]["version"], chart_version);
    assert_eq!(&record["config"], values, "the values Helm was given for revision {revision}");
}

fn helm_secret(names: &Names, revision: i64) -> String {
    format!("sh.helm.release.v1.{}.v{revision}", names.release)
}

/// Install, value change, chart upgrade and uninstall, each done by Helm.
fn lifecycle(tf: &TerraformBin) {
    let standin = helm_standin::ensure();
    let names = Names::new("acc-realhelm");
    let work = Workdir::new(tf);

    // Install: values from the ConfigMap, the Secret's password at auth.password, then
    // `values` on top (replicas 2 beats the ConfigMap's 3).
    work.write_main_tf(&config(
        standin,
        &names,
        &Web { version: "0.1.0", values: "yamlencode({ replicas = 2 })", blocks: VALUES_FROM },
    ));
    work.apply().assert_success();
    let release = assert_released(standin, &names, "InstallSucceeded", 1, "0.1.0");
    assert_eq!(release["spec"]["releaseName"], names.release.as_str());
    let repository = flux_standin::helm_repository(&names.flux_ns, &names.release).expect("HelmRepository");
    assert!(flux_standin::is_ready(&repository), "{}", repository["status"]);
    assert!(repository["status"]["artifact"]["revision"].as_str().is_some_and(|r| r.starts_with("sha256:")));
    let values =
        json!({"greeting": "from-configmap", "replicas": 2, "service": {"port": 8080}, "auth": {"password": "pa,ss"}});
    assert_record(&names, 1, "0.1.0", &values);
    assert_eq!(release_secrets(&names.target, &names.release), [helm_secret(&names, 1)]);
    let r = rendered(standin, &names.target, &names.release);
    assert_eq!(r.config, json!({"greeting": "from-configmap", "password": "pa,ss", "chartVersion": "0.1.0"}));
    assert_eq!(r.deployment["spec"]["replicas"], 2);
    assert_eq!(r.deployment["metadata"]["labels"]["helm.sh/chart"], "hello-0.1.0");
    assert_eq!(r.service["spec"]["ports"][0]["port"], 8080);
    // The finalizer and the status the stand-in wrote are not drift.
    work.assert_plan_empty();

    // A changed value: Helm upgrades to revision 2 and re-renders.
    work.write_main_tf(&config(
        standin,
        &names,
        &Web { version: "0.1.0", values: "yamlencode({ replicas = 2, greeting = \"changed\" })", blocks: VALUES_FROM },
    ));
    work.apply().assert_success();
    assert_released(standin, &names, "UpgradeSucceeded", 2, "0.1.0");
    let mut values = values;
    values["greeting"] = json!("changed");
    assert_record(&names, 2, "0.1.0", &values);
    assert_eq!(rendered(standin, &names.target, &names.release).config["greeting"], "changed");

    // A chart version bump: revision 3 renders what 0.2.0 adds.
    work.write_main_tf(&config(
        standin,
        &names,
        &Web { version: "0.2.0", values: "yamlencode({ replicas = 2, greeting = \"changed\" })", blocks: VALUES_FROM },
    ));
    work.apply().assert_success();
    assert_released(standin, &names, "UpgradeSucceeded", 3, "0.2.0");
    assert_record(&names, 3, "0.2.0", &values);
    let r = rendered(standin, &names.target, &names.release);
    assert_eq!(
        r.config,
        json!({"greeting": "changed", "password": "pa,ss", "chartVersion": "0.2.0", "edition": "two"})
    );
    assert_eq!(r.deployment["metadata"]["labels"]["helm.sh/chart"], "hello-0.2.0");
    assert_eq!(
        release_secrets(&names.target, &names.release),
        [helm_secret(&names, 1), helm_secret(&names, 2), helm_secret(&names, 3)]
    );
    work.assert_plan_empty();

    // Destroy: the HelmRelease goes only once Helm uninstalled the release.
    work.destroy().assert_success();
    assert!(flux_standin::helm_release(&names.flux_ns, &names.release).is_none(), "HelmRelease left after destroy");
    for path in [
        format!("/api/v1/namespaces/{}/configmaps/{}-config", names.target, names.release),
        format!("/apis/apps/v1/namespaces/{}/deployments/{}", names.target, names.release),
        format!("/api/v1/namespaces/{}/services/{}", names.target, names.release),
    ] {
        assert!(get(&path).is_none(), "{path} left after the uninstall\n{}", standin.log_tail(30));
    }
    assert_eq!(release_secrets(&names.target, &names.release), Vec::<String>::new(), "Helm's release records left");
    assert!(
        standin.log_of(&names.flux_ns, &names.release).iter().any(|l| l.ends_with("uninstalled, finalizer removed")),
        "{}",
        standin.log_tail(30)
    );
    // Helm creates the target namespace and leaves it on uninstall, as Flux does.
    kubectl(&["delete", "namespace", &names.target, "--wait=false"]).assert_success();
}

#[test]
fn helm_standin_installs_upgrades_and_uninstalls_with_real_helm() {
    for_each_terraform(lifecycle);
}

/// A chart that fails to render: Helm's error, retried and remediated as helm-controller
/// does, ends the apply quoting Helm; once fixed, Helm installs revision 1.
#[test]
fn helm_standin_render_failure_quotes_helm() {
    let standin = helm_standin::ensure();
    let names = Names::new("acc-realhelm-fail");
    let work = Workdir::new(&newest_terraform());
    let failing = "yamlencode({ explode = \"the hello chart refuses this configuration\" })";
    work.write_main_tf(&config(standin, &names, &Web { version: "0.1.0", values: failing, blocks: VALUES_FROM }));
    let out = work.apply();
    out.assert_failure_contains("Component \"web\" failed");
    let text = folded(&out);
    for needle in [
        // The provider's quote of Stalled, then of Ready=False with Helm's own message.
        "RetriesExceeded: Failed to install after 4 attempt(s)",
        &format!(
            "InstallFailed: Helm install failed for release {}/{} with chart hello@0.1.0:",
            names.target, names.release
        ),
        "execution error at (hello/templates/configmap.yaml:1:",
        "the hello chart refuses this configuration",
    ] {
        assert!(text.contains(needle), "the failure does not quote {needle:?}:\n{text}\n{}", standin.log_tail(30));
    }
    let release = helm_release(standin, &names);
    assert_eq!(release["status"]["installFailures"], 4, "{}", release["status"]);
    // Each failed install was remediated: nothing of it is left.
    assert_eq!(release_secrets(&names.target, &names.release), Vec::<String>::new());
    assert!(get(&format!("/api/v1/namespaces/{}/configmaps/{}-config", names.target, names.release)).is_none());

    work.write_main_tf(&config(
        standin,
        &names,
        &Web { version: "0.1.0", values: "yamlencode({})", blocks: VALUES_FROM },
    ));
    work.apply().assert_success();
    assert_released(standin, &names, "InstallSucceeded", 1, "0.1.0");
    let values =
        json!({"greeting": "from-configmap", "replicas": 3, "service": {"port": 8080}, "auth": {"password": "pa,ss"}});
    assert_record(&names, 1, "0.1.0", &values);
    assert_eq!(rendered(standin, &names.target, &names.release).deployment["spec"]["replicas"], 3);
    work.destroy().assert_success();
    assert_eq!(release_secrets(&names.target, &names.release), Vec::<String>::new());
    kubectl(&["delete", "namespace", &names.target, "--wait=false"]).assert_success();
}

/// A `values_from` object that does not exist fails the release (ValuesError, retried, so the
/// apply waits for its timeout and quotes it); an optional one is skipped.
#[test]
fn helm_standin_values_from_missing_and_optional() {
    let standin = helm_standin::ensure();
    let names = Names::new("acc-realhelm-vals");
    let work = Workdir::new(&newest_terraform());
    let missing = r#"values_from {
        kind = "Secret"
        name = "nowhere"
      }"#;
    let text = config(standin, &names, &Web { version: "0.1.0", values: "yamlencode({})", blocks: missing })
        .replace("create = \"3m\"", "create = \"20s\"");
    work.write_main_tf(&text);
    let out = work.apply();
    out.assert_failure_contains("Component \"web\"");
    let folded = folded(&out);
    let message = format!(
        "could not resolve Secret chart values reference '{}/nowhere' with key 'values.yaml': secrets \"nowhere\" not found",
        names.flux_ns
    );
    assert!(folded.contains(&message), "the failure does not quote {message:?}:\n{folded}");
    assert!(folded.contains("ValuesError"), "{folded}");
    assert_eq!(release_secrets(&names.target, &names.release), Vec::<String>::new(), "Helm ran without its values");

    let optional = r#"values_from {
        kind     = "Secret"
        name     = "nowhere"
        optional = true
      }
      values_from {
        kind       = "ConfigMap"
        name       = "web-values"
        values_key = "absent.yaml"
        optional   = true
      }"#;
    work.write_main_tf(&config(
        standin,
        &names,
        &Web { version: "0.1.0", values: "yamlencode({ greeting = \"only\" })", blocks: optional },
    ));
    work.apply().assert_success();
    assert_record(&names, 1, "0.1.0", &json!({"greeting": "only"}));
    let r = rendered(standin, &names.target, &names.release);
    assert_eq!(r.config, json!({"greeting": "only", "password": "", "chartVersion": "0.1.0"}));
    assert_eq!(r.deployment["spec"]["replicas"], 1, "the chart's default");
    work.destroy().assert_success();
    kubectl(&["delete", "namespace", &names.target, "--wait=false"]).assert_success();
}

/// The chart from the loopback OCI registry (Debian's docker-registry, charts pushed by
/// Helm): an OCIRepository and a chartRef, pulled and installed by Helm; a new version is a
/// new tag of the OCIRepository, which Helm upgrades to.
#[test]
fn helm_standin_installs_and_upgrades_from_an_oci_registry() {
    let standin = helm_standin::ensure();
    let names = Names::new("acc-realhelm-oci");
    let work = Workdir::new(&newest_terraform());
    let values = "yamlencode({ replicas = 2 })";
    work.write_main_tf(&config_from(
        &standin.registry_url,
        &names,
        &Web { version: "0.1.0", values, blocks: VALUES_FROM },
    ));
    work.apply().assert_success();
    let oci = flux_standin::oci_repository(&names.flux_ns, &names.release).expect("OCIRepository");
    assert_eq!(oci["spec"]["url"], format!("{}/hello", standin.registry_url));
    assert!(flux_standin::is_ready(&oci), "{}\n{}", oci["status"], standin.log_tail(30));
    let revision = oci["status"]["artifact"]["revision"].as_str().unwrap_or_default().to_string();
    assert!(revision.starts_with("0.1.0@sha256:"), "artifact revision {revision:?}");
    let release = assert_released(standin, &names, "InstallSucceeded", 1, "0.1.0");
    assert_eq!(release["spec"]["chartRef"]["kind"], "OCIRepository");
    assert_eq!(release["status"]["lastAttemptedRevisionDigest"], oci["status"]["artifact"]["digest"]);
    let expected =
        json!({"greeting": "from-configmap", "replicas": 2, "service": {"port": 8080}, "auth": {"password": "pa,ss"}});
    assert_record(&names, 1, "0.1.0", &expected);
    assert_eq!(rendered(standin, &names.target, &names.release).config["chartVersion"], "0.1.0");
    work.assert_plan_empty();

    // 0.2.0: only the OCIRepository's tag changes (the HelmRelease keeps its generation);
    // the new artifact makes Helm upgrade. The apply waits until Helm has used that version
    // (the release's chart-version annotation against its lastAttemptedRevision).
    work.write_main_tf(&config_from(
        &standin.registry_url,
        &names,
        &Web { version: "0.2.0", values, blocks: VALUES_FROM },
    ));
    work.apply().assert_success();
    let oci = flux_standin::oci_repository(&names.flux_ns, &names.release).expect("OCIRepository");
    assert_eq!(oci["spec"]["ref"], json!({"tag": "0.2.0"}));
    let release = helm_release(standin, &names);
    assert_eq!(
        release["status"]["history"][0]["chartVersion"],
        "0.2.0",
        "the apply returned before Helm upgraded to the new OCI chart; {}",
        standin.log_tail(5)
    );
    assert_released(standin, &names, "UpgradeSucceeded", 2, "0.2.0");
    assert_record(&names, 2, "0.2.0", &expected);
    assert_eq!(rendered(standin, &names.target, &names.release).config["edition"], "two");

    work.destroy().assert_success();
    assert!(flux_standin::helm_release(&names.flux_ns, &names.release).is_none());
    assert_eq!(release_secrets(&names.target, &names.release), Vec::<String>::new(), "Helm's release records left");
    assert!(get(&format!("/apis/apps/v1/namespaces/{}/deployments/{}", names.target, names.release)).is_none());
    kubectl(&["delete", "namespace", &names.target, "--wait=false"]).assert_success();
}

/// A new `release_name`: the old Helm release is uninstalled before the new one is installed,
/// as helm-controller does when the release target changes.
#[test]
fn helm_standin_new_release_name_reinstalls() {
    let standin = helm_standin::ensure();
    let names = Names::new("acc-realhelm-rename");
    let work = Workdir::new(&newest_terraform());
    let values = "yamlencode({})";
    work.write_main_tf(&config(standin, &names, &Web { version: "0.1.0", values, blocks: VALUES_FROM }));
    work.apply().assert_success();
    assert_released(standin, &names, "InstallSucceeded", 1, "0.1.0");
    assert_eq!(release_secrets(&names.target, &names.release), [helm_secret(&names, 1)]);

    let renamed = format!("{}-renamed", names.release);
    let blocks = format!("release_name = {}\n      {VALUES_FROM}", hcl(&renamed));
    work.write_main_tf(&config(standin, &names, &Web { version: "0.1.0", values, blocks: &blocks }));
    work.apply().assert_success();
    let release = helm_release(standin, &names);
    assert!(flux_standin::is_ready(&release), "{}", release["status"]);
    assert_eq!(
        flux_standin::condition(&release, "Ready").unwrap()["message"],
        format!("Helm install succeeded for release {}/{renamed}.v1 with chart hello@0.1.0", names.target).as_str()
    );
    assert_eq!(release["status"]["history"][0]["name"], renamed.as_str());
    // The old release is gone, records and objects; the new one is revision 1.
    assert_eq!(release_secrets(&names.target, &names.release), Vec::<String>::new());
    assert!(get(&format!("/api/v1/namespaces/{}/configmaps/{}-config", names.target, names.release)).is_none());
    let record = release_record(&names.target, &renamed, 1).expect("the renamed release's record");
    assert_eq!(record["info"]["status"], "deployed");
    assert_eq!(rendered(standin, &names.target, &renamed).config["greeting"], "from-configmap");
    assert!(
        standin.log_of(&names.flux_ns, &names.release).iter().any(|l| l.contains("release target changed")),
        "{}",
        standin.log_tail(20)
    );

    work.destroy().assert_success();
    assert_eq!(release_secrets(&names.target, &renamed), Vec::<String>::new());
    kubectl(&["delete", "namespace", &names.target, "--wait=false"]).assert_success();
}

/// The stack's shared `repository` blocks: an HTTP HelmRepository and an OCI one (`type:
/// oci`), each used by a component; Helm installs both charts, from the index and from the
/// registry.
#[test]
fn helm_standin_shared_repositories_http_and_oci() {
    let standin = helm_standin::ensure();
    let names = Names::new("acc-realhelm-repos");
    let work = Workdir::new(&newest_terraform());
    let repositories = format!(
        "repository {{\n    name = \"charts\"\n    url  = {}\n  }}\n  repository {{\n    name = \"registry\"\n    url  = {}\n  }}",
        hcl(&standin.repo_url),
        hcl(&standin.registry_url)
    );
    let component = |name: &str, repository: &str, version: &str, greeting: &str| {
        format!(
            "component {{\n    name       = {}\n    depends_on = [\"values\"]\n    namespace  = {}\n    helm {{\n      repository = {}\n      chart      = \"hello\"\n      version    = {}\n      values     = yamlencode({{ greeting = {} }})\n    }}\n  }}\n",
            hcl(name),
            hcl(&names.target),
            hcl(repository),
            hcl(version),
            hcl(greeting)
        )
    };
    let components =
        component("web", "charts", "0.1.0", "over http") + &component("api", "registry", "0.2.0", "over oci");
    work.write_main_tf(&config_with(&names, &repositories, &components));
    work.apply().assert_success();

    let shared_http = flux_standin::helm_repository(&names.flux_ns, &format!("{}-repo-charts", names.stack))
        .expect("HelmRepository charts");
    assert!(flux_standin::is_ready(&shared_http), "{}", shared_http["status"]);
    let shared_oci = flux_standin::helm_repository(&names.flux_ns, &format!("{}-repo-registry", names.stack))
        .expect("HelmRepository registry");
    assert_eq!(shared_oci["spec"]["type"], "oci");
    assert!(flux_standin::is_ready(&shared_oci), "{}", shared_oci["status"]);
    // `web` is `names.release`; `api` the same but for the component name.
    let api = Names {
        stack: names.stack.clone(),
        flux_ns: names.flux_ns.clone(),
        target: names.target.clone(),
        release: format!("{}-api", names.stack),
    };
    assert_released(standin, &names, "InstallSucceeded", 1, "0.1.0");
    assert_released(standin, &api, "InstallSucceeded", 1, "0.2.0");
    assert_record(&names, 1, "0.1.0", &json!({"greeting": "over http"}));
    assert_record(&api, 1, "0.2.0", &json!({"greeting": "over oci"}));
    assert_eq!(rendered(standin, &names.target, &names.release).config["greeting"], "over http");
    let api_config = rendered(standin, &names.target, &api.release).config;
    assert_eq!(api_config["greeting"], "over oci");
    assert_eq!(api_config["edition"], "two");
    work.assert_plan_empty();

    work.destroy().assert_success();
    assert_eq!(release_secrets(&names.target, &names.release), Vec::<String>::new());
    assert_eq!(release_secrets(&names.target, &api.release), Vec::<String>::new());
    kubectl(&["delete", "namespace", &names.target, "--wait=false"]).assert_success();
}

/// The stack's `sensitive_values` reach the chart exactly as written, however awkward: Flux
/// reads a `targetPath` value the way `helm --set` does (commas split, `true` and digits
/// change type, braces start lists), so the provider escapes what it writes into the values
/// Secret. Helm's own record of the release shows what the chart got.
#[test]
fn helm_standin_sensitive_values_reach_helm_unchanged() {
    let standin = helm_standin::ensure();
    let names = Names::new("acc-realhelm-sens");
    let work = Workdir::new(&newest_terraform());
    let awkward = [
        ("comma", "a,b"),
        ("backslash", "c:\\path\\x"),
        ("boolean", "true"),
        ("number", "1234"),
        ("braces", "{x: 1}"),
        ("quote", "\"q\""),
        ("equals", "k=v"),
        ("spaces", "  padded  "),
    ];
    let entries: Vec<String> = awkward.iter().map(|(key, value)| format!("\"auth.{key}\" = {}", hcl(value))).collect();
    let stack_attributes =
        format!("sensitive_values = {{\n    web = {{\n      {}\n    }}\n  }}", entries.join("\n      "));
    let web = Web { version: "0.1.0", values: "yamlencode({ greeting = \"plain\" })", blocks: "" };
    let component = web_component(&standin.repo_url, &names, &web);
    work.write_main_tf(&config_with(&names, &stack_attributes, &component));
    work.apply().assert_success();
    assert_released(standin, &names, "InstallSucceeded", 1, "0.1.0");
    let record = release_record(&names.target, &names.release, 1).expect("Helm's record of revision 1");
    for (key, value) in awkward {
        assert_eq!(record["config"]["auth"][key], json!(value), "auth.{key} as Helm got it: {}", record["config"]);
    }
    assert_eq!(record["config"]["greeting"], "plain");
    work.assert_plan_empty();
    work.destroy().assert_success();
    kubectl(&["delete", "namespace", &names.target, "--wait=false"]).assert_success();
}
