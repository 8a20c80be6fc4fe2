//! What a `platform_dns_record` configuration asks for: the RRset's address and its
//! records in canonical form, with every check that needs no server, each naming its
//! attribute. Shared with the `platform_dns_record` data source (address only).

use crate::clients::dns::rdata::{self, RecordType};
use crate::clients::dns::{Rrset, RrsetId};
use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::value::Value;

/// TTL when the configuration gives none.
pub const DEFAULT_TTL: u32 = 300;
/// The largest TTL DNS allows (RFC 2181 section 8).
pub const MAX_TTL: i64 = 2_147_483_647;

fn text<'a>(config: &'a Value, name: &str) -> Option<&'a str> {
    config.get_attr(name).and_then(Value::as_str)
}

/// `zone/name/TYPE`: a record's `id`, as import takes it.
pub fn record_id(id: &RrsetId) -> String {
    format!("{}/{}/{}", id.zone.trim_end_matches('.'), id.relative_name(), id.rtype)
}

/// The RRset a configuration (or state) addresses; `Ok(None)` while part of it is unknown.
pub fn address(config: &Value) -> Result<Option<RrsetId>, Diagnostic> {
    let (Some(zone), Some(name), Some(rtype)) = (text(config, "zone"), text(config, "name"), text(config, "type")) else {
        return Ok(None);
    };
    let rtype = record_type(rtype)?;
    let zone = crate::clients::dns::zone_name(zone)
        .map_err(|e| Diagnostic::error("Invalid zone", format!("{e}.")).at(AttributePath::root("zone")))?;
    RrsetId::new(&zone, name, rtype)
        .map(Some)
        .map_err(|e| Diagnostic::error("Invalid record name", format!("{e}.")).at(AttributePath::root("name")))
}

fn record_type(text: &str) -> Result<RecordType, Diagnostic> {
    RecordType::parse(text).ok_or_else(|| {
        let known: Vec<&str> = RecordType::ALL.iter().map(|t| t.as_str()).collect();
        Diagnostic::error("Unsupported record type", format!("type {text:?} is not one of {}.", known.join(", ")))
            .at(AttributePath::root("type"))
    })
}

/// The configured record strings as written (`None` while unknown).
pub fn written_records(config: &Value) -> Option<Vec<String>> {
    let values = config.get_attr("records")?.as_slice()?;
    values.iter().map(|v| v.as_str().map(str::to_string)).collect()
}

/// The records in canonical form; errors name the offending element.
pub fn canonical_records(rtype: RecordType, written: &[String]) -> Result<Vec<String>, Diagnostic> {
    written
        .iter()
        .map(|value| {
            rdata::canonical(rtype, value).map_err(|e| {
                Diagnostic::error("Invalid record", format!("{e}."))
                    .at(AttributePath::root("records"))
            })
        })
        .collect()
}

/// The TTL configured, or the default.
pub fn ttl(config: &Value) -> u32 {
    config.get_attr("ttl").and_then(Value::as_i64).map(|t| t.clamp(0, MAX_TTL) as u32).unwrap_or(DEFAULT_TTL)
}

/// The RRset a configuration asks for, when all of it is known.
pub fn desired(config: &Value) -> Result<Option<(RrsetId, Rrset)>, Diagnostic> {
    let Some(id) = address(config)? else { return Ok(None) };
    let Some(written) = written_records(config) else { return Ok(None) };
    if config.get_attr("ttl").is_some_and(Value::is_unknown) {
        return Ok(None);
    }
    let records = canonical_records(id.rtype, &written)?;
    Ok(Some((id, Rrset::new(ttl(config), records))))
}

/// Every plan-time check of a record's configuration.
pub fn validate(config: &Value, diags: &mut Diagnostics) {
    let id = match address(config) {
        Ok(id) => id,
        Err(diagnostic) => {
            diags.push(diagnostic);
            None
        }
    };
    if let Some(ttl) = config.get_attr("ttl").and_then(Value::as_i64) {
        if !(0..=MAX_TTL).contains(&ttl) {
            diags.error_at(
                AttributePath::root("ttl"),
                "Invalid TTL",
                format!("ttl must be between 0 and {MAX_TTL} seconds, not {ttl}."),
            );
        }
    }
    let rtype = match (&id, text(config, "type").map(RecordType::parse)) {
        (Some(id), _) => Some(id.rtype),
        (None, Some(Some(rtype))) => Some(rtype),
        _ => None,
    };
    let (Some(rtype), Some(written)) = (rtype, written_records(config)) else { return };
    if written.is_empty() {
        diags.error_at(
            AttributePath::root("records"),
            "No records",
            "records must hold at least one value; to remove the record set, remove the resource.",
        );
    }
    for value in &written {
        if let Err(e) = rdata::canonical(rtype, value) {
            diags.error_at(AttributePath::root("records"), "Invalid record", format!("{e}."));
        }
    }
    if rtype == RecordType::Cname {
        if written.len() > 1 {
            diags.error_at(
                AttributePath::root("records"),
                "Several CNAME targets",
                "A CNAME record set holds exactly one target (RFC 1034 section 3.6.2).",
            );
        }
        if let Some(id) = &id {
            if id.name == id.zone {
                diags.error_at(
                    AttributePath::root("name"),
                    "CNAME at the zone apex",
                    format!(
                        "The apex of {} holds the zone's SOA and NS records, and a CNAME may not stand beside other \
                         records (RFC 1034 section 3.6.2). Use A/AAAA records, or a CNAME on a name below the apex.",
                        id.zone
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(zone: &str, name: &str, rtype: &str, records: &[&str]) -> Value {
        Value::object([
            ("zone", Value::from(zone)),
            ("name", Value::from(name)),
            ("type", Value::from(rtype)),
            ("records", Value::Set(records.iter().map(|r| Value::from(*r)).collect())),
            ("ttl", Value::Null),
        ])
    }

    fn errors(config: &Value) -> Vec<String> {
        let mut diags = Diagnostics::new();
        validate(config, &mut diags);
        diags.iter().map(|d| format!("{} {:?}: {}", d.summary, d.attribute, d.detail)).collect()
    }

    #[test]
    fn good_records_pass() {
        assert!(errors(&config("home.example.com", "grafana", "A", &["10.0.0.1", "10.0.0.2"])).is_empty());
        assert!(errors(&config("home.example.com", "@", "MX", &["10 mail.example.com"])).is_empty());
        assert!(errors(&config("home.example.com", "www", "cname", &["ingress.home.example.com"])).is_empty());
    }

    #[test]
    fn each_problem_names_its_attribute() {
        let e = errors(&config("home.example.com", "x", "SOA", &["a"]));
        assert!(e.iter().any(|e| e.contains("Unsupported record type") && e.contains("type")), "{e:?}");
        let e = errors(&config("home.example.com", "x", "A", &["10.0.0.300"]));
        assert!(e.iter().any(|e| e.contains("Invalid record") && e.contains("IPv4")), "{e:?}");
        let e = errors(&config("home.example.com", "@", "CNAME", &["a.example.com"]));
        assert!(e.iter().any(|e| e.contains("CNAME at the zone apex")), "{e:?}");
        let e = errors(&config("home.example.com", "w", "CNAME", &["a.example.com", "b.example.com"]));
        assert!(e.iter().any(|e| e.contains("Several CNAME targets")), "{e:?}");
        let e = errors(&config("home.example.com", "grafana.example.org.", "A", &["10.0.0.1"]));
        assert!(e.iter().any(|e| e.contains("not inside the zone")), "{e:?}");
        let e = errors(&config("home.example.com", "x", "MX", &["mail.example.com"]));
        assert!(e.iter().any(|e| e.contains("MX")), "{e:?}");
        let e = errors(&config("home.example.com", "x", "A", &[]));
        assert!(e.iter().any(|e| e.contains("No records")), "{e:?}");
        let mut bad_ttl = config("home.example.com", "x", "A", &["10.0.0.1"]);
        bad_ttl.set_attr("ttl", Value::number(-5));
        assert!(errors(&bad_ttl).iter().any(|e| e.contains("Invalid TTL")));
    }

    #[test]
    fn unknown_values_are_not_judged() {
        let mut c = config("home.example.com", "x", "A", &["10.0.0.1"]);
        c.set_attr("records", Value::Unknown);
        assert!(errors(&c).is_empty());
        c.set_attr("zone", Value::Unknown);
        assert!(errors(&c).is_empty());
        assert_eq!(desired(&c).unwrap(), None);
    }
}
