//! The Cloudflare backend (`platform_provider::clients::dns::cloudflare::Cloudflare`, through
//! the `Backend` trait) against the Cloudflare API stand-in (`harness::cloudflare_standin`),
//! because Cloudflare itself cannot be reached from the tests. These check the backend's
//! calls and formats against the documented API as the stand-in imitates it; they say
//! nothing about Cloudflare's own behaviour beyond that.

use std::time::Duration;

use platform_provider::clients::deadline::Deadline;
use platform_provider::clients::dns::cloudflare::Cloudflare;
use platform_provider::clients::dns::{Backend, DnsError, RecordType, Rrset, RrsetId};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::harness::cloudflare_standin::CloudflareStandIn;

const TOKEN: &str = "standin-token-5f0c2a9e7b1d4c38a6e2";
const ZONE: &str = "acc.test";

fn standin() -> CloudflareStandIn {
    let standin = CloudflareStandIn::start(TOKEN);
    standin.add_zone(ZONE);
    standin
}

fn backend(standin: &CloudflareStandIn) -> Cloudflare {
    Cloudflare::new(Some(&standin.base_url()), SecretString::from(TOKEN)).expect("backend")
}

fn id(name: &str, rtype: RecordType) -> RrsetId {
    RrsetId::new(ZONE, name, rtype).unwrap()
}

fn set(ttl: u32, values: &[&str]) -> Rrset {
    Rrset::new(ttl, values.iter().map(|v| v.to_string()).collect())
}

/// A budget for one operation, as the resource layer gives it.
fn deadline(budget: Duration) -> Deadline {
    Deadline::after(budget, CancellationToken::new())
}

/// `field` of every record the stand-in holds, sorted.
fn held(standin: &CloudflareStandIn, name: &str, rtype: &str, field: &str) -> Vec<Value> {
    let mut values: Vec<Value> = standin.records(ZONE, name, rtype).iter().map(|r| r[field].clone()).collect();
    values.sort_by_key(|v| v.to_string());
    values
}

fn record_id_of(standin: &CloudflareStandIn, name: &str, rtype: &str, content: &str) -> String {
    let records = standin.records(ZONE, name, rtype);
    let record = records.iter().find(|r| r["content"] == content).unwrap_or_else(|| panic!("no {content} in {records:?}"));
    record["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn dns_cloudflare_standin_writes_a_set_and_replaces_it_with_the_fewest_calls() {
    let standin = standin();
    let cloudflare = backend(&standin);
    let www = id("www", RecordType::A);
    let first = set(300, &["10.0.0.1", "10.0.0.2", "10.0.0.3"]);

    assert_eq!(cloudflare.read(&www).await.unwrap(), None);
    assert_eq!(
        standin.routes(),
        vec!["GET /zones", "GET /zones/{zone}/dns_records"],
        "one zone lookup, one page of records"
    );
    let list = &standin.requests()[1];
    assert_eq!(list.param("name").as_deref(), Some("www.acc.test"));
    assert_eq!(list.param("type").as_deref(), Some("A"));

    standin.clear_requests();
    cloudflare.write(&www, None, &first).await.unwrap();
    assert_eq!(
        standin.routes(),
        vec![
            "GET /zones/{zone}/dns_records",
            "POST /zones/{zone}/dns_records",
            "POST /zones/{zone}/dns_records",
            "POST /zones/{zone}/dns_records",
        ],
        "the zone id is looked up once per zone"
    );
    assert_eq!(held(&standin, "www", "A", "content"), vec![json!("10.0.0.1"), json!("10.0.0.2"), json!("10.0.0.3")]);
    assert_eq!(held(&standin, "www", "A", "ttl"), vec![json!(300); 3]);
    assert_eq!(standin.records(ZONE, "www", "A")[0]["name"], "www.acc.test");
    assert_eq!(standin.records(ZONE, "www", "A")[0]["proxied"], false);
    assert_eq!(cloudflare.read(&www).await.unwrap(), Some(first.clone()));

    // One value shared: the record holding it stays, the two others are turned into the two
    // new values in place. Nothing is created or deleted.
    let kept = record_id_of(&standin, "www", "A", "10.0.0.3");
    let second = set(300, &["10.0.0.3", "10.0.0.4", "10.0.0.5"]);
    standin.clear_requests();
    cloudflare.write(&www, Some(&first), &second).await.unwrap();
    assert_eq!(
        standin.routes(),
        vec![
            "GET /zones/{zone}/dns_records",
            "PUT /zones/{zone}/dns_records/{record}",
            "PUT /zones/{zone}/dns_records/{record}",
        ]
    );
    assert_eq!(record_id_of(&standin, "www", "A", "10.0.0.3"), kept);
    assert_eq!(cloudflare.read(&www).await.unwrap(), Some(second.clone()));

    // The same set again: a read and nothing else.
    standin.clear_requests();
    cloudflare.write(&www, Some(&second), &second).await.unwrap();
    assert_eq!(standin.routes(), vec!["GET /zones/{zone}/dns_records"]);

    // Cloudflare's automatic TTL (1) is written and read back as 1: one PUT per record.
    let auto = set(1, &["10.0.0.3", "10.0.0.4", "10.0.0.5"]);
    standin.clear_requests();
    cloudflare.write(&www, Some(&second), &auto).await.unwrap();
    assert_eq!(standin.requests().iter().filter(|r| r.method == "PUT").count(), 3);
    assert_eq!(held(&standin, "www", "A", "ttl"), vec![json!(1); 3]);
    assert_eq!(cloudflare.read(&www).await.unwrap(), Some(auto.clone()));

    // Fewer values: one kept, one turned, the surplus deleted.
    let smaller = set(1, &["10.0.0.5", "10.0.0.9"]);
    standin.clear_requests();
    cloudflare.write(&www, Some(&auto), &smaller).await.unwrap();
    assert_eq!(
        standin.routes(),
        vec![
            "GET /zones/{zone}/dns_records",
            "PUT /zones/{zone}/dns_records/{record}",
            "DELETE /zones/{zone}/dns_records/{record}",
        ]
    );
    assert_eq!(cloudflare.read(&www).await.unwrap(), Some(smaller.clone()));

    standin.clear_requests();
    cloudflare.delete(&www, &smaller).await.unwrap();
    assert_eq!(
        standin.routes(),
        vec![
            "GET /zones/{zone}/dns_records",
            "DELETE /zones/{zone}/dns_records/{record}",
            "DELETE /zones/{zone}/dns_records/{record}",
        ]
    );
    assert!(standin.records(ZONE, "www", "A").is_empty());
    assert_eq!(cloudflare.read(&www).await.unwrap(), None);
    assert!(standin.requests().iter().all(|r| r.status == 200), "{:?}", standin.requests());
}

#[tokio::test]
async fn dns_cloudflare_standin_round_trips_mx_srv_caa_txt_and_names() {
    let standin = standin();
    let cloudflare = backend(&standin);

    let mx = id("@", RecordType::Mx);
    let mx_set = set(3600, &["10 mail.acc.test.", "20 mx2.example.net."]);
    cloudflare.write(&mx, None, &mx_set).await.unwrap();
    assert_eq!(held(&standin, "@", "MX", "content"), vec![json!("mail.acc.test"), json!("mx2.example.net")]);
    assert_eq!(held(&standin, "@", "MX", "priority"), vec![json!(10), json!(20)]);
    assert_eq!(cloudflare.read(&mx).await.unwrap(), Some(mx_set.clone()));
    // A new preference for one exchange is an update in place.
    let mx_moved = set(3600, &["10 mail.acc.test.", "30 mx2.example.net."]);
    standin.clear_requests();
    cloudflare.write(&mx, Some(&mx_set), &mx_moved).await.unwrap();
    assert_eq!(standin.requests().iter().filter(|r| r.is_change()).map(|r| r.method.as_str()).collect::<Vec<_>>(), vec!["PUT"]);
    assert_eq!(cloudflare.read(&mx).await.unwrap(), Some(mx_moved));

    let srv = id("_sip._tcp", RecordType::Srv);
    let srv_set = set(300, &["10 5 5060 sip.acc.test.", "20 0 5061 ."]);
    cloudflare.write(&srv, None, &srv_set).await.unwrap();
    let data = held(&standin, "_sip._tcp", "SRV", "data");
    assert_eq!(
        data,
        vec![
            json!({ "priority": 10, "weight": 5, "port": 5060, "target": "sip.acc.test" }),
            json!({ "priority": 20, "weight": 0, "port": 5061, "target": "." }),
        ]
    );
    assert_eq!(held(&standin, "_sip._tcp", "SRV", "content"), vec![json!("0 5061 ."), json!("5 5060 sip.acc.test")]);
    assert_eq!(cloudflare.read(&srv).await.unwrap(), Some(srv_set));

    let caa = id("@", RecordType::Caa);
    let caa_set = set(300, &["0 issue \"letsencrypt.org\"", "128 iodef \"mailto:ops@acc.test\""]);
    cloudflare.write(&caa, None, &caa_set).await.unwrap();
    assert_eq!(
        held(&standin, "@", "CAA", "data"),
        vec![
            json!({ "flags": 0, "tag": "issue", "value": "letsencrypt.org" }),
            json!({ "flags": 128, "tag": "iodef", "value": "mailto:ops@acc.test" }),
        ]
    );
    assert_eq!(cloudflare.read(&caa).await.unwrap(), Some(caa_set));

    // TXT longer than one 255-byte string, and text with quotes: written as quoted strings,
    // read back as the one text.
    let txt = id("_dkim", RecordType::Txt);
    let long = format!("v=DKIM1; k=rsa; p={}", "A".repeat(400));
    let quoted = "say \"hi\"".to_string();
    let txt_set = Rrset::new(120, vec![long.clone(), quoted]);
    cloudflare.write(&txt, None, &txt_set).await.unwrap();
    let contents = held(&standin, "_dkim", "TXT", "content");
    assert!(contents.iter().any(|c| c.as_str().unwrap().starts_with("\"v=DKIM1; k=rsa; p=AAA") && c.as_str().unwrap().contains("\" \"")), "{contents:?}");
    assert_eq!(cloudflare.read(&txt).await.unwrap(), Some(txt_set.clone()));
    // Someone adds an unquoted TXT value in the dashboard: read back as the same text form.
    standin.put_record(ZONE, "_dkim", "TXT", "v=spf1 -all", 120);
    let with_unquoted = Rrset::new(120, vec![long, "say \"hi\"".into(), "v=spf1 -all".into()]);
    assert_eq!(cloudflare.read(&txt).await.unwrap(), Some(with_unquoted));

    // Names lose their trailing dot on the way in and get it back on the way out.
    let cname = id("grafana", RecordType::Cname);
    cloudflare.write(&cname, None, &set(300, &["ingress.acc.test."])).await.unwrap();
    assert_eq!(held(&standin, "grafana", "CNAME", "content"), vec![json!("ingress.acc.test")]);
    assert_eq!(cloudflare.read(&cname).await.unwrap(), Some(set(300, &["ingress.acc.test."])));
    let aaaa = id("v6", RecordType::Aaaa);
    cloudflare.write(&aaaa, None, &set(300, &["2001:db8::1"])).await.unwrap();
    assert_eq!(cloudflare.read(&aaaa).await.unwrap(), Some(set(300, &["2001:db8::1"])));
    let ns = id("sub", RecordType::Ns);
    cloudflare.write(&ns, None, &set(86400, &["ns1.example.net.", "ns2.example.net."])).await.unwrap();
    assert_eq!(held(&standin, "sub", "NS", "content"), vec![json!("ns1.example.net"), json!("ns2.example.net")]);
    assert_eq!(cloudflare.read(&ns).await.unwrap(), Some(set(86400, &["ns1.example.net.", "ns2.example.net."])));
}

#[tokio::test]
async fn dns_cloudflare_standin_follows_pages_of_a_large_set() {
    let standin = CloudflareStandIn::start_with_max_per_page(TOKEN, 3);
    standin.add_zone(ZONE);
    let cloudflare = backend(&standin);
    let pool = id("pool", RecordType::A);
    let values: Vec<String> = (1..=8).map(|i| format!("10.1.0.{i}")).collect();
    let all = Rrset::new(60, values.clone());

    cloudflare.write(&pool, None, &all).await.unwrap();
    assert_eq!(standin.records(ZONE, "pool", "A").len(), 8);
    // Records of another name and type in the zone are not part of the set.
    standin.put_record(ZONE, "pool2", "A", "10.9.9.9", 60);
    standin.put_record(ZONE, "pool", "TXT", "not an address", 60);

    standin.clear_requests();
    assert_eq!(cloudflare.read(&pool).await.unwrap(), Some(all.clone()));
    let pages: Vec<(Option<String>, u16)> = standin.requests().iter().map(|r| (r.param("page"), r.status)).collect();
    assert_eq!(
        pages,
        vec![(Some("1".into()), 200), (Some("2".into()), 200), (Some("3".into()), 200)],
        "8 records at 3 a page"
    );
    assert!(standin.requests().iter().all(|r| r.param("per_page").as_deref() == Some("100")));

    // A write sees every page too: records on page 3 are kept, not recreated.
    let fewer = Rrset::new(60, values[3..].to_vec());
    standin.clear_requests();
    cloudflare.write(&pool, Some(&all), &fewer).await.unwrap();
    let changes: Vec<String> = standin.requests().iter().filter(|r| r.is_change()).map(|r| r.method.clone()).collect();
    assert_eq!(changes, vec!["DELETE"; 3]);
    assert_eq!(cloudflare.read(&pool).await.unwrap(), Some(fewer));
}

#[tokio::test]
async fn dns_cloudflare_standin_refuses_to_overwrite_a_set_changed_meanwhile() {
    let standin = standin();
    let cloudflare = backend(&standin);
    let app = id("app", RecordType::A);
    let mine = set(300, &["10.0.0.1", "10.0.0.2"]);
    cloudflare.write(&app, None, &mine).await.unwrap();

    standin.put_record(ZONE, "app", "A", "10.0.0.7", 300);
    standin.clear_requests();
    let error = cloudflare.write(&app, Some(&mine), &set(300, &["10.0.0.3"])).await.unwrap_err();
    assert!(matches!(error, DnsError::Changed { .. }), "{error:?}");
    assert!(error.to_string().contains("10.0.0.7"), "{error}");
    let error = cloudflare.delete(&app, &mine).await.unwrap_err();
    assert!(matches!(error, DnsError::Changed { .. }), "{error:?}");
    assert!(standin.requests().iter().all(|r| !r.is_change()), "nothing was changed: {:?}", standin.requests());
    assert_eq!(standin.records(ZONE, "app", "A").len(), 3);

    // A change of a set deleted meanwhile, and a create where a set appeared meanwhile.
    assert_eq!(standin.delete_records(ZONE, "app", "A"), 3);
    let error = cloudflare.write(&app, Some(&mine), &set(300, &["10.0.0.3"])).await.unwrap_err();
    assert!(matches!(&error, DnsError::Changed { found, .. } if found == "no records"), "{error:?}");
    let taken = id("taken", RecordType::A);
    standin.put_record(ZONE, "taken", "A", "10.0.0.8", 300);
    let error = cloudflare.write(&taken, None, &set(300, &["10.0.0.1"])).await.unwrap_err();
    assert!(matches!(error, DnsError::Changed { .. }), "{error:?}");
}

#[tokio::test]
async fn dns_cloudflare_standin_bad_token_is_a_credentials_error_quoting_code_10000() {
    let standin = standin();
    let wrong = "standin-wrong-token-0000000000";
    let cloudflare = Cloudflare::new(Some(&standin.base_url()), SecretString::from(wrong)).unwrap();
    let error = cloudflare.read(&id("www", RecordType::A)).await.unwrap_err();
    assert!(matches!(error, DnsError::Credentials { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("code 10000: Authentication error"), "{text}");
    assert!(text.contains("api_token"), "{text}");
    assert!(!text.contains(wrong) && !format!("{error:?}{cloudflare:?}").contains(wrong), "the token leaked: {text}");
    assert_eq!(standin.requests().len(), 1, "credentials errors are not retried");

    let error = cloudflare.write(&id("www", RecordType::A), None, &set(300, &["10.0.0.1"])).await.unwrap_err();
    assert!(matches!(error, DnsError::Credentials { .. }), "{error:?}");
    assert!(standin.records(ZONE, "www", "A").is_empty());
}

#[tokio::test]
async fn dns_cloudflare_standin_unknown_zone_is_zone_not_served() {
    let standin = standin();
    let cloudflare = backend(&standin);
    let elsewhere = RrsetId::new("other.test", "www", RecordType::A).unwrap();
    let error = cloudflare.read(&elsewhere).await.unwrap_err();
    assert!(matches!(&error, DnsError::ZoneNotServed { zone, .. } if zone == "other.test."), "{error:?}");
    assert!(error.to_string().contains("no zone named other.test"), "{error}");

    // A zone removed after its id was cached: the API cannot route the id any more.
    let www = id("www", RecordType::A);
    cloudflare.write(&www, None, &set(300, &["10.0.0.1"])).await.unwrap();
    assert!(standin.remove_zone(ZONE));
    let error = cloudflare.read(&www).await.unwrap_err();
    assert!(matches!(error, DnsError::ZoneNotServed { .. }), "{error:?}");
    assert!(error.to_string().contains("code 7003"), "{error}");
    // Added again (under a new id): the cached id was forgotten and the zone is found anew.
    standin.add_zone(ZONE);
    standin.clear_requests();
    assert_eq!(cloudflare.read(&www).await.unwrap(), None);
    assert_eq!(standin.routes(), vec!["GET /zones", "GET /zones/{zone}/dns_records"]);
}

#[tokio::test]
async fn dns_cloudflare_standin_retries_429_then_succeeds() {
    let standin = standin();
    let cloudflare = backend(&standin);
    let www = id("www", RecordType::A);
    let wanted = set(300, &["10.0.0.1", "10.0.0.2"]);

    standin.fail_next(2, 429);
    deadline(Duration::from_secs(30)).run(cloudflare.write(&www, None, &wanted)).await.unwrap();
    let statuses: Vec<u16> = standin.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..2], &[429, 429], "{:?}", standin.requests());
    assert!(statuses[2..].iter().all(|s| *s == 200), "{:?}", standin.requests());
    assert_eq!(deadline(Duration::from_secs(30)).run(cloudflare.read(&www)).await.unwrap(), Some(wanted.clone()));

    // A 503 from the edge (an HTML page, not JSON) is transient too.
    standin.fail_next_of("PUT", 1, 503);
    let moved = set(300, &["10.0.0.1", "10.0.0.3"]);
    deadline(Duration::from_secs(30)).run(cloudflare.write(&www, Some(&wanted), &moved)).await.unwrap();
    assert_eq!(deadline(Duration::from_secs(30)).run(cloudflare.read(&www)).await.unwrap(), Some(moved.clone()));

    // A create whose answer was lost after it landed is not made twice.
    standin.clear_requests();
    standin.fail_next_after_applying("POST", 1, 500);
    let grown = set(300, &["10.0.0.1", "10.0.0.3", "10.0.0.4"]);
    deadline(Duration::from_secs(30)).run(cloudflare.write(&www, Some(&moved), &grown)).await.unwrap();
    assert_eq!(standin.records(ZONE, "www", "A").len(), 3);
    assert_eq!(standin.requests().iter().filter(|r| r.method == "POST").count(), 1, "{:?}", standin.requests());
    assert_eq!(deadline(Duration::from_secs(30)).run(cloudflare.read(&www)).await.unwrap(), Some(grown));
}

#[tokio::test]
async fn dns_cloudflare_standin_500_persisting_mid_write_is_partial() {
    let standin = standin();
    let cloudflare = backend(&standin);
    let www = id("www", RecordType::A);
    let before = set(300, &["10.0.0.1", "10.0.0.2", "10.0.0.9"]);
    cloudflare.write(&www, None, &before).await.unwrap();

    // One record is turned into 10.0.0.3; deleting the two others fails for good.
    standin.fail_next_of("DELETE", 1000, 500);
    // 2.5 s: retries after 0.2, 0.4 and 0.8 s, and the next backoff (1.6 s) would pass it.
    let error = deadline(Duration::from_millis(2500)).run(cloudflare.write(&www, Some(&before), &set(300, &["10.0.0.3"]))).await.unwrap_err();
    let DnsError::Partial { message, .. } = &error else { panic!("expected Partial, got {error:?}") };
    assert!(message.contains("updated 10.0.0.1 to 10.0.0.3; not done: delete 10.0.0.2 ("), "{message}");
    assert!(message.contains("HTTP 500: code 10002: Internal server error"), "{message}");
    assert!(message.ends_with("), delete 10.0.0.9"), "{message}");
    let deletes = standin.requests().iter().filter(|r| r.method == "DELETE").count();
    assert!(deletes > 1, "the failing delete was retried: {:?}", standin.requests());
    standin.clear_faults();
    assert_eq!(cloudflare.read(&www).await.unwrap(), Some(set(300, &["10.0.0.2", "10.0.0.3", "10.0.0.9"])));

    // A refusal of the very first call is that refusal, not a partial change.
    let error = cloudflare.write(&id("bad", RecordType::A), None, &set(300, &["not-an-address"])).await.unwrap_err();
    assert!(matches!(error, DnsError::Refused { .. }), "{error:?}");
    assert!(error.to_string().contains("code 9005: Content for A record must be a valid IPv4 address."), "{error}");
    let error = cloudflare.write(&id("short", RecordType::A), None, &set(5, &["10.0.0.1"])).await.unwrap_err();
    assert!(error.to_string().contains("code 9021"), "{error}");
}
