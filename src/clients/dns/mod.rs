//! Record sets (RRsets) on authoritative DNS servers, through one [`Backend`] per kind of
//! server: RFC 2136 dynamic updates signed with TSIG, the PowerDNS HTTP API, and the
//! Cloudflare v4 API. Nothing here knows Terraform.
//!
//! The unit is the RRset: every record of one name and type. Values travel in the canonical
//! text form of [`rdata`], so a set read back compares equal to the set written.

pub mod cloudflare;
pub mod powerdns;
pub mod rdata;
mod registry;
pub mod rfc2136;

use std::fmt;

use async_trait::async_trait;

pub use rdata::RecordType;
pub use registry::Registry;

use crate::clients::deadline::{Interrupted, Retryable};

/// One RRset's address: its zone, its owner name and its type. Names are absolute,
/// lower-case, with their trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RrsetId {
    pub zone: String,
    pub name: String,
    pub rtype: RecordType,
}

impl RrsetId {
    /// The RRset of `name` in `zone`: `@` is the apex, a name ending in `.` is absolute
    /// (and must lie in the zone), any other name is relative to the zone.
    pub fn new(zone: &str, name: &str, rtype: RecordType) -> Result<RrsetId, String> {
        let zone = zone_name(zone)?;
        let name = owner_name(&zone, name)?;
        Ok(RrsetId { zone, name, rtype })
    }

    /// The owner name relative to the zone, `@` for the apex.
    pub fn relative_name(&self) -> String {
        relative(&self.zone, &self.name)
    }
}

impl fmt::Display for RrsetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
    }
}

/// A zone as an absolute, lower-case name.
pub fn zone_name(zone: &str) -> Result<String, String> {
    if zone.trim().is_empty() {
        return Err("the zone may not be empty".to_string());
    }
    rdata::absolute_name(zone)
}

/// `name` (as written in a record) made absolute within `zone` (absolute already).
pub fn owner_name(zone: &str, name: &str) -> Result<String, String> {
    let name = name.trim();
    if name == "@" || name.is_empty() {
        return Ok(zone.to_string());
    }
    if name.ends_with('.') {
        let absolute = rdata::absolute_name(name)?;
        if !in_zone(zone, &absolute) {
            return Err(format!("{name:?} is not inside the zone {zone:?}"));
        }
        return Ok(absolute);
    }
    let joined = format!("{name}.{zone}");
    rdata::absolute_name(&joined)
}

/// Whether absolute `name` is `zone` or lies below it.
pub fn in_zone(zone: &str, name: &str) -> bool {
    zone == "." || name == zone || name.ends_with(&format!(".{zone}"))
}

/// `name` relative to `zone` (`@` for the apex).
pub fn relative(zone: &str, name: &str) -> String {
    if name == zone {
        return "@".to_string();
    }
    name.strip_suffix(&format!(".{zone}")).unwrap_or(name).to_string()
}

/// The records of one RRset, canonical and sorted, and its TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rrset {
    pub ttl: u32,
    pub records: Vec<String>,
}

impl Rrset {
    /// A set from canonical values: sorted, duplicates dropped (servers ignore them too).
    pub fn new(ttl: u32, mut records: Vec<String>) -> Rrset {
        records.sort();
        records.dedup();
        Rrset { ttl, records }
    }

    /// Whether both hold the same records (TTL aside).
    pub fn same_records(&self, other: &Rrset) -> bool {
        self.records == other.records
    }
}

impl fmt::Display for Rrset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TTL {} [{}]", self.ttl, self.records.join(", "))
    }
}

/// Why a DNS operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The server could not be reached or the connection broke (retried).
    #[error("cannot reach {server}: {message}")]
    Unreachable { server: String, message: String },
    /// The server answered with a failure it may not repeat (SERVFAIL, HTTP 429/5xx; retried).
    #[error("{server} answered {what}")]
    Busy { server: String, what: String },
    /// The server refused our TSIG signature or API credentials.
    #[error("{server} refused the credentials: {message}")]
    Credentials { server: String, message: String },
    /// The server does not serve the zone (or is not authoritative for it).
    #[error("{server} does not serve the zone {zone}: {message}")]
    ZoneNotServed { server: String, zone: String, message: String },
    /// The server refused the change or the question (REFUSED, an API error).
    #[error("{server} refused: {message}")]
    Refused { server: String, message: String },
    /// The RRset is not what the change expected: someone else changed it meanwhile.
    #[error("{id} changed on {server} since it was last read; found {found}")]
    Changed { server: String, id: String, found: String },
    /// A change was applied only in part (APIs without transactions).
    #[error("{server}: {message}")]
    Partial { server: String, message: String },
    /// An answer we could not make sense of.
    #[error("{server}: unexpected answer: {message}")]
    Protocol { server: String, message: String },
    /// The deadline passed or Terraform asked us to stop.
    #[error("{0}")]
    Interrupted(#[from] Interrupted),
}

impl DnsError {
    /// Whether trying again may help: resets, timeouts, SERVFAIL, HTTP 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        matches!(self, DnsError::Unreachable { .. } | DnsError::Busy { .. })
    }
}

/// One authoritative server, or API, that holds zones.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// The server, for messages ("RFC 2136 server 10.0.0.1:53").
    fn describe(&self) -> String;

    /// The RRset as the server holds it now; `None` when the name has no records of the type.
    async fn read(&self, id: &RrsetId) -> Result<Option<Rrset>, DnsError>;

    /// Makes the RRset `desired`, replacing what is there. `expected` is what the caller
    /// last saw (`None`: nothing); backends that can make the change conditional on it do
    /// so and answer [`DnsError::Changed`] when it no longer holds.
    async fn write(&self, id: &RrsetId, expected: Option<&Rrset>, desired: &Rrset) -> Result<(), DnsError>;

    /// Removes the RRset, which the caller last saw as `expected`.
    async fn delete(&self, id: &RrsetId, expected: &Rrset) -> Result<(), DnsError>;
}

impl Retryable for DnsError {
    fn is_transient(&self) -> bool {
        DnsError::is_transient(self)
    }

    fn interrupted(&self) -> Option<Interrupted> {
        match self {
            DnsError::Interrupted(i) => Some(*i),
            _ => None,
        }
    }

    fn noting(self, note: &str) -> DnsError {
        match self {
            DnsError::Unreachable { server, message } => DnsError::Unreachable { server, message: format!("{message}; {note}") },
            DnsError::Busy { server, what } => DnsError::Busy { server, what: format!("{what}; {note}") },
            other => other,
        }
    }
}

/// The JSON body of an HTTP API's answer; failures are reported against `server`.
async fn json_body(response: reqwest::Response, server: &str) -> Result<serde_json::Value, DnsError> {
    let text = response
        .text()
        .await
        .map_err(|e| DnsError::Unreachable { server: server.to_string(), message: crate::clients::error_chain(&e) })?;
    serde_json::from_str(&text)
        .map_err(|e| DnsError::Protocol { server: server.to_string(), message: format!("the answer is not JSON: {e}") })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clients::deadline::{retry, Deadline};

    #[test]
    fn names_resolve_within_the_zone() {
        let id = RrsetId::new("Home.Example.com", "grafana", RecordType::A).unwrap();
        assert_eq!(id.zone, "home.example.com.");
        assert_eq!(id.name, "grafana.home.example.com.");
        assert_eq!(id.relative_name(), "grafana");
        let apex = RrsetId::new("home.example.com.", "@", RecordType::Mx).unwrap();
        assert_eq!(apex.name, "home.example.com.");
        assert_eq!(apex.relative_name(), "@");
        let absolute = RrsetId::new("home.example.com", "a.b.home.example.com.", RecordType::A).unwrap();
        assert_eq!(absolute.relative_name(), "a.b");
        let outside = RrsetId::new("home.example.com", "grafana.example.org.", RecordType::A).unwrap_err();
        assert!(outside.contains("not inside the zone"), "{outside}");
        // Not a suffix match on characters: "xhome.example.com." is outside.
        assert!(RrsetId::new("home.example.com", "xhome.example.com.", RecordType::A).is_err());
    }

    #[test]
    fn sets_are_sorted_without_duplicates() {
        let set = Rrset::new(300, vec!["10.0.0.2".into(), "10.0.0.1".into(), "10.0.0.2".into()]);
        assert_eq!(set.records, vec!["10.0.0.1", "10.0.0.2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_the_deadline() {
        use tokio_util::sync::CancellationToken;
        let calls = std::sync::atomic::AtomicU32::new(0);
        let deadline = Deadline::after(Duration::from_secs(3), CancellationToken::new());
        let result: Result<(), DnsError> = deadline
            .run(retry("read x", || async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(DnsError::Busy { server: "s".into(), what: "SERVFAIL".into() })
            }))
            .await;
        let error = result.unwrap_err();
        assert!(calls.load(std::sync::atomic::Ordering::SeqCst) > 3);
        assert!(error.to_string().contains("SERVFAIL"), "{error}");
        assert!(error.to_string().contains("gave up after"), "{error}");

        let calls = std::sync::atomic::AtomicU32::new(0);
        let result: Result<(), DnsError> = deadline
            .run(retry("write x", || async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(DnsError::Refused { server: "s".into(), message: "REFUSED".into() })
            }))
            .await;
        assert!(matches!(result, Err(DnsError::Refused { .. })));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "permanent failures are not retried");
    }
}
