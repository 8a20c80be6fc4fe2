//! `platform_dns_record` against bad input, faults and secrets, with real Terraform and the
//! rig's real servers (`harness::dns`):
//!
//! - every plan-time check fails the plan with a diagnostic on its attribute, read from
//!   `plan -json` (the range must cover the attribute's line), without contacting a server;
//! - a wrong TSIG secret, an unreachable server, a silent server and a zone the server does
//!   not serve each fail apply, soon, saying which it was, and write nothing;
//! - connection resets, SERVFAIL and HTTP 503/429 from the fault proxy
//!   (`harness::dns_fault_proxy`) are retried until the change lands, and a retry never
//!   skips the check that the set is still what the plan saw;
//! - TSIG secrets and API keys of the provider's `dns` blocks appear in no trace log, state
//!   or plan JSON.

use std::time::{Duration, Instant};

use crate::harness::dns::{self, DnsKind, DnsServer};
use crate::harness::dns_fault_proxy::{DnsFaultProxy, Schedule};
use crate::harness::{for_each_terraform, unique_name, CmdOutput, Workdir};

const ZONE: &str = "acc.test";
/// A valid base64 TSIG secret no server knows, for configurations that contact nothing.
const UNUSED_SECRET: &str = "c2VjcmV0LW5vYm9keS1rbm93cw==";
/// What a failure that was not retried may take, Terraform's own start included.
const PROMPT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- configurations

/// A provider `dns` block named `name` for an RFC 2136 server at `server` (key `tf-key.`).
fn rfc2136(name: &str, server: &str, algorithm: &str, secret: &str) -> String {
    format!(
        "  dns {{\n    name = \"{name}\"\n    rfc2136 {{\n      server = \"{server}\"\n      key_name = \"tf-key.\"\n      \
         key_algorithm = \"{algorithm}\"\n      key_secret = \"{secret}\"\n    }}\n  }}\n"
    )
}

/// A provider `dns` block named `name` for a PowerDNS API at `url`.
fn powerdns(name: &str, url: &str, api_key: &str) -> String {
    format!(
        "  dns {{\n    name = \"{name}\"\n    powerdns {{\n      url = \"{url}\"\n      api_key = \"{api_key}\"\n    }}\n  }}\n"
    )
}

/// The `dns` block named `name` for a rig server, reached at `address` (the server's own
/// address and URL, or a fault proxy's).
fn rig_block(name: &str, server: &DnsServer, address: Option<&str>) -> String {
    match server.kind() {
        DnsKind::Bind | DnsKind::Knot => {
            let at = address.map(str::to_string).unwrap_or_else(|| server.address());
            rfc2136(name, &at, server.tsig_algorithm(), server.tsig_secret())
        }
        DnsKind::PowerDns => powerdns(name, address.unwrap_or(server.api_url()), server.api_key()),
    }
}

fn provider(blocks: &[String]) -> String {
    format!("{}provider \"platform\" {{\n{}}}\n", required_providers!(), blocks.concat())
}

/// `resource "platform_dns_record" "<label>"` in `zone`; `dns` omitted when `None`;
/// `extra` is more body lines.
fn record(label: &str, dns: Option<&str>, zone: &str, name: &str, rtype: &str, records: &[&str], extra: &str) -> String {
    let records: Vec<String> = records.iter().map(|r| format!("{r:?}")).collect();
    let dns = dns.map(|d| format!("  dns = \"{d}\"\n")).unwrap_or_default();
    format!(
        "resource \"platform_dns_record\" \"{label}\" {{\n{dns}  zone = \"{zone}\"\n  name = \"{name}\"\n  type = \"{rtype}\"\n  \
         records = [{}]\n{extra}}}\n",
        records.join(", ")
    )
}

/// A port of 127.0.0.1 nothing listens on (at the time of asking).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

// ---------------------------------------------------------------- checks

/// Both output streams with every run of whitespace made one space (Terraform wraps
/// diagnostics at ~78 columns).
fn collapsed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Panics unless `out` failed saying `needle` (whitespace compared collapsed).
#[track_caller]
fn assert_failed_saying(out: &CmdOutput, needle: &str) {
    assert!(!out.success(), "`{}` succeeded, expected a failure saying {needle:?}:\n{}", out.command, out.describe());
    assert!(
        collapsed(&out.combined()).contains(&collapsed(needle)),
        "`{}` failed without saying {needle:?}:\n{}",
        out.command,
        out.describe()
    );
}

/// Runs `work` and returns what it printed and how long it took.
fn timed(work: impl FnOnce() -> CmdOutput) -> (CmdOutput, Duration) {
    let started = Instant::now();
    let out = work();
    (out, started.elapsed())
}

/// `secret` with its first character changed: same length, same alphabet, another key.
fn wrong_secret(secret: &str) -> String {
    let first = if secret.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", &secret[1..])
}

// ---------------------------------------------------------------- 1. plan-time checks

/// An error diagnostic of `plan -json`: its texts and the lines its range covers.
#[derive(Debug)]
struct Diag {
    summary: String,
    detail: String,
    lines: Option<(u64, u64)>,
}

impl Diag {
    fn says(&self, needle: &str) -> bool {
        collapsed(&format!("{} {}", self.summary, self.detail)).contains(needle)
    }

    fn covers(&self, line: u64) -> bool {
        self.lines.is_some_and(|(start, end)| start <= line && line <= end)
    }
}

fn error_diagnostics(out: &CmdOutput) -> Vec<Diag> {
    out.stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["type"] == "diagnostic" && message["diagnostic"]["severity"] == "error")
        .map(|message| {
            let d = &message["diagnostic"];
            let line = |end: &str| d["range"][end]["line"].as_u64();
            Diag {
                summary: d["summary"].as_str().unwrap_or_default().to_string(),
                detail: d["detail"].as_str().unwrap_or_default().to_string(),
                lines: line("start").zip(line("end")),
            }
        })
        .collect()
}

/// One bad input: the first line containing `at` after the first line containing `within`
/// is the attribute the diagnostic must point at, and its texts must say all of `says`.
struct Bad {
    within: String,
    at: &'static str,
    says: Vec<String>,
}

fn bad(within: &str, at: &'static str, says: &[&str]) -> Bad {
    Bad { within: within.to_string(), at, says: says.iter().map(|s| s.to_string()).collect() }
}

/// `terraform plan -json` of `config` fails with exactly the diagnostics of `cases` (each at
/// least once, nothing else).
#[track_caller]
fn assert_plan_diagnoses(work: &Workdir, config: &str, cases: &[Bad]) {
    work.write_main_tf(config);
    let out = work.run(&["plan", "-json", "-input=false", "-no-color"]);
    assert!(!out.success(), "plan succeeded; expected {} errors:\n{}", cases.len(), out.describe());
    let diags = error_diagnostics(&out);
    let numbered: String = config.lines().enumerate().map(|(i, l)| format!("{:>3} {l}\n", i + 1)).collect();
    let mut claimed = vec![false; diags.len()];
    for case in cases {
        let lines: Vec<&str> = config.lines().collect();
        let start = lines.iter().position(|l| l.contains(&case.within)).unwrap_or_else(|| panic!("no {:?} in the config", case.within));
        let offset = lines[start..].iter().position(|l| l.contains(case.at)).unwrap_or_else(|| panic!("no {:?} in {:?}", case.at, case.within));
        let line = (start + offset + 1) as u64;
        let found: Vec<usize> = (0..diags.len()).filter(|&i| diags[i].covers(line) && case.says.iter().all(|s| diags[i].says(s))).collect();
        assert!(
            !found.is_empty(),
            "no error at line {line} ({:?} in {:?}) saying {:?}; errors: {diags:#?}\nconfig:\n{numbered}",
            case.at,
            case.within,
            case.says
        );
        for i in found {
            claimed[i] = true;
        }
    }
    let unexpected: Vec<&Diag> = diags.iter().zip(&claimed).filter(|(_, c)| !**c).map(|(d, _)| d).collect();
    assert!(unexpected.is_empty(), "errors nobody expected: {unexpected:#?}\nconfig:\n{numbered}");
}

/// Every check that needs no server fails the plan on its own attribute, in three plans
/// (a provider error stops Terraform before it validates resources, and `dns` names are
/// checked only when planning, after validation). Every server named is a proxy in front
/// of a closed port, which must see no connection: none of it contacts a server.
#[test]
fn dns_faults_plan_time_checks_name_their_attribute() {
    let watch = DnsFaultProxy::dns(&format!("127.0.0.1:{}", closed_port()), Schedule::default());
    let nowhere = watch.address().to_string();
    let good_provider = provider(&[rfc2136("lan", &nowhere, "hmac-sha256", UNUSED_SECRET)]);
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let n = unique_name("bad");
        let r = |label: &str, name: &str, rtype: &str, records: &[&str], extra: &str| {
            record(label, Some("lan"), ZONE, name, rtype, records, extra)
        };
        let header = |label: &str| format!("\"platform_dns_record\" \"{label}\"");

        // Resources: validation of each is independent, so all errors come out of one plan.
        let connection = |lines: &str| format!("  connection = {{\n    server = \"{nowhere}\"\n{lines}  }}\n");
        let resources = [
            r("soa", &n, "SOA", &["ns.acc.test. hostmaster.acc.test. 1 2 3 4 5"], ""),
            r("cname_apex", "@", "CNAME", &["ingress.example.com."], ""),
            r("cname_two", &n, "CNAME", &["a.example.com.", "b.example.com."], ""),
            r("bad_ipv4", &n, "A", &["10.0.0.300"], ""),
            r("bad_ipv6", &n, "AAAA", &["2001:db8::g"], ""),
            r("ttl_negative", &n, "A", &["10.0.0.1"], "  ttl = -1\n"),
            r("ttl_huge", &n, "A", &["10.0.0.1"], "  ttl = 2147483648\n"),
            r("bad_mx", &n, "MX", &["mail.example.com."], ""),
            r("bad_srv", &n, "SRV", &["5060 sip.example.com."], ""),
            r("bad_caa", &n, "CAA", &["0 issue"], ""),
            r("outside", "x.example.org.", "A", &["10.0.0.1"], ""),
            record("unknown_key", None, ZONE, &n, "A", &["10.0.0.1"], &connection("    port = \"53\"\n")),
            record(
                "md5",
                None,
                ZONE,
                &n,
                "A",
                &["10.0.0.1"],
                &connection(&format!("    key_name = \"tf-key.\"\n    key_algorithm = \"hmac-md5\"\n    key_secret = \"{UNUSED_SECRET}\"\n")),
            ),
        ];
        let config = format!("{good_provider}{}", resources.concat());
        assert_plan_diagnoses(
            &work,
            &config,
            &[
                bad(&header("soa"), "type =", &["Unsupported record type", "\"SOA\""]),
                bad(&header("cname_apex"), "name =", &["CNAME at the zone apex"]),
                bad(&header("cname_two"), "records =", &["Several CNAME targets"]),
                bad(&header("bad_ipv4"), "records =", &["Invalid record", "\"10.0.0.300\" is not an IPv4 address"]),
                bad(&header("bad_ipv6"), "records =", &["Invalid record", "\"2001:db8::g\" is not an IPv6 address"]),
                bad(&header("ttl_negative"), "ttl =", &["Invalid TTL", "not -1"]),
                bad(&header("ttl_huge"), "ttl =", &["Invalid TTL", "not 2147483648"]),
                bad(&header("bad_mx"), "records =", &["Invalid record", "MX"]),
                bad(&header("bad_srv"), "records =", &["Invalid record", "SRV"]),
                bad(&header("bad_caa"), "records =", &["Invalid record", "CAA"]),
                bad(&header("outside"), "name =", &["Invalid record name", "not inside the zone"]),
                bad(&header("unknown_key"), "port =", &["Invalid DNS connection", "no key \"port\""]),
                bad(&header("md5"), "key_algorithm =", &["Invalid DNS connection", "\"hmac-md5\" is not supported"]),
            ],
        );

        // The provider's own blocks: both are reported, each on its field.
        let bad_provider = provider(&[
            rfc2136("bad-secret", &nowhere, "hmac-sha256", "not base64!"),
            rfc2136("bad-algorithm", &nowhere, "hmac-foo", UNUSED_SECRET),
        ]);
        let config = format!("{bad_provider}{}", record("ok", Some("bad-secret"), ZONE, &n, "A", &["10.0.0.1"], ""));
        assert_plan_diagnoses(
            &work,
            &config,
            &[
                bad("name = \"bad-secret\"", "key_secret =", &["Invalid DNS connection", "not valid base64"]),
                bad("name = \"bad-algorithm\"", "key_algorithm =", &["Invalid DNS connection", "unknown TSIG algorithm \"hmac-foo\""]),
            ],
        );

        // A `dns` name no block has, found when planning, naming the blocks there are.
        let config = format!("{good_provider}{}", record("nope", Some("nope"), ZONE, &n, "A", &["10.0.0.1"], ""));
        assert_plan_diagnoses(
            &work,
            &config,
            &[bad(&header("nope"), "dns =", &["Unknown DNS server", "no `dns` block named \"nope\"", "\"lan\""])],
        );
    });
    assert_eq!(watch.counts().connections, 0, "planning bad input contacted the server");
}

// ---------------------------------------------------------------- 2.–4. failures that are final

/// A TSIG secret the server does not have (valid base64, right key name): refused as bad
/// credentials at once, nothing written, and the wrong secret not echoed.
fn wrong_tsig_secret(server: &DnsServer) {
    for_each_terraform(|tf| {
        let name = unique_name("badsig");
        let wrong = wrong_secret(server.tsig_secret());
        let work = Workdir::without_cluster(tf);
        let block = rfc2136("lan", &server.address(), server.tsig_algorithm(), &wrong);
        work.write_main_tf(&format!("{}{}", provider(&[block]), record("this", Some("lan"), ZONE, &name, "A", &["10.21.0.1"], "")));
        let (out, took) = timed(|| work.apply());
        assert_failed_saying(&out, &format!("{} refused the credentials", server.address()));
        assert_failed_saying(&out, "the signature does not verify (wrong TSIG secret or algorithm)");
        assert!(took < PROMPT, "a refused signature is final, yet apply took {took:?}:\n{}", out.describe());
        assert!(!out.combined().contains(&wrong), "the TSIG secret is in the output:\n{}", out.describe());
        assert!(server.dig(&name, "A").is_empty(), "a refused update wrote {name}");
    });
}

#[test]
fn dns_faults_wrong_tsig_secret_bind() {
    wrong_tsig_secret(dns::bind());
}

#[test]
fn dns_faults_wrong_tsig_secret_knot() {
    wrong_tsig_secret(dns::knot());
}

/// Nothing listens at `server`: apply retries until `timeouts.create` (6 s), then says it
/// cannot reach the server and how often it tried.
#[test]
fn dns_faults_unreachable_server_gives_up_within_the_timeout() {
    for_each_terraform(|tf| {
        let address = format!("127.0.0.1:{}", closed_port());
        let work = Workdir::without_cluster(tf);
        let timeouts = "  timeouts {\n    create = \"6s\"\n  }\n";
        let block = rfc2136("lan", &address, "hmac-sha256", UNUSED_SECRET);
        work.write_main_tf(&format!(
            "{}{}",
            provider(&[block]),
            record("this", Some("lan"), ZONE, &unique_name("unreachable"), "A", &["10.22.0.1"], timeouts)
        ));
        let (out, took) = timed(|| work.apply());
        assert_failed_saying(&out, &format!("cannot reach {address}"));
        assert_failed_saying(&out, "outlast the 6s timeout");
        let text = collapsed(&out.combined());
        let attempts: u32 = regex::Regex::new(r"gave up after (\d+) attempts")
            .unwrap()
            .captures(&text)
            .and_then(|c| c[1].parse().ok())
            .unwrap_or_else(|| panic!("no \"gave up after N attempts\":\n{}", out.describe()));
        assert!(attempts >= 3, "only {attempts} attempts in 6 s:\n{}", out.describe());
        assert!(took < Duration::from_secs(60), "apply with a 6 s create timeout took {took:?}");
    });
}

/// A server that accepts the connection and never answers: the create timeout (6 s) still
/// ends the apply.
#[test]
fn dns_faults_silent_server_times_out() {
    let server = dns::bind();
    for_each_terraform(|tf| {
        let proxy = DnsFaultProxy::dns(&server.address(), Schedule { stalls: 1000, ..Schedule::default() });
        let name = unique_name("silent");
        let work = Workdir::without_cluster(tf);
        let timeouts = "  timeouts {\n    create = \"6s\"\n  }\n";
        work.write_main_tf(&format!(
            "{}{}",
            provider(&[rig_block("lan", server, Some(proxy.address()))]),
            record("this", Some("lan"), ZONE, &name, "A", &["10.23.0.1"], timeouts)
        ));
        let (out, took) = timed(|| work.apply());
        assert_failed_saying(&out, "timed out after 6s");
        assert_failed_saying(&out, "raise this resource's `timeouts`");
        assert!(took < Duration::from_secs(60), "apply with a 6 s create timeout took {took:?}");
        assert!(proxy.counts().stalls >= 1, "the proxy swallowed nothing: {:?}", proxy.counts());
        assert!(server.dig(&name, "A").is_empty());
    });
}

/// A zone the server does not serve: apply fails at once naming the zone.
fn zone_not_served(server: &DnsServer) {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        work.write_main_tf(&format!(
            "{}{}",
            provider(&[rig_block("lan", server, None)]),
            record("this", Some("lan"), "not-served.test", &unique_name("nozone"), "A", &["10.24.0.1"], "")
        ));
        let (out, took) = timed(|| work.apply());
        assert_failed_saying(&out, "does not serve the zone not-served.test.");
        assert_failed_saying(&out, "Check `zone`");
        assert!(took < PROMPT, "a zone not served is final, yet apply took {took:?}:\n{}", out.describe());
    });
}

#[test]
fn dns_faults_zone_not_served_bind() {
    zone_not_served(dns::bind());
}

#[test]
fn dns_faults_zone_not_served_powerdns() {
    zone_not_served(dns::powerdns());
}

// ---------------------------------------------------------------- 5. transient faults

/// Creates, re-plans and destroys one A set per `dns` block in `proxies` (its name, and the
/// proxy it reaches `server` through); each must succeed through the faults its proxy injects.
fn create_through(tf: &crate::harness::TerraformBin, server: &DnsServer, proxies: &[(&str, &DnsFaultProxy)]) {
    let names: Vec<String> = proxies.iter().map(|(block, _)| unique_name(block)).collect();
    let blocks: Vec<String> = proxies
        .iter()
        .map(|(block, proxy)| match server.kind() {
            DnsKind::PowerDns => rig_block(block, server, Some(&proxy.url())),
            _ => rig_block(block, server, Some(proxy.address())),
        })
        .collect();
    let resources: Vec<String> = proxies
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(i, ((block, _), name))| record(&format!("r{i}"), Some(block), ZONE, name, "A", &["10.25.0.1", "10.25.0.2"], ""))
        .collect();
    let work = Workdir::without_cluster(tf);
    work.write_main_tf(&format!("{}{}", provider(&blocks), resources.concat()));
    work.apply().assert_success();
    for name in &names {
        assert_eq!(server.dig(name, "A"), vec!["10.25.0.1", "10.25.0.2"], "{name} after apply through faults");
    }
    work.assert_plan_empty();
    work.destroy().assert_success();
    for name in &names {
        assert!(server.dig(name, "A").is_empty(), "{name} still there after destroy");
    }
}

/// Three connection resets, then three SERVFAIL answers (unsigned, as a middlebox sends
/// them): both are retried and the sets land.
#[test]
fn dns_faults_resets_and_servfails_are_retried_bind() {
    let server = dns::bind();
    for_each_terraform(|tf| {
        let resets = DnsFaultProxy::dns(&server.address(), Schedule { resets: 3, ..Schedule::default() });
        let servfails = DnsFaultProxy::dns(&server.address(), Schedule { servfails: 3, ..Schedule::default() });
        create_through(tf, server, &[("resets", &resets), ("servfails", &servfails)]);
        let (r, s) = (resets.counts(), servfails.counts());
        assert_eq!((r.resets, r.servfails), (3, 0), "{r:?}");
        assert_eq!((s.resets, s.servfails), (0, 3), "{s:?}");
        assert!(r.forwarded > 0 && s.forwarded > 0, "{r:?} {s:?}");
    });
}

/// The PowerDNS API answering 503 twice, then 429 twice: retried, and the set lands.
#[test]
fn dns_faults_http_503_and_429_are_retried_powerdns() {
    let server = dns::powerdns();
    for_each_terraform(|tf| {
        let proxy = DnsFaultProxy::http(server.api_url(), Schedule { http_503: 2, http_429: 2, ..Schedule::default() });
        create_through(tf, server, &[("api", &proxy)]);
        let counts = proxy.counts();
        assert_eq!((counts.http_503, counts.http_429), (2, 2), "{counts:?}");
        assert!(counts.forwarded > 0, "{counts:?}");
    });
}

/// A planned change whose set someone else replaces before apply is refused, not
/// overwritten: first as it is, then with the apply's first request meeting a transient
/// `fault` (retried): a retry must not skip the check that the set is what the plan saw.
fn change_check_survives_a_retry(server: &DnsServer, fault: Schedule) {
    for_each_terraform(|tf| {
        let proxy = match server.kind() {
            DnsKind::PowerDns => DnsFaultProxy::http(server.api_url(), Schedule::default()),
            _ => DnsFaultProxy::dns(&server.address(), Schedule::default()),
        };
        let via = match server.kind() {
            DnsKind::PowerDns => proxy.url(),
            _ => proxy.address().to_string(),
        };
        for schedule in [Schedule::default(), fault] {
            let name = unique_name("recheck");
            let work = Workdir::without_cluster(tf);
            let config = |records: &[&str]| {
                let block = rig_block("lan", server, Some(&via));
                format!("{}{}", provider(&[block]), record("this", Some("lan"), ZONE, &name, "A", records, ""))
            };
            work.write_main_tf(&config(&["10.26.0.1"]));
            work.apply().assert_success();
            work.write_main_tf(&config(&["10.26.0.2"]));
            work.run(&["plan", "-input=false", "-no-color", "-out=tfplan"]).assert_success();

            // Someone else replaces the set between plan and apply.
            server.set_rrset(&name, "A", 300, &["10.26.0.9"]);
            let before = proxy.counts();
            proxy.arm(schedule);
            let out = work.run(&["apply", "-input=false", "-no-color", "tfplan"]);
            let after = proxy.counts();
            let held = server.dig(&name, "A");
            server.delete_rrset(&name, "A");

            let injected = (after.servfails + after.http_503) - (before.servfails + before.http_503);
            assert_eq!(injected, schedule.servfails + schedule.http_503, "faults injected: {before:?} -> {after:?}");
            let outcome = if out.success() { "succeeded" } else { "failed" };
            assert_eq!(
                held,
                vec!["10.26.0.9"],
                "with {schedule:?}, the set someone else wrote after the plan was overwritten (apply {outcome}):\n{}",
                out.describe()
            );
            assert_failed_saying(&out, "since it was last read");
        }
    });
}

#[test]
fn dns_faults_change_check_survives_a_servfail_bind() {
    change_check_survives_a_retry(dns::bind(), Schedule { servfails: 1, ..Schedule::default() });
}

#[test]
fn dns_faults_change_check_survives_a_503_powerdns() {
    change_check_survives_a_retry(dns::powerdns(), Schedule { http_503: 1, ..Schedule::default() });
}

// ---------------------------------------------------------------- 6. secrets

/// One apply, plan (saved, with a change) and destroy with `TF_LOG=trace`, the secret in the
/// provider's `dns` block: no form of `secrets` is in any output, in `terraform.tfstate` or
/// in the plan's JSON (but where that repeats the provider block as written).
fn secrets_stay_out(server: &DnsServer, secrets: &[String]) {
    for_each_terraform(|tf| {
        let name = unique_name("secret");
        let work = Workdir::without_cluster(tf);
        let config = |records: &[&str]| {
            format!("{}{}", provider(&[rig_block("lan", server, None)]), record("this", Some("lan"), ZONE, &name, "A", records, ""))
        };
        let trace = [("TF_LOG", "trace")];
        let mut seen: Vec<(String, String)> = Vec::new();

        work.write_main_tf(&config(&["10.27.0.1"]));
        let apply = work.run_with_env(&["apply", "-auto-approve", "-input=false", "-no-color"], &trace);
        apply.assert_success();
        assert!(
            apply.stderr.contains("ApplyResourceChange"),
            "the trace log holds none of the provider's own lines; the check would prove nothing:\n{}",
            apply.stderr.lines().take(20).collect::<Vec<_>>().join("\n")
        );
        assert_eq!(server.dig(&name, "A"), vec!["10.27.0.1"]);
        let state = std::fs::read_to_string(work.path().join("terraform.tfstate")).expect("terraform.tfstate after apply");
        assert!(state.contains(&name), "the state does not hold the record:\n{state}");
        seen.push(("apply output".into(), apply.combined()));
        seen.push(("terraform.tfstate".into(), state));

        work.write_main_tf(&config(&["10.27.0.2"]));
        let plan = work.run_with_env(&["plan", "-input=false", "-no-color", "-out=tfplan"], &trace);
        plan.assert_success();
        let show = work.run_with_env(&["show", "-json", "-no-color", "tfplan"], &trace);
        show.assert_success();
        let mut plan_json = show.json();
        assert_eq!(plan_json["resource_changes"][0]["change"]["actions"], serde_json::json!(["update"]), "{plan_json:#}");
        // `configuration` echoes the literals of main.tf, the provider block's included
        // (Terraform's JSON shows every value; a secret kept out of it is not written as a
        // literal). Everything the provider and the state contribute is checked.
        let echoed = plan_json["configuration"]["provider_config"]["platform"]["expressions"]["dns"].take();
        assert!(echoed.is_array(), "the plan JSON has no provider configuration where expected: {plan_json:#}");
        seen.push(("plan output".into(), plan.combined()));
        seen.push(("plan JSON (but its echo of the provider block)".into(), plan_json.to_string()));
        seen.push(("trace of `show -json`".into(), show.stderr.clone()));

        let destroy = work.run_with_env(&["destroy", "-auto-approve", "-input=false", "-no-color"], &trace);
        destroy.assert_success();
        assert!(server.dig(&name, "A").is_empty());
        let state = std::fs::read_to_string(work.path().join("terraform.tfstate")).unwrap_or_default();
        seen.push(("destroy output".into(), destroy.combined()));
        seen.push(("terraform.tfstate after destroy".into(), state));

        for (what, text) in &seen {
            for secret in secrets {
                if let Some(at) = text.find(secret.as_str()) {
                    panic!("a secret is in the {what}:\n...{}...", around(text, at, 300));
                }
            }
        }
    });
}

/// `text` from `context` bytes before `at` to as many after (on character boundaries).
fn around(text: &str, at: usize, context: usize) -> &str {
    let from = (0..=at.saturating_sub(context)).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let to = ((at + context).min(text.len())..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
    &text[from..to]
}

#[test]
fn dns_faults_tsig_secret_stays_out_of_logs_state_and_plan_bind() {
    use base64::Engine as _;
    let server = dns::bind();
    let secret = server.tsig_secret().to_string();
    let key = base64::engine::general_purpose::STANDARD.decode(&secret).expect("the rig's secret is base64");
    // The secret as written, and the key as a program might print it: hex, or Rust's `{:?}`
    // of the bytes (the first eight are enough to spot it).
    let debug_prefix = format!("{:?}", &key[..8]);
    let forms = vec![secret, hex::encode(&key), debug_prefix.trim_end_matches(']').to_string()];
    secrets_stay_out(server, &forms);
}

#[test]
fn dns_faults_api_key_stays_out_of_logs_state_and_plan_powerdns() {
    let server = dns::powerdns();
    secrets_stay_out(server, &[server.api_key().to_string()]);
}
