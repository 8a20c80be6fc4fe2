//! Faults between the provider and the API server, through the fault-injecting proxy: a
//! 300-object stack applies, re-plans empty and destroys while the proxy answers 429, 500
//! and 503, drops connections and delays answers; permanent refusals (403, 422) fail at
//! once, sent exactly once, and say what was refused.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::harness::fault_proxy::{forbidden_body, Exchange, Fault, FaultProxy, Rule, Schedule};
use crate::harness::{cluster, for_each_terraform, unique_name, CmdOutput, Workdir};
use crate::stack::{configmap, docs, namespace_obj, stack_tf, Component};

const RETRY_LOG_LINE: &str = "retrying Kubernetes API request";

/// A workdir whose provider talks to the cluster through `proxy`.
fn workdir_through(proxy: &FaultProxy, tf: &crate::harness::TerraformBin) -> Workdir {
    let mut wd = Workdir::new(tf);
    let kubeconfig = wd.write_file("proxy.kubeconfig", &proxy.kubeconfig(cluster().token()));
    wd.set_env("KUBECONFIG", kubeconfig.to_str().expect("utf-8 path"));
    wd
}

/// Runs `terraform args...` with provider debug logs in `log` (fresh for this command).
fn run_logged(wd: &Workdir, args: &[&str], log: &Path) -> CmdOutput {
    let _ = std::fs::remove_file(log);
    wd.run_with_env(args, &[("TF_LOG", "debug"), ("TF_LOG_PATH", log.to_str().expect("utf-8 path"))])
}

/// Panics unless `out` failed saying `needle` (Terraform wraps diagnostics at ~78 columns,
/// so whitespace is compared collapsed).
#[track_caller]
fn assert_failed_saying(out: &CmdOutput, needle: &str) {
    assert!(!out.success(), "`{}` succeeded, expected a failure saying {needle:?}:\n{}", out.command, out.describe());
    assert!(
        collapsed(out).contains(&needle.split_whitespace().collect::<Vec<_>>().join(" ")),
        "`{}` failed without saying {needle:?}:\n{}",
        out.command,
        out.describe()
    );
}

/// Both output streams with every run of whitespace made one space.
fn collapsed(out: &CmdOutput) -> String {
    out.combined().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn retries_logged(log: &Path) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains(RETRY_LOG_LINE)).count()
}

fn configmap_names(namespace: &str) -> Vec<String> {
    let list = cluster().get_json(&format!("/api/v1/namespaces/{namespace}/configmaps")).unwrap_or(Value::Null);
    let mut names: Vec<String> = list["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    names.retain(|n| n.starts_with("cm-"));
    names.sort();
    names
}

#[test]
fn a_300_object_stack_applies_and_destroys_through_injected_faults() {
    let cluster = cluster();
    for_each_terraform(|tf| {
        let schedule = Schedule {
            every: 7,
            faults: vec![
                Fault::TooManyRequests { retry_after_secs: 1 },
                Fault::InternalError,
                Fault::Unavailable,
                Fault::ResetBefore,
                Fault::ResetAfter,
                Fault::Delay(Duration::from_millis(700)),
            ],
        };
        let proxy = FaultProxy::start(cluster, schedule, Vec::new());
        let wd = workdir_through(&proxy, tf);
        let namespace = unique_name("faults");
        let mut objects = vec![namespace_obj(&namespace, false)];
        let expected: Vec<String> = (0..299).map(|i| format!("cm-{i:03}")).collect();
        objects.extend(expected.iter().map(|name| configmap(name, Some(&namespace), &[("name", name)])));
        assert_eq!(objects.len(), 300);
        wd.write_main_tf(&stack_tf(&unique_name("faults"), "", &[Component::new("bulk").manifests(&docs(&objects))]));
        let log = wd.path().join("provider.log");

        let apply = run_logged(&wd, &["apply", "-auto-approve", "-input=false", "-no-color"], &log);
        apply.assert_success();
        let (injected, retried) = (proxy.injected_needing_retry(), retries_logged(&log));
        eprintln!("faults: apply: {} requests, injected {:?}, {retried} retries logged", proxy.requests(), proxy.injected());
        assert!(injected > 0, "the schedule injected nothing: {:?}", proxy.injected());
        assert!(
            retried as u64 >= injected,
            "every injected fault needs a retry: {injected} injected, {retried} retries logged"
        );
        assert_eq!(configmap_names(&namespace), expected, "every ConfigMap exists after apply");

        proxy.clear();
        let (code, plan) = wd.plan_detailed();
        assert_eq!(code, 0, "the second plan is empty (through faults {:?}):\n{}", proxy.injected(), plan.describe());

        proxy.clear();
        let destroy = run_logged(&wd, &["destroy", "-auto-approve", "-input=false", "-no-color"], &log);
        destroy.assert_success();
        let (injected, retried) = (proxy.injected_needing_retry(), retries_logged(&log));
        eprintln!("faults: destroy: injected {:?}, {retried} retries logged", proxy.injected());
        assert!(retried as u64 >= injected, "destroy: {injected} injected, {retried} retries logged");
        assert!(!cluster.exists(&format!("/api/v1/namespaces/{namespace}")), "the namespace is gone after destroy");
        assert!(configmap_names(&namespace).is_empty(), "no ConfigMap is left after destroy");
    });
}

/// The exchanges for `method` on a path ending with `suffix`.
fn exchanges_for(proxy: &FaultProxy, method: &str, suffix: &str) -> Vec<Exchange> {
    proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.method == method && e.path.split('?').next().unwrap_or_default().ends_with(suffix))
        .collect()
}

fn delete_namespace(namespace: &str) {
    let path = format!("/api/v1/namespaces/{namespace}");
    cluster().request("DELETE", &path, None, None);
    cluster().wait_gone(&path, Duration::from_secs(60));
}

#[test]
fn a_forbidden_apply_fails_at_once_naming_verb_and_resource() {
    let cluster = cluster();
    for_each_terraform(|tf| {
        let namespace = unique_name("denied");
        let suffix = format!("/namespaces/{namespace}/configmaps/denied");
        let rule = Rule {
            method: "PATCH".into(),
            path_suffix: suffix.clone(),
            status: 403,
            body: forbidden_body("tf-acc-admin", "patch", "configmaps", &namespace, "denied"),
        };
        let proxy = FaultProxy::start(cluster, Schedule::none(), vec![rule]);
        let wd = workdir_through(&proxy, tf);
        let objects = [namespace_obj(&namespace, false), configmap("denied", Some(&namespace), &[("a", "b")])];
        wd.write_main_tf(&stack_tf(&unique_name("denied"), "", &[Component::new("app").manifests(&docs(&objects))]));

        let apply = wd.apply();
        assert_failed_saying(&apply, "RBAC denied patch on configmaps");
        assert_failed_saying(&apply, "configmaps \"denied\" is forbidden");
        // The plan's dry runs (`dryRun=All`) are refused too, and write nothing.
        let patches: Vec<Exchange> =
            exchanges_for(&proxy, "PATCH", &suffix).into_iter().filter(|e| !e.path.contains("dryRun")).collect();
        assert_eq!(patches.len(), 1, "a 403 is not retried: {patches:?}");
        assert_eq!(patches[0].status, 403);

        let _ = wd.destroy();
        delete_namespace(&namespace);
    });
}

#[test]
fn an_invalid_object_fails_at_once_with_the_api_servers_reason() {
    let cluster = cluster();
    for_each_terraform(|tf| {
        let proxy = FaultProxy::start(cluster, Schedule::none(), Vec::new());
        let wd = workdir_through(&proxy, tf);
        let namespace = unique_name("invalid");
        // A key the API server refuses (422 Invalid): spaces are not allowed in data keys.
        let objects = [namespace_obj(&namespace, false), configmap("invalid", Some(&namespace), &[("bad key!", "x")])];
        wd.write_main_tf(&stack_tf(&unique_name("invalid"), "", &[Component::new("app").manifests(&docs(&objects))]));

        let apply = wd.apply();
        assert_failed_saying(&apply, "422");
        assert_failed_saying(&apply, "ConfigMap \"invalid\" is invalid");
        let suffix = format!("/namespaces/{namespace}/configmaps/invalid");
        let patches: Vec<Exchange> =
            exchanges_for(&proxy, "PATCH", &suffix).into_iter().filter(|e| !e.path.contains("dryRun")).collect();
        assert_eq!(patches.len(), 1, "a 422 is not retried: {patches:?}");
        assert_eq!(patches[0].status, 422);

        let _ = wd.destroy();
        delete_namespace(&namespace);
    });
}

/// A namespace resource alone: the smallest configuration that talks to the cluster.
fn namespace_tf(name: &str) -> String {
    format!("{}provider \"platform\" {{}}\n\nresource \"platform_namespace\" \"this\" {{\n  name = \"{name}\"\n}}\n", required_providers!())
}

#[test]
fn an_untrusted_certificate_is_a_tls_failure_not_an_unreachable_server() {
    let cluster = cluster();
    for_each_terraform(|tf| {
        let proxy = FaultProxy::start(cluster, Schedule::none(), Vec::new());
        let mut wd = Workdir::new(tf);
        // Trusts the cluster's CA, but the proxy presents its own certificate.
        let kubeconfig = wd.write_file("proxy.kubeconfig", &proxy.kubeconfig_trusting(cluster.token(), cluster.ca_pem()));
        wd.set_env("KUBECONFIG", kubeconfig.to_str().expect("utf-8 path"));
        wd.write_main_tf(&namespace_tf(&unique_name("tls")));

        let apply = wd.apply();
        assert_failed_saying(&apply, "TLS failure");
        assert!(!collapsed(&apply).contains("cannot reach"), "a TLS failure is not an unreachable server:\n{}", apply.describe());
        assert_eq!(proxy.requests(), 0, "no request gets past a failed handshake");
    });
}

#[test]
fn rejected_credentials_fail_at_once_and_say_what_to_update() {
    let cluster = cluster();
    for_each_terraform(|tf| {
        let proxy = FaultProxy::start(cluster, Schedule::none(), Vec::new());
        let mut wd = Workdir::new(tf);
        let kubeconfig = wd.write_file("proxy.kubeconfig", &proxy.kubeconfig("not-a-token-the-cluster-knows"));
        wd.set_env("KUBECONFIG", kubeconfig.to_str().expect("utf-8 path"));
        wd.write_main_tf(&namespace_tf(&unique_name("authn")));

        let apply = wd.apply();
        assert_failed_saying(&apply, "refused the credentials (401");
        assert_failed_saying(&apply, "`kubernetes` block");
        let rejected: Vec<Exchange> = proxy.exchanges().into_iter().filter(|e| e.status == 401).collect();
        assert!(!rejected.is_empty(), "the API server answered 401: {:?}", proxy.exchanges());
        let mut distinct: Vec<(&str, &str)> = rejected.iter().map(|e| (e.method.as_str(), e.path.as_str())).collect();
        distinct.dedup();
        assert_eq!(distinct.len(), rejected.len(), "a 401 is not retried: {rejected:?}");
    });
}

#[test]
fn a_resource_operation_reports_how_many_requests_it_retried() {
    let cluster = cluster();
    for_each_terraform(|tf| {
        // Every other request answers 503 first: each call of the operation is retried once.
        let schedule = Schedule { every: 2, faults: vec![Fault::Unavailable] };
        let proxy = FaultProxy::start(cluster, schedule, Vec::new());
        let wd = workdir_through(&proxy, tf);
        let name = unique_name("retried");
        wd.write_main_tf(&namespace_tf(&name));
        let log = wd.path().join("provider.log");

        run_logged(&wd, &["apply", "-auto-approve", "-input=false", "-no-color"], &log).assert_success();
        assert!(cluster.exists(&format!("/api/v1/namespaces/{name}")));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let reported: Vec<&str> = text.lines().filter(|l| l.contains("[INFO]") && l.contains("retried ") && l.contains(" requests")).collect();
        assert!(!reported.is_empty(), "no \"retried N requests\" line in the provider log ({} injected)", proxy.injected_needing_retry());
        eprintln!("faults: {}", reported[0]);

        run_logged(&wd, &["destroy", "-auto-approve", "-input=false", "-no-color"], &log).assert_success();
        cluster.wait_gone(&format!("/api/v1/namespaces/{name}"), Duration::from_secs(60));
    });
}
