//! external-dns's TXT registry, so that this provider and external-dns can share a zone:
//! each RRset one of them owns has a TXT record beside it naming the owner, and neither
//! changes an RRset that the other's TXT record claims.
//!
//! The TXT record sits at `<type>-<name>` (external-dns's "new" format, which works beside
//! CNAMEs too: `a-grafana.home.example.com.` for the A RRset of `grafana`) and holds
//! `heritage=external-dns,external-dns/owner=<owner id>,external-dns/resource=<resource>`.

use super::{RecordType, Rrset, RrsetId};

/// TTL of the registry's TXT records, as external-dns writes them.
const TTL: u32 = 300;
const HERITAGE: &str = "heritage=external-dns";
const OWNER_KEY: &str = "external-dns/owner";
const RESOURCE_KEY: &str = "external-dns/resource";

/// The registry of one owner id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub owner_id: String,
}

impl Registry {
    pub fn new(owner_id: impl Into<String>) -> Registry {
        Registry { owner_id: owner_id.into() }
    }

    /// Where the ownership record of `id` lives.
    pub fn record_id(id: &RrsetId) -> RrsetId {
        let prefix = id.rtype.as_str().to_ascii_lowercase();
        // A wildcard keeps its `*` leftmost: `*.apps` is recorded at `*.a-apps`.
        let name = match id.name.strip_prefix("*.") {
            Some(rest) => format!("*.{prefix}-{rest}"),
            None => format!("{prefix}-{}", id.name),
        };
        RrsetId { zone: id.zone.clone(), name, rtype: RecordType::Txt }
    }

    /// The ownership record this owner writes.
    pub fn record(&self, resource: &str) -> Rrset {
        Rrset::new(TTL, vec![format!("{HERITAGE},{OWNER_KEY}={},{RESOURCE_KEY}={resource}", self.owner_id)])
    }

    /// The owner an ownership record names, if it is one of external-dns's.
    pub fn owner_of(record: &Rrset) -> Option<String> {
        record.records.iter().find_map(|text| {
            let mut fields = text.split(',');
            if fields.next()? != HERITAGE {
                return None;
            }
            fields.find_map(|f| f.strip_prefix(OWNER_KEY).and_then(|v| v.strip_prefix('=')).map(str::to_string))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_records_follow_external_dns() {
        let id = RrsetId::new("home.example.com", "grafana", RecordType::A).unwrap();
        assert_eq!(Registry::record_id(&id).name, "a-grafana.home.example.com.");
        let wildcard = RrsetId::new("home.example.com", "*.apps", RecordType::Cname).unwrap();
        assert_eq!(Registry::record_id(&wildcard).name, "*.cname-apps.home.example.com.");
        let record = Registry::new("terraform").record("platform_dns_record");
        assert_eq!(
            record.records,
            vec!["heritage=external-dns,external-dns/owner=terraform,external-dns/resource=platform_dns_record"]
        );
        assert_eq!(Registry::owner_of(&record).as_deref(), Some("terraform"));
        let theirs = Rrset::new(300, vec!["heritage=external-dns,external-dns/owner=default,external-dns/resource=ingress/a/b".into()]);
        assert_eq!(Registry::owner_of(&theirs).as_deref(), Some("default"));
        assert_eq!(Registry::owner_of(&Rrset::new(300, vec!["v=spf1 -all".into()])), None);
    }
}
