//! Self-test of the DNS acceptance rig (`harness::dns`): each real server answers for its
//! zone, takes out-of-band RRset changes and deletes, reads them back with dig, and (the
//! RFC 2136 servers) refuses an update signed with a wrong TSIG secret.

use std::io::{Read, Write};

use crate::harness::dns::{self, DnsKind, DnsServer};

/// Replace, read back, replace again, delete: the rig's own round trip on `name`.
fn round_trip(server: &DnsServer, name: &str) {
    assert_eq!(server.zone(), "acc.test");
    assert_eq!(server.address(), format!("127.0.0.1:{}", server.port()));

    let soa = server.dig("@", "SOA");
    assert_eq!(soa.len(), 1, "one SOA at the apex of {:?}: {soa:?}", server.kind());
    assert!(soa[0].starts_with("ns.acc.test. hostmaster.acc.test. "), "SOA of {:?}: {soa:?}", server.kind());
    assert_eq!(server.dig("@", "NS"), vec!["ns.acc.test.".to_string()]);
    assert_eq!(server.dig("ns", "A"), vec!["127.0.0.1".to_string()]);

    assert!(server.dig(name, "A").is_empty(), "{name} A exists before the test");
    assert_eq!(server.dig_ttl(name, "A"), None);

    server.set_rrset(name, "A", 300, &["10.1.0.2", "10.1.0.1"]);
    assert_eq!(server.dig(name, "A"), vec!["10.1.0.1".to_string(), "10.1.0.2".to_string()]);
    assert_eq!(server.dig_ttl(name, "A"), Some(300));

    server.set_rrset(name, "A", 120, &["10.1.0.3"]);
    assert_eq!(server.dig(name, "A"), vec!["10.1.0.3".to_string()]);
    assert_eq!(server.dig_ttl(name, "A"), Some(120));

    // TXT: presentation format in (quoted), dig's quoted chunks out; other types untouched.
    server.set_rrset(name, "TXT", 60, &["\"hello world\"", "\"two\" \"chunks\""]);
    assert_eq!(server.dig(name, "TXT"), vec!["\"hello world\"".to_string(), "\"two\" \"chunks\"".to_string()]);
    assert_eq!(server.dig_ttl(name, "TXT"), Some(60));
    assert_eq!(server.dig(name, "A"), vec!["10.1.0.3".to_string()]);

    server.delete_rrset(name, "A");
    assert!(server.dig(name, "A").is_empty(), "{name} A left after delete_rrset");
    assert_eq!(server.dig_ttl(name, "A"), None);
    server.delete_rrset(name, "TXT");
    assert!(server.dig(name, "TXT").is_empty(), "{name} TXT left after delete_rrset");
    server.assert_alive();
}

/// The second (hmac-sha512) key updates too; a wrong secret is refused and changes nothing.
fn tsig_checks(server: &DnsServer, name: &str) {
    assert_eq!(server.tsig_key_name(), "tf-key.");
    assert_eq!(server.tsig_algorithm(), "hmac-sha256");
    assert!(!server.tsig_secret().is_empty());
    let fqdn = server.fqdn(name);

    let (name512, secret512) = server.tsig_key_sha512();
    assert_eq!(name512, "tf-key-sha512.");
    server
        .nsupdate_with_key("hmac-sha512", name512, secret512, &format!("update add {fqdn} 90 A 10.2.0.1"))
        .assert_success();
    assert_eq!(server.dig(name, "A"), vec!["10.2.0.1".to_string()]);
    assert_eq!(server.dig_ttl(name, "A"), Some(90));

    // Same key name and algorithm, another secret of the same length.
    let secret = server.tsig_secret();
    let first = if secret.starts_with('A') { 'B' } else { 'A' };
    let wrong = format!("{first}{}", &secret[1..]);
    let out = server.nsupdate_with_key(
        server.tsig_algorithm(),
        server.tsig_key_name(),
        &wrong,
        &format!("update add {fqdn} 90 A 10.2.0.2"),
    );
    assert!(!out.success(), "an update with a wrong TSIG secret succeeded on {:?}:\n{}", server.kind(), out.describe());
    let text = out.combined();
    assert!(
        ["BADSIG", "NOTAUTH", "REFUSED"].iter().any(|w| text.contains(w)),
        "nsupdate with a wrong secret failed without BADSIG/NOTAUTH/REFUSED:\n{}",
        out.describe()
    );
    assert_eq!(server.dig(name, "A"), vec!["10.2.0.1".to_string()], "the refused update changed {fqdn}");

    server.delete_rrset(name, "A");
    assert!(server.dig(name, "A").is_empty());
}

#[test]
fn dns_rig_bind_answers_and_updates() {
    let server = dns::bind();
    assert_eq!(server.kind(), DnsKind::Bind);
    round_trip(server, "rigcheck-bind");
    tsig_checks(server, "rigcheck-bind-tsig");
}

#[test]
fn dns_rig_knot_answers_and_updates() {
    let server = dns::knot();
    assert_eq!(server.kind(), DnsKind::Knot);
    round_trip(server, "rigcheck-knot");
    tsig_checks(server, "rigcheck-knot-tsig");
}

#[test]
fn dns_rig_powerdns_answers_and_updates() {
    let server = dns::powerdns();
    assert_eq!(server.kind(), DnsKind::PowerDns);
    assert!(server.api_url().starts_with("http://127.0.0.1:"), "api_url {}", server.api_url());
    assert!(server.api_key().len() >= 32, "API key too short");
    round_trip(server, "rigcheck-pdns");

    // The API wants its key: a request without the right one is refused.
    let (status, _) = server.api_request("GET", "/api/v1/servers/localhost/zones/acc.test.", None);
    assert_eq!(status, 200);
    let port = server.api_url().rsplit(':').next().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    stream
        .write_all(b"GET /api/v1/servers/localhost HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: wrong\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    stream.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 401"), "a wrong API key was not refused: {resp}");
}
