//! Plan-time behaviour of `platform_k3s_cluster`: the spec read from configuration, the
//! refusals, and the per-node plan.

use super::*;
use crate::framework::diagnostics::Severity;

fn node(host: &str, bootstrap: bool) -> Value {
    Value::object([
        ("host", Value::string(host)),
        ("bootstrap", Value::Bool(bootstrap)),
        ("labels", Value::Null),
        ("config", Value::Null),
    ])
}

fn agent(host: &str) -> Value {
    Value::object([("host", Value::string(host)), ("labels", Value::Null), ("config", Value::Null)])
}

pub(super) fn base() -> Value {
    Value::object([
        ("name", Value::string("home")),
        ("version", Value::string("v1.29.1+k3s2")),
        ("agent_version", Value::Null),
        ("api_endpoint", Value::string("https://10.0.0.11:6443")),
        ("server_config", Value::string("disable:\n- traefik\n")),
        ("agent_config", Value::Null),
        ("token_wo", Value::Null),
        ("token_wo_version", Value::Null),
        ("allow_even_servers", Value::Null),
        ("on_destroy", Value::Null),
        (
            "servers",
            Value::map([
                ("s1", node("10.0.0.11", true)),
                ("s2", node("10.0.0.12", false)),
                ("s3", node("10.0.0.13", false)),
            ]),
        ),
        ("agents", Value::map([("a1", agent("10.0.0.21"))])),
        (
            "ssh",
            Value::object([
                ("user", Value::Null),
                ("port", Value::Null),
                ("private_key_wo", Value::Null),
                ("private_key_path", Value::string("/keys/id")),
                ("use_agent", Value::Null),
                ("known_hosts", Value::string("10.0.0.11 ssh-ed25519 AAAA")),
            ]),
        ),
        ("install", Value::Null),
        ("upgrade", Value::Null),
        ("timeouts", Value::Null),
        ("id", Value::Null),
        ("connection", Value::Null),
        ("kubeconfig", Value::Null),
        ("nodes", Value::Null),
    ])
}

fn errors(config: &Value) -> Vec<(String, String)> {
    let mut diags = Diagnostics::new();
    config::check(config, &mut diags);
    config::check_ssh(config, &mut diags);
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.attribute.as_ref().map(|a| a.to_string()).unwrap_or_default(), d.summary.clone()))
        .collect()
}

fn with(mut config: Value, name: &str, value: Value) -> Value {
    config.set_attr(name, value);
    config
}

#[test]
fn a_valid_configuration_becomes_a_spec_with_the_bootstrap_server_first() {
    let mut diags = Diagnostics::new();
    let spec = config::check(&base(), &mut diags).expect("valid");
    assert!(diags.is_empty(), "{diags:?}");
    let order: Vec<&str> = spec.nodes.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(order, ["s1", "s2", "s3", "a1"]);
    let yaml = spec.config_yaml(spec.bootstrap(), None);
    assert!(
        yaml.contains("cluster-init: true") && yaml.contains("node-name: s1") && yaml.contains("- 10.0.0.11"),
        "{yaml}"
    );
    assert!(!yaml.contains("token"), "{yaml}");
    let joining = spec.config_yaml(spec.node("a1").unwrap(), Some("K10abc::server:secret"));
    assert!(joining.contains("server: https://10.0.0.11:6443") && joining.contains("token: K10abc::server:secret"));
    let planned = planned_nodes(&spec);
    assert_eq!(planned["a1"].version, "v1.29.1+k3s2");
    assert_eq!(planned["s2"].role, Role::Server);
}

#[test]
fn refuses_bad_input_naming_the_attribute() {
    let cases = [
        (with(base(), "version", Value::string("1.29")), "version", "Invalid k3s version"),
        (with(base(), "agent_version", Value::string("v1.30.2+k3s1")), "agent_version", "Agents newer than servers"),
        (with(base(), "api_endpoint", Value::string("http://x:6443")), "api_endpoint", "Invalid API endpoint"),
        (with(base(), "server_config", Value::string("- a\n- b\n")), "server_config", "Invalid k3s config"),
        (with(base(), "server_config", Value::string("a: [\n")), "server_config", "Invalid k3s config"),
        (with(base(), "server_config", Value::string("token: x\n")), "server_config", "Flag set by the provider"),
        (
            with(base(), "servers", Value::map([("s1", node("10.0.0.11", true)), ("s2", node("10.0.0.12", false))])),
            "servers",
            "Even number of servers",
        ),
        (with(base(), "servers", Value::map([("s1", node("10.0.0.11", false))])), "servers", "One bootstrap server"),
        (with(base(), "on_destroy", Value::string("wipe")), "on_destroy", "Invalid on_destroy"),
    ];
    for (config, attribute, summary) in cases {
        let found = errors(&config);
        assert!(found.iter().any(|(a, s)| a == attribute && s == summary), "{attribute}/{summary}: {found:?}");
    }
    let mut even =
        with(base(), "servers", Value::map([("s1", node("10.0.0.11", true)), ("s2", node("10.0.0.12", false))]));
    even.set_attr("allow_even_servers", Value::Bool(true));
    assert!(errors(&even).is_empty());
    let mut critical = base();
    let mut s2 = node("10.0.0.12", false);
    s2.set_attr("config", Value::string("cluster-cidr: 10.99.0.0/16\n"));
    critical.set_attr(
        "servers",
        Value::map([("s1", node("10.0.0.11", true)), ("s2", s2), ("s3", node("10.0.0.13", false))]),
    );
    let found = errors(&critical);
    assert!(
        found.iter().any(|(a, s)| a == "servers[\"s2\"].config" && s == "Critical flag differs between servers"),
        "{found:?}"
    );
    let mut no_keys = base();
    let mut ssh = no_keys.get_attr("ssh").unwrap().clone();
    ssh.set_attr("private_key_path", Value::Null);
    ssh.set_attr("known_hosts", Value::string(""));
    no_keys.set_attr("ssh", ssh);
    let found = errors(&no_keys);
    assert!(found.iter().any(|(a, s)| a == "ssh" && s == "No SSH credentials"), "{found:?}");
    assert!(found.iter().any(|(a, s)| a == "ssh.known_hosts" && s == "Host keys are checked"), "{found:?}");
}

fn prior_state(version: &str) -> Value {
    let spec = config::check(&base(), &mut Diagnostics::new()).unwrap();
    let mut nodes = planned_nodes(&spec);
    for record in nodes.values_mut() {
        record.version = version.to_string();
    }
    let mut state = with(base(), "version", Value::string(version));
    state.set_attr("nodes", nodes_value(&nodes));
    state
}

fn change_errors(prior: &Value, config: &Value) -> Vec<String> {
    let resource = K3sClusterResource::new(Arc::new(Platform::default()));
    let spec = config::check(config, &mut Diagnostics::new()).expect("valid config");
    let mut diags = Diagnostics::new();
    resource.check_change(prior, &spec, config, &mut diags);
    diags.iter().map(|d| format!("{}: {}", d.summary, d.detail)).collect()
}

#[test]
fn refuses_changes_k3s_cannot_make() {
    let prior = prior_state("v1.29.1+k3s2");
    assert!(change_errors(&prior, &with(base(), "version", Value::string("v1.30.2+k3s1"))).is_empty());
    let skipped = change_errors(&prior, &with(base(), "version", Value::string("v1.31.0+k3s1")));
    assert!(skipped.iter().any(|e| e.contains("v1.29 → v1.31") && e.contains("upgrade to v1.30 first")), "{skipped:?}");
    let down = change_errors(&prior_state("v1.29.4+k3s1"), &base());
    assert!(down.iter().any(|e| e.contains("downgrade")), "{down:?}");
    let moved = with(
        base(),
        "servers",
        Value::map([
            ("s1", node("10.0.0.11", false)),
            ("s2", node("10.0.0.12", true)),
            ("s3", node("10.0.0.13", false)),
        ]),
    );
    assert!(change_errors(&prior, &moved).iter().any(|e| e.starts_with("Bootstrap server changed")));
    let token = with(base(), "token_wo_version", Value::number(2));
    assert!(change_errors(&prior, &token).iter().any(|e| e.contains("k3s token rotate")));
    let mut one = with(base(), "servers", Value::map([("s1", node("10.0.0.11", true))]));
    one.set_attr("agents", Value::Null);
    let quorum = change_errors(&prior, &one);
    assert!(quorum.iter().any(|e| e.starts_with("Removing servers would break quorum")), "{quorum:?}");
}
