//! `platform_stack` and other writers: `wait_for` holds the apply until what the user asked
//! for holds (set here by another writer, as a controller would), and a wait that never ends
//! times out quoting the last status; `ignore_fields` leaves fields to other managers.

use std::time::{Duration, Instant};

use crate::harness::{cluster, for_each_terraform, kubectl, unique_name, Workdir};
use crate::stack::{configmap, configmap_path, destroy_and_check_gone, docs, folded, stack_tf, Component};

#[test]
fn wait_for_holds_the_apply_until_the_condition_is_met() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-waitfor");
        let ns = unique_name("acc-waitfor-ns");
        kubectl(&["create", "namespace", &ns]).assert_success();
        let work = Workdir::new(tf);
        let config = |wait: &str, timeout: &str| {
            stack_tf(
                &stack,
                &format!("timeouts {{\n    create = \"{timeout}\"\n    update = \"{timeout}\"\n  }}"),
                &[Component::new("gate")
                    .namespace(&ns)
                    .manifests(&docs(&[configmap("gate", None, &[("a", "1")])]))
                    .block(&format!("wait_for {{\n      kind = \"ConfigMap\"\n      for  = {}\n    }}", crate::stack::hcl(wait)))],
            )
        };
        work.write_main_tf(&config("jsonpath={.data.ready}=yes", "2m"));

        // Another writer (as a controller would) sets the key a few seconds after the create.
        let path = configmap_path(&ns, "gate");
        let namespace = ns.clone();
        let writer = std::thread::spawn(move || {
            let started = Instant::now();
            while cluster().get_json(&path).is_none() {
                assert!(started.elapsed() < Duration::from_secs(120), "the stack never created the ConfigMap");
                std::thread::sleep(Duration::from_millis(200));
            }
            std::thread::sleep(Duration::from_secs(3));
            let set_at = Instant::now();
            kubectl(&["patch", "configmap", "gate", "-n", &namespace, "--type=merge", "-p", r#"{"data":{"ready":"yes"}}"#])
                .assert_success();
            set_at
        });
        let out = work.apply();
        let finished = Instant::now();
        out.assert_success();
        let set_at = writer.join().expect("writer thread");
        assert!(finished > set_at, "the apply finished before the awaited value was set");
        work.assert_plan_empty();

        // Never true: the apply times out naming the object, the wait and the last status.
        work.write_main_tf(&config("jsonpath={.data.other}=x", "4s"));
        let out = work.apply();
        let text = folded(&out);
        assert!(!out.success(), "{}", out.describe());
        assert!(
            text.contains(&format!("ConfigMap {ns}/gate: {{.data.other}}=x")) && text.contains("last status: {.data.other} is not set"),
            "{}",
            out.describe()
        );

        // A bad expression fails the plan, naming the attribute.
        work.write_main_tf(&config("phase=Running", "1m"));
        let out = work.plan();
        assert!(!out.success(), "{}", out.describe());
        let text = folded(&out);
        assert!(text.contains("Invalid wait_for") && text.contains("must start with `condition=` or `jsonpath=`"), "{}", out.describe());

        work.write_main_tf(&config("jsonpath={.data.ready}=yes", "1m"));
        work.apply().assert_success();
        destroy_and_check_gone(&work, &[configmap_path(&ns, "gate")]);
        kubectl(&["delete", "namespace", &ns, "--wait=false"]).assert_success();
    });
}

/// `ignore_fields`: a field applied at create and then left to another manager (as an
/// autoscaler owns `spec.replicas`) is neither drift nor a conflict.
#[test]
fn ignored_fields_are_left_to_other_managers() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-ignore");
        let ns = unique_name("acc-ignore-ns");
        kubectl(&["create", "namespace", &ns]).assert_success();
        let work = Workdir::new(tf);
        let config = |a: &str| {
            stack_tf(
                &stack,
                "",
                &[Component::new("app")
                    .namespace(&ns)
                    .attr("ignore_fields", "[\"data.replicas\"]")
                    .manifests(&docs(&[configmap("scaled", None, &[("a", a), ("replicas", "3")])]))],
            )
        };
        work.write_main_tf(&config("1"));
        work.apply().assert_success();
        // Another manager takes the field over.
        kubectl(&["patch", "configmap", "scaled", "-n", &ns, "--type=merge", "-p", r#"{"data":{"replicas":"5"}}"#]).assert_success();
        work.assert_plan_empty();
        // An unrelated change applies without a conflict and leaves the field alone.
        work.write_main_tf(&config("2"));
        work.apply().assert_success();
        let cm = crate::stack::live(&configmap_path(&ns, "scaled"));
        assert_eq!(cm["data"]["a"], "2");
        assert_eq!(cm["data"]["replicas"], "5", "an ignored field was written back");
        work.assert_plan_empty();
        destroy_and_check_gone(&work, &[configmap_path(&ns, "scaled")]);
        kubectl(&["delete", "namespace", &ns, "--wait=false"]).assert_success();
    });
}
