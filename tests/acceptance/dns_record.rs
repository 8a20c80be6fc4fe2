//! `platform_dns_record` (resource and data source) with real Terraform against real BIND 9,
//! Knot DNS (RFC 2136 with TSIG) and PowerDNS (HTTP API) on loopback. Every check of what
//! the server holds asks it directly with `dig`, not only through the provider.

use crate::harness::dns::{self, DnsKind, DnsServer};
use crate::harness::{for_each_terraform, unique_name, Workdir};

/// The provider block with one `dns` block named "lan" for `server`.
fn provider(server: &DnsServer) -> String {
    provider_with(server, "")
}

fn provider_with(server: &DnsServer, extra: &str) -> String {
    let backend = match server.kind() {
        DnsKind::Bind | DnsKind::Knot => format!(
            "rfc2136 {{\n      server = \"{}\"\n      key_name = \"{}\"\n      key_algorithm = \"{}\"\n      key_secret = \"{}\"\n    }}",
            server.address(),
            server.tsig_key_name(),
            server.tsig_algorithm(),
            server.tsig_secret()
        ),
        DnsKind::PowerDns => format!(
            "powerdns {{\n      url = \"{}\"\n      api_key = \"{}\"\n      server_id = \"localhost\"\n    }}",
            server.api_url(),
            server.api_key()
        ),
    };
    format!(
        "{}provider \"platform\" {{\n  dns {{\n    name = \"lan\"\n{extra}    {backend}\n  }}\n}}\n",
        required_providers!()
    )
}

fn record(name: &str, zone: &str, rtype: &str, ttl: Option<u32>, records: &[&str], extra: &str) -> String {
    let records: Vec<String> = records.iter().map(|r| format!("{r:?}")).collect();
    let ttl = ttl.map(|t| format!("  ttl = {t}\n")).unwrap_or_default();
    format!(
        "resource \"platform_dns_record\" \"this\" {{\n  dns = \"lan\"\n  zone = \"{zone}\"\n  name = \"{name}\"\n  type = \"{rtype}\"\n{ttl}  records = [{}]\n{extra}}}\n",
        records.join(", ")
    )
}

/// A DNS label unique to this run.
fn label(prefix: &str) -> String {
    unique_name(prefix)
}

fn lifecycle(server: &DnsServer) {
    for_each_terraform(|tf| {
        let name = label("life");
        let zone = server.zone();
        let work = Workdir::without_cluster(tf);
        let config = |ttl: u32, records: &[&str]| format!("{}{}", provider(server), record(&name, zone, "A", Some(ttl), records, ""));

        // Create: the server holds both records with the TTL; the next plan is empty.
        work.write_main_tf(&config(300, &["10.11.0.2", "10.11.0.1"]));
        work.apply().assert_success();
        assert_eq!(server.dig(&name, "A"), vec!["10.11.0.1", "10.11.0.2"]);
        assert_eq!(server.dig_ttl(&name, "A"), Some(300));
        let state = work.resource_values("platform_dns_record.this").unwrap();
        assert_eq!(state["id"], format!("{zone}/{name}/A"));
        assert_eq!(state["fqdn"], format!("{name}.{zone}."));
        assert_eq!(state["adopted"], false);
        work.assert_plan_empty();

        // Update of the set: one kept, one replaced, a new TTL, in one change.
        work.write_main_tf(&config(120, &["10.11.0.1", "10.11.0.3"]));
        work.apply().assert_success();
        assert_eq!(server.dig(&name, "A"), vec!["10.11.0.1", "10.11.0.3"]);
        assert_eq!(server.dig_ttl(&name, "A"), Some(120));
        work.assert_plan_empty();

        // Drift: someone changes the set out of band; the plan shows it, apply puts it back.
        server.set_rrset(&name, "A", 120, &["10.11.0.1", "10.11.0.99"]);
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("10.11.0.99"), "plan does not show the drift:\n{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(server.dig(&name, "A"), vec!["10.11.0.1", "10.11.0.3"]);
        work.assert_plan_empty();

        // Deleted out of band: planned for re-creation, and re-created.
        server.delete_rrset(&name, "A");
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("will be created"), "plan does not re-create the set:\n{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(server.dig(&name, "A"), vec!["10.11.0.1", "10.11.0.3"]);

        // Destroy: the server no longer answers the name.
        work.destroy().assert_success();
        assert!(server.dig(&name, "A").is_empty(), "the set is still there after destroy");
    });
}

#[test]
fn dns_record_lifecycle_bind() {
    lifecycle(dns::bind());
}

#[test]
fn dns_record_lifecycle_knot() {
    lifecycle(dns::knot());
}

#[test]
fn dns_record_lifecycle_powerdns() {
    lifecycle(dns::powerdns());
}

/// Every type, written in spellings that differ from the server's, plans empty after apply.
fn every_type_without_perpetual_diff(server: &DnsServer) {
    for_each_terraform(|tf| {
        let base = label("types");
        let zone = server.zone();
        let long_txt = format!("v=DKIM1; k=rsa; p={}", "A".repeat(400));
        let resources = [
            ("aaaa", "AAAA", vec!["2001:DB8:0:0::1", "2001:db8::2"]),
            ("cname", "CNAME", vec!["Ingress.Example.COM"]),
            ("txt", "TXT", vec!["v=spf1 include:_spf.example.com ~all", long_txt.as_str(), "\"quoted\" \"chunks\""]),
            ("mx", "MX", vec!["10  Mail.example.com", "20 mail2.example.com."]),
            ("srv", "SRV", vec!["0 5 5060 sip.example.com"]),
            ("caa", "CAA", vec!["0 issue letsencrypt.org", "0 iodef \"mailto:sec@example.com\""]),
            ("ns", "NS", vec!["ns1.example.com", "ns2.example.com."]),
            ("ptr", "PTR", vec!["host.example.com"]),
        ];
        let mut config = provider(server);
        for (suffix, rtype, records) in &resources {
            let block = record(&format!("{base}-{suffix}"), zone, rtype, None, records, "")
                .replace("\"platform_dns_record\" \"this\"", &format!("\"platform_dns_record\" \"{suffix}\""));
            config.push_str(&block);
        }
        let work = Workdir::without_cluster(tf);
        work.write_main_tf(&config);
        work.apply().assert_success();
        work.assert_plan_empty();

        let dig = |suffix: &str, rtype: &str| server.dig(&format!("{base}-{suffix}"), rtype);
        assert_eq!(dig("aaaa", "AAAA"), vec!["2001:db8::1", "2001:db8::2"]);
        assert_eq!(dig("cname", "CNAME"), vec!["ingress.example.com."]);
        assert_eq!(dig("mx", "MX"), vec!["10 mail.example.com.", "20 mail2.example.com."]);
        assert_eq!(dig("srv", "SRV"), vec!["0 5 5060 sip.example.com."]);
        assert_eq!(dig("ns", "NS"), vec!["ns1.example.com.", "ns2.example.com."]);
        assert_eq!(dig("ptr", "PTR"), vec!["host.example.com."]);
        let caa = dig("caa", "CAA");
        assert!(caa.contains(&"0 issue \"letsencrypt.org\"".to_string()), "{caa:?}");
        let txt = dig("txt", "TXT");
        assert!(txt.contains(&"\"v=spf1 include:_spf.example.com ~all\"".to_string()), "{txt:?}");
        assert!(txt.contains(&"\"quotedchunks\"".to_string()), "{txt:?}");
        // The long TXT value went out as 255-byte strings.
        let long = txt.iter().find(|t| t.contains("DKIM1")).expect("long TXT record");
        assert_eq!(long.matches("\" \"").count(), long_txt.len() / 255, "{long}");

        work.destroy().assert_success();
        assert!(dig("mx", "MX").is_empty());
    });
}

#[test]
fn dns_record_every_type_bind() {
    every_type_without_perpetual_diff(dns::bind());
}

#[test]
fn dns_record_every_type_knot() {
    every_type_without_perpetual_diff(dns::knot());
}

#[test]
fn dns_record_every_type_powerdns() {
    every_type_without_perpetual_diff(dns::powerdns());
}

/// A set that exists is refused without `adopt`, adopted with it (the plan shows what it
/// replaces), and released on destroy. Import adopts too.
fn adopt_refuse_import(server: &DnsServer) {
    for_each_terraform(|tf| {
        let name = label("adopt");
        let zone = server.zone();
        server.set_rrset(&name, "A", 600, &["10.12.0.1"]);
        let work = Workdir::without_cluster(tf);
        work.write_main_tf(&format!("{}{}", provider(server), record(&name, zone, "A", None, &["10.12.0.7"], "")));
        let out = work.apply();
        out.assert_failure_contains("already exists");
        assert!(out.combined().contains("10.12.0.1"), "the refusal does not name the records found:\n{}", out.describe());
        assert_eq!(server.dig(&name, "A"), vec!["10.12.0.1"], "the refused create changed the set");

        // With adopt: the plan shows the records it replaces; destroy leaves the set.
        work.write_main_tf(&format!("{}{}", provider(server), record(&name, zone, "A", None, &["10.12.0.7"], "  adopt = true\n")));
        let plan = work.plan();
        plan.assert_success();
        assert!(plan.stdout.contains("10.12.0.1"), "the plan does not show the adopted records:\n{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(server.dig(&name, "A"), vec!["10.12.0.7"]);
        let state = work.resource_values("platform_dns_record.this").unwrap();
        assert_eq!(state["adopted"], true);
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert_eq!(server.dig(&name, "A"), vec!["10.12.0.7"], "an adopted set was deleted on destroy");

        // Import by zone/name/type (with the dns block's name), then nothing to do.
        let imported = Workdir::without_cluster(tf);
        imported.write_main_tf(&format!("{}{}", provider(server), record(&name, zone, "A", Some(300), &["10.12.0.7"], "")));
        imported.import("platform_dns_record.this", &format!("lan:{zone}/{name}/A")).assert_success();
        imported.assert_plan_empty();
        imported.destroy().assert_success();
        assert_eq!(server.dig(&name, "A"), vec!["10.12.0.7"], "an imported set was deleted on destroy");
        server.delete_rrset(&name, "A");
    });
}

#[test]
fn dns_record_adopt_refuse_import_bind() {
    adopt_refuse_import(dns::bind());
}

#[test]
fn dns_record_adopt_refuse_import_knot() {
    adopt_refuse_import(dns::knot());
}

#[test]
fn dns_record_adopt_refuse_import_powerdns() {
    adopt_refuse_import(dns::powerdns());
}

/// A record with its own `connection` (no provider `dns` block) whose server is known only
/// at apply: planning contacts nothing, apply writes it; the data source reads it back.
#[test]
fn dns_record_own_connection_unknown_at_plan_and_data_source() {
    let server = dns::bind();
    for_each_terraform(|tf| {
        let name = label("conn");
        let namespace = label("acc-dnsconn");
        let zone = server.zone();
        let work = Workdir::new(tf);
        // `substr(uid, 0, 0)` is "" but unknown until the namespace exists.
        work.write_main_tf(&format!(
            r#"{providers}provider "platform" {{}}

resource "platform_namespace" "gate" {{
  name = "{namespace}"
}}

resource "platform_dns_record" "this" {{
  zone    = "{zone}"
  name    = "{name}"
  type    = "TXT"
  records = ["written through its own connection"]
  connection = {{
    server     = "{address}${{substr(platform_namespace.gate.uid, 0, 0)}}"
    key_name   = "{key_name}"
    key_secret = "{secret}"
  }}
}}

data "platform_dns_record" "read" {{
  zone       = "{zone}"
  name       = "{name}"
  type       = "TXT"
  connection = {{
    server     = "{address}"
    key_name   = "{key_name}"
    key_secret = "{secret}"
  }}
  depends_on = [platform_dns_record.this]
}}

output "read" {{
  value = {{ records = data.platform_dns_record.read.records, ttl = data.platform_dns_record.read.ttl, fqdn = data.platform_dns_record.read.fqdn, owner = data.platform_dns_record.read.owner }}
}}
"#,
            providers = required_providers!(),
            address = server.address(),
            key_name = server.tsig_key_name(),
            secret = server.tsig_secret(),
        ));
        let plan = work.plan();
        plan.assert_success();
        work.apply().assert_success();
        assert_eq!(server.dig(&name, "TXT"), vec!["\"written through its own connection\""]);
        let read = &work.output_json()["read"]["value"];
        assert_eq!(read["records"], serde_json::json!(["written through its own connection"]));
        assert_eq!(read["ttl"], 300);
        assert_eq!(read["fqdn"], format!("{name}.{zone}."));
        assert!(read["owner"].is_null(), "{read}");
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(server.dig(&name, "TXT").is_empty());
    });
}

/// With `owner_id`, sets are claimed with external-dns's TXT registry record; a set another
/// external-dns owner claims is refused without `adopt` and taken over with it.
#[test]
fn dns_record_external_dns_registry_powerdns() {
    let server = dns::powerdns();
    for_each_terraform(|tf| {
        let zone = server.zone();
        let ours = label("reg-ours");
        let theirs = label("reg-theirs");
        let heritage = |owner: &str| format!("\"heritage=external-dns,external-dns/owner={owner},external-dns/resource=ingress/default/web\"");
        server.set_rrset(&theirs, "A", 300, &["10.13.0.1"]);
        server.set_rrset(&format!("a-{theirs}"), "TXT", 300, &[&heritage("default")]);
        let provider = provider_with(server, "    owner_id = \"terraform\"\n");
        let work = Workdir::without_cluster(tf);

        // Ours: the set and its registry record naming us; destroy removes both.
        work.write_main_tf(&format!("{provider}{}", record(&ours, zone, "A", None, &["10.13.0.9"], "")));
        work.apply().assert_success();
        assert_eq!(server.dig(&ours, "A"), vec!["10.13.0.9"]);
        let claim = server.dig(&format!("a-{ours}"), "TXT");
        assert_eq!(claim.len(), 1, "{claim:?}");
        assert!(claim[0].contains("heritage=external-dns,external-dns/owner=terraform"), "{claim:?}");
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(server.dig(&ours, "A").is_empty());
        assert!(server.dig(&format!("a-{ours}"), "TXT").is_empty(), "our registry record outlived the set");

        // Theirs: refused, naming the owner, and left alone.
        work.write_main_tf(&format!("{provider}{}", record(&theirs, zone, "A", None, &["10.13.0.2"], "")));
        work.apply().assert_failure_contains("external-dns owner \"default\"");
        assert_eq!(server.dig(&theirs, "A"), vec!["10.13.0.1"]);
        assert_eq!(server.dig(&format!("a-{theirs}"), "TXT"), vec![heritage("default")]);

        // Adopted: the set is ours, and so is its registry record.
        work.write_main_tf(&format!("{provider}{}", record(&theirs, zone, "A", None, &["10.13.0.2"], "  adopt = true\n")));
        work.apply().assert_success();
        assert_eq!(server.dig(&theirs, "A"), vec!["10.13.0.2"]);
        let claim = server.dig(&format!("a-{theirs}"), "TXT");
        assert!(claim[0].contains("external-dns/owner=terraform"), "{claim:?}");
        work.assert_plan_empty();
        // Released on destroy: the set stays, our claim goes.
        work.destroy().assert_success();
        assert_eq!(server.dig(&theirs, "A"), vec!["10.13.0.2"]);
        assert!(server.dig(&format!("a-{theirs}"), "TXT").is_empty());
        server.delete_rrset(&theirs, "A");
    });
}

/// Cloudflare's API cannot be reached from the tests: these drive the resource through
/// Terraform against the Cloudflare API stand-in of the harness.
mod cloudflare_standin {
    use super::*;
    use crate::harness::cloudflare_standin::CloudflareStandIn;

    fn provider(standin: &CloudflareStandIn) -> String {
        format!(
            "{}provider \"platform\" {{\n  dns {{\n    name = \"lan\"\n    cloudflare {{\n      api_token = \"{}\"\n      base_url = \"{}\"\n    }}\n  }}\n}}\n",
            required_providers!(),
            standin.token(),
            standin.base_url()
        )
    }

    /// The contents the stand-in holds for a name and type, sorted.
    fn contents(standin: &CloudflareStandIn, zone: &str, name: &str, rtype: &str) -> Vec<String> {
        let mut values: Vec<String> =
            standin.records(zone, name, rtype).iter().map(|r| r["content"].as_str().unwrap_or_default().to_string()).collect();
        values.sort();
        values
    }

    #[test]
    fn dns_record_cloudflare_standin_lifecycle() {
        let standin = CloudflareStandIn::start_with_max_per_page("cf-token-lifecycle-0123456789", 2);
        let zone = "example.com";
        standin.add_zone(zone);
        for_each_terraform(|tf| {
            let name = label("cf");
            let work = Workdir::without_cluster(tf);
            let config = |records: &[&str]| format!("{}{}", provider(&standin), record(&name, zone, "A", Some(300), records, ""));

            work.write_main_tf(&config(&["10.14.0.1", "10.14.0.2", "10.14.0.3"]));
            work.apply().assert_success();
            assert_eq!(contents(&standin, zone, &name, "A"), vec!["10.14.0.1", "10.14.0.2", "10.14.0.3"]);
            work.assert_plan_empty();

            // An update of the set changes only what differs.
            standin.clear_requests();
            work.write_main_tf(&config(&["10.14.0.1", "10.14.0.4"]));
            work.apply().assert_success();
            assert_eq!(contents(&standin, zone, &name, "A"), vec!["10.14.0.1", "10.14.0.4"]);
            let changes: Vec<String> = standin.requests().iter().filter(|r| r.is_change()).map(|r| r.route()).collect();
            assert_eq!(changes.len(), 2, "one update in place and one delete, not {changes:?}");
            work.assert_plan_empty();

            // Drift and re-creation.
            standin.put_record(zone, &name, "A", "10.14.0.99", 300);
            let plan = work.assert_plan_has_changes();
            assert!(plan.stdout.contains("10.14.0.99"), "{}", plan.stdout);
            work.apply().assert_success();
            assert_eq!(contents(&standin, zone, &name, "A"), vec!["10.14.0.1", "10.14.0.4"]);
            standin.delete_records(zone, &name, "A");
            work.assert_plan_has_changes();
            work.apply().assert_success();
            assert_eq!(contents(&standin, zone, &name, "A"), vec!["10.14.0.1", "10.14.0.4"]);

            // Import, then nothing to do; an imported set is released on destroy.
            let imported = Workdir::without_cluster(tf);
            imported.write_main_tf(&config(&["10.14.0.4", "10.14.0.1"]));
            imported.import("platform_dns_record.this", &format!("{zone}/{name}/A")).assert_success();
            imported.assert_plan_empty();
            imported.destroy().assert_success();
            assert_eq!(contents(&standin, zone, &name, "A").len(), 2, "an imported set was deleted");

            // Destroy of the set this resource created removes every record.
            work.destroy().assert_success();
            assert!(contents(&standin, zone, &name, "A").is_empty());
        });
    }

    #[test]
    fn dns_record_cloudflare_standin_types_adopt_and_errors() {
        let standin = CloudflareStandIn::start("cf-token-types-0123456789");
        let zone = "example.net";
        standin.add_zone(zone);
        for_each_terraform(|tf| {
            let base = label("cft");
            let work = Workdir::without_cluster(tf);
            let mut config = provider(&standin);
            for (suffix, rtype, records) in [
                ("mx", "MX", vec!["10 Mail.example.net", "20 mail2.example.net."]),
                ("srv", "SRV", vec!["0 5 5060 sip.example.net"]),
                ("caa", "CAA", vec!["0 issue letsencrypt.org"]),
                ("txt", "TXT", vec!["v=spf1 -all"]),
            ] {
                config.push_str(
                    &record(&format!("{base}-{suffix}"), zone, rtype, None, &records, "")
                        .replace("\"platform_dns_record\" \"this\"", &format!("\"platform_dns_record\" \"{suffix}\"")),
                );
            }
            work.write_main_tf(&config);
            work.apply().assert_success();
            work.assert_plan_empty();
            let mx = standin.records(zone, &format!("{base}-mx"), "MX");
            assert_eq!(mx.len(), 2);
            assert!(mx.iter().any(|r| r["content"] == "mail.example.net" && r["priority"] == 10), "{mx:?}");
            let caa = standin.records(zone, &format!("{base}-caa"), "CAA");
            assert_eq!(caa[0]["data"]["value"], "letsencrypt.org", "{caa:?}");
            work.destroy().assert_success();

            // An existing set is refused, then adopted.
            let name = label("cfa");
            standin.put_record(zone, &name, "A", "10.15.0.1", 300);
            let work = Workdir::without_cluster(tf);
            work.write_main_tf(&format!("{}{}", provider(&standin), record(&name, zone, "A", None, &["10.15.0.2"], "")));
            work.apply().assert_failure_contains("10.15.0.1");
            work.write_main_tf(&format!("{}{}", provider(&standin), record(&name, zone, "A", None, &["10.15.0.2"], "  adopt = true\n")));
            work.apply().assert_success();
            assert_eq!(contents(&standin, zone, &name, "A"), vec!["10.15.0.2"]);
            work.destroy().assert_success();
            standin.delete_records(zone, &name, "A");

            // A wrong token quotes Cloudflare's error code; a zone it has not is named.
            let bad = Workdir::without_cluster(tf);
            let wrong = provider(&standin).replace(standin.token(), "not-the-token");
            bad.write_main_tf(&format!("{wrong}{}", record(&label("cfb"), zone, "A", None, &["10.15.0.3"], "")));
            bad.apply().assert_failure_contains("10000");
            bad.write_main_tf(&format!("{}{}", provider(&standin), record(&label("cfz"), "not-there.test", "A", None, &["10.15.0.3"], "")));
            bad.apply().assert_failure_contains("does not serve the zone");
        });
    }
}

/// BIND drops a CNAME added beside other records of the name without an error (RFC 2136
/// 3.4.2.2); the read-back after the write reports it instead of a false success.
#[test]
fn dns_record_cname_beside_other_records_bind() {
    let server = dns::bind();
    for_each_terraform(|tf| {
        let name = label("beside");
        let zone = server.zone();
        server.set_rrset(&name, "A", 300, &["10.16.0.1"]);
        let work = Workdir::without_cluster(tf);
        work.write_main_tf(&format!("{}{}", provider(server), record(&name, zone, "CNAME", None, &["target.example.com"], "")));
        let out = work.apply();
        out.assert_failure_contains("CNAME beside other records");
        assert!(server.dig(&name, "CNAME").is_empty());
        assert_eq!(server.dig(&name, "A"), vec!["10.16.0.1"], "the A record was touched");
        server.delete_rrset(&name, "A");
    });
}
