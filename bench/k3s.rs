//! `cargo bench --bench k3s` (`make bench-k3s`, `bench/k3s.sh`): `platform_k3s_cluster` on the
//! node rig of the acceptance tests (`tests/acceptance/harness/hosts.rs`: hosts in network
//! namespaces, each with its own sshd) with the k3s stand-in (`harness/k3s_standin.rs`: an
//! install script served on 127.0.0.1, and a "k3s" whose servers run a real etcd and
//! kube-apiserver). Needs root and the testenv (`make testenv`).
//!
//! Each of `BENCH_ROUNDS` rounds (default 1) starts a fresh rig of 5 hosts and times, with the
//! newest Terraform of the testenv and the release provider:
//! 1. bootstrap: one `terraform apply` of 3 servers and 2 agents on v1.29.1+k3s2;
//! 2. a no-change `terraform plan -detailed-exitcode` (must exit 0);
//! 3. the upgrade to v1.29.4+k3s1 (one `terraform apply`; servers one at a time, then agents);
//! 4. `terraform destroy` (uninstalls k3s from the 5 hosts).
//!
//! Both applies run with `TF_LOG=info TF_LOG_PATH=<file>`: the provider's `k3s rollout
//! finished` line there gives the rollout's own time (`seconds`), its SSH commands and
//! connections, the time inside SSH commands (`ssh_seconds`, including what they do on the host)
//! and the time spent waiting for nodes to become Ready (`ready_wait_seconds`).
//!
//! Prints a Markdown table and writes it into bench/README.md between the `k3s-results`
//! markers, unless `BENCH_NO_README=1`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The `terraform { required_providers }` block (the same macro as tests/acceptance/main.rs;
/// the harness uses it).
macro_rules! required_providers {
    () => {
        "terraform {\n  required_providers {\n    platform = { source = \"platform/platform\" }\n  }\n}\n"
    };
}

// The harness allows its own dead code (this bench uses a small part of it).
#[path = "../tests/acceptance/harness/mod.rs"]
mod harness;

use harness::hosts::Hosts;
use harness::k3s_config::K3sConfig;
use harness::k3s_standin::K3sStandin;
use harness::{terraform_binaries, CmdOutput, TerraformBin, Workdir};

const FROM: &str = "v1.29.1+k3s2";
const TO: &str = "v1.29.4+k3s1";
const SERVERS: [&str; 3] = ["s1", "s2", "s3"];
const AGENTS: [&str; 2] = ["a1", "a2"];
const NODES: usize = SERVERS.len() + AGENTS.len();
const START_MARKER: &str = "<!-- k3s-results:start -->";
const END_MARKER: &str = "<!-- k3s-results:end -->";

fn main() {
    let began = Instant::now();
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(1);
    let tf = terraform_binaries().into_iter().max_by_key(|t| t.version).expect("a terraform");
    // The releases and the install script server, before the first round's clock starts.
    K3sStandin::prepare();
    let load_start = load_average();
    // The commit the provider was just built from (cargo bench builds before it runs this).
    let commit = command_line("git", &["rev-parse", "--short", "HEAD"]);
    let dirty =
        !command_line("git", &["status", "--porcelain", "--", "src", "Cargo.toml", "build.rs", "proto"]).is_empty();
    let commit = if dirty { format!("`{commit}` with uncommitted changes") } else { format!("`{commit}`") };
    log(
        &began,
        &format!(
            "{rounds} round(s) with terraform {}, provider {}",
            tf.version_string,
            harness::terraform::PROVIDER_BINARY
        ),
    );

    let mut results: Vec<Round> = Vec::new();
    for round in 1..=rounds {
        results.push(run_round(&began, round, rounds, &tf));
    }

    let header = header(&tf, rounds, &load_start, &commit);
    let table = table(&results);
    println!("{header}\n\n{table}");
    if std::env::var("BENCH_NO_README").map_or(true, |v| v.is_empty() || v == "0") {
        write_readme(&header, &table);
        log(&began, "wrote the table into bench/README.md");
    }
}

/// What one round measured.
struct Round {
    bootstrap: Apply,
    plan: f64,
    upgrade: Apply,
    destroy: f64,
}

/// One `terraform apply`: its wall time and the provider's `k3s rollout finished` line.
struct Apply {
    wall: f64,
    seconds: f64,
    ssh_commands: f64,
    ssh_connections: f64,
    ssh_seconds: f64,
    ready_wait_seconds: f64,
}

fn run_round(began: &Instant, round: usize, rounds: usize, tf: &TerraformBin) -> Round {
    log(began, &format!("round {round}/{rounds}: starting a rig of {NODES} hosts"));
    let hosts = Hosts::start(NODES);
    let work = Workdir::without_cluster(tf);

    work.write_main_tf(&hcl(&hosts, FROM));
    let bootstrap = timed_apply(&work, "bootstrap");
    check_nodes(&work, FROM);
    log(
        began,
        &format!("round {round}/{rounds}: bootstrap {:.1} s (rollout {:.1} s)", bootstrap.wall, bootstrap.seconds),
    );

    let (plan, out) = timed(|| work.plan_detailed().1);
    if out.code() != 0 {
        panic!("the plan after the bootstrap is not empty (exit code {}):\n{}", out.code(), out.describe());
    }
    log(began, &format!("round {round}/{rounds}: no-change plan {plan:.2} s"));

    work.write_main_tf(&hcl(&hosts, TO));
    let upgrade = timed_apply(&work, "upgrade");
    check_nodes(&work, TO);
    log(began, &format!("round {round}/{rounds}: upgrade {:.1} s (rollout {:.1} s)", upgrade.wall, upgrade.seconds));

    let (destroy, out) = timed(|| work.destroy());
    out.assert_success();
    let left: Vec<&str> =
        hosts.hosts().iter().filter(|h| h.root_dir().join("usr/local/bin/k3s").exists()).map(|h| h.name()).collect();
    assert!(left.is_empty(), "k3s still installed after destroy on {left:?}");
    log(began, &format!("round {round}/{rounds}: destroy {destroy:.1} s"));
    Round { bootstrap, plan, upgrade, destroy }
}

/// The cluster: 3 servers (the first bootstraps) and 2 agents on the rig's first 5 hosts.
fn hcl(hosts: &Hosts, version: &str) -> String {
    let mut config = K3sConfig::new(hosts, &[("s1", 0), ("s2", 1), ("s3", 2)], &[("a1", 3), ("a2", 4)]);
    config.name = "bench".to_string();
    config.version = version.to_string();
    config.hcl()
}

/// Every node in the `nodes` output is Ready with `version`.
fn check_nodes(work: &Workdir, version: &str) {
    let nodes = work.output_json()["nodes"]["value"].clone();
    for key in SERVERS.iter().chain(AGENTS.iter()) {
        let node = &nodes[*key];
        assert!(node["version"] == version && node["ready"] == true, "node {key} not Ready with {version}: {nodes}");
    }
}

fn timed(f: impl FnOnce() -> CmdOutput) -> (f64, CmdOutput) {
    let started = Instant::now();
    let out = f();
    (started.elapsed().as_secs_f64(), out)
}

/// `terraform apply` with the provider's INFO log in a file; the rollout line parsed.
fn timed_apply(work: &Workdir, what: &str) -> Apply {
    let log_path = work.root().join(format!("{what}.log"));
    let log_str = log_path.to_string_lossy().into_owned();
    let (wall, out) = timed(|| {
        work.run_with_env(
            &["apply", "-auto-approve", "-input=false", "-no-color"],
            &[("TF_LOG", "info"), ("TF_LOG_PATH", &log_str)],
        )
    });
    out.assert_success();
    let text = std::fs::read_to_string(&log_path).unwrap_or_else(|e| panic!("read {}: {e}", log_path.display()));
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("k3s rollout finished")).collect();
    let [line] = lines[..] else {
        panic!("{what}: expected one `k3s rollout finished` line in {}, found {}", log_path.display(), lines.len())
    };
    let field = |key: &str| {
        log_field(line, key).unwrap_or_else(|| panic!("{what}: no numeric field {key} in the rollout line: {line}"))
    };
    Apply {
        wall,
        seconds: field("seconds"),
        ssh_commands: field("ssh_commands"),
        ssh_connections: field("ssh_connections"),
        ssh_seconds: field("ssh_seconds"),
        ready_wait_seconds: field("ready_wait_seconds"),
    }
}

/// A numeric field of a provider log line as Terraform writes it (`key=value`, or
/// `"key":value` when the log is JSON).
fn log_field(line: &str, key: &str) -> Option<f64> {
    let plain = format!(" {key}=");
    let json = format!("\"{key}\":");
    let rest = line
        .find(&plain)
        .map(|at| &line[at + plain.len()..])
        .or_else(|| line.find(&json).map(|at| &line[at + json.len()..]))?;
    let value: String = rest.trim_start_matches('"').chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    value.parse().ok()
}

fn log(began: &Instant, message: &str) {
    eprintln!("bench-k3s: [+{:.0} s] {message}", began.elapsed().as_secs_f64());
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// The machine line, in the style of bench/run.sh.
fn header(tf: &TerraformBin, rounds: usize, load_start: &str, commit: &str) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("?".to_string(), |kib| format!("{:.1}", kib / 1_048_576.0));
    format!(
        "Measured {} at commit {commit} on {cores} cores ({cpu}), {mem_gib} GiB memory,\n{}; load average {load_start} at the start and {} at the end.\nTerraform v{}, release provider, k3s stand-in {FROM} → {TO} on a rig of {NODES} hosts (3 servers, 2 agents), {rounds} round{}.",
        command_line("date", &["-u", "+%Y-%m-%d"]),
        command_line("uname", &["-sr"]),
        load_average(),
        tf.version_string,
        if rounds == 1 { "" } else { "s" },
    )
}

/// `median` alone for one round, else `median (min–max)`.
fn cell(values: &[f64], decimals: usize) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    if n == 1 || v[0] == v[n - 1] {
        format!("{median:.decimals$}")
    } else {
        format!("{median:.decimals$} ({:.decimals$}–{:.decimals$})", v[0], v[n - 1])
    }
}

fn table(rounds: &[Round]) -> String {
    let col = |f: &dyn Fn(&Round) -> f64, decimals: usize| cell(&rounds.iter().map(f).collect::<Vec<_>>(), decimals);
    let apply_row = |name: &str, pick: &dyn Fn(&Round) -> &Apply, per_node: bool| {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            col(&|r| pick(r).wall, 1),
            col(&|r| pick(r).seconds, 1),
            col(&|r| pick(r).ssh_commands, 0),
            col(&|r| pick(r).ssh_connections, 0),
            col(&|r| pick(r).ssh_seconds, 1),
            col(&|r| pick(r).ready_wait_seconds, 1),
            col(&|r| pick(r).seconds - pick(r).ssh_seconds - pick(r).ready_wait_seconds, 1),
            col(&|r| pick(r).wall - pick(r).seconds, 1),
            if per_node { col(&|r| pick(r).wall / NODES as f64, 1) } else { "—".into() },
        )
    };
    let dash = "— | — | — | — | — | — | —";
    [
        "| step | wall (s) | rollout in the provider (s) | SSH commands | SSH connections | in SSH commands (s) | waiting for Ready (s) | rollout − SSH − wait (s) | wall − rollout (s) | per node (s) |".to_string(),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|".to_string(),
        apply_row(&format!("bootstrap: `terraform apply`, {FROM}, 3 servers + 2 agents"), &|r| &r.bootstrap, false),
        format!("| no-change `terraform plan` (refresh) | {} | {dash} | — |", col(&|r| r.plan, 2)),
        apply_row(&format!("upgrade: `terraform apply`, {FROM} → {TO}"), &|r| &r.upgrade, true),
        format!("| `terraform destroy` (uninstall, 5 nodes) | {} | {dash} | — |", col(&|r| r.destroy, 1)),
    ]
    .join("\n")
}

fn write_readme(header: &str, table: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/README.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let block = format!("{START_MARKER}\n{header}\n\n{table}\n{END_MARKER}");
    let text = match (text.find(START_MARKER), text.find(END_MARKER)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{block}{}", &text[..start], &text[end + END_MARKER.len()..])
        }
        _ => format!("{}\n\n## Results: platform_k3s_cluster on the node rig\n\n{block}\n", text.trim_end()),
    };
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
