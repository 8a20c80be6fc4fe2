//! The PowerDNS Authoritative HTTP API (`/api/v1/servers/<server id>/zones/<zone>`): reads
//! from the zone's RRsets, writes one PATCH per change with `changetype` REPLACE or DELETE,
//! which PowerDNS applies as one transaction.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::clients::deadline::retry;
use super::rdata::{self, RecordType};
use super::{json_body, Backend, DnsError, Rrset, RrsetId};
use crate::clients::error_chain;

/// One PowerDNS server's API.
#[derive(Clone)]
pub struct PowerDns {
    url: String,
    server_id: String,
    api_key: SecretString,
    client: reqwest::Client,
}

impl std::fmt::Debug for PowerDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDns").field("url", &self.url).field("server_id", &self.server_id).finish_non_exhaustive()
    }
}

impl PowerDns {
    /// `url` is the API's base (`http://10.0.0.2:8081`); `server_id` is usually `localhost`.
    pub fn new(url: &str, server_id: &str, api_key: SecretString) -> Result<PowerDns, String> {
        let client = crate::clients::http::client()?;
        Ok(PowerDns { url: url.trim_end_matches('/').to_string(), server_id: server_id.to_string(), api_key, client })
    }

    fn zone_url(&self, zone: &str) -> String {
        format!("{}/api/v1/servers/{}/zones/{}", self.url, self.server_id, zone_id(zone))
    }

    /// Sends a request; transport failures and 429/5xx are transient, other failures carry
    /// the API's own `error` text.
    async fn send(&self, request: reqwest::RequestBuilder, zone: &str) -> Result<reqwest::Response, DnsError> {
        let server = self.url.clone();
        let response = request
            .header("X-API-Key", self.api_key.expose_secret())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| DnsError::Unreachable { server: server.clone(), message: error_chain(&e) })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(300).collect());
        Err(match status {
            429 | 500..=599 => DnsError::Busy { server, what: format!("HTTP {status}: {message}") },
            401 | 403 => DnsError::Credentials { server, message: format!("HTTP {status}: {message} (check api_key)") },
            404 => DnsError::ZoneNotServed { server, zone: zone.to_string(), message: format!("HTTP 404: {message}") },
            _ => DnsError::Refused { server, message: format!("HTTP {status}: {message}") },
        })
    }

    async fn read_once(&self, id: &RrsetId) -> Result<Option<Rrset>, DnsError> {
        let response = self.send(self.client.get(self.zone_url(&id.zone)), &id.zone).await?;
        let zone = json_body(response, &self.url).await?;
        let rrsets = zone.get("rrsets").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(rrset) = rrsets.iter().find(|r| {
            r.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&id.name))
                && r.get("type").and_then(Value::as_str) == Some(id.rtype.as_str())
        }) else {
            return Ok(None);
        };
        let ttl = rrset.get("ttl").and_then(Value::as_u64).unwrap_or_default() as u32;
        let mut records = Vec::new();
        for record in rrset.get("records").and_then(Value::as_array).into_iter().flatten() {
            if record.get("disabled").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let content = record.get("content").and_then(Value::as_str).unwrap_or_default();
            let value = rdata::canonical(id.rtype, content).map_err(|m| DnsError::Protocol {
                server: self.url.clone(),
                message: format!("record {content:?}: {m}"),
            })?;
            records.push(value);
        }
        if records.is_empty() {
            return Ok(None);
        }
        Ok(Some(Rrset::new(ttl, records)))
    }

    async fn patch(&self, id: &RrsetId, rrset: Value) -> Result<(), DnsError> {
        let body = json!({ "rrsets": [rrset] });
        let request = self
            .client
            .patch(self.zone_url(&id.zone))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        self.send(request, &id.zone).await.map(|_| ())
    }

    /// `Changed` unless `live` (just read) holds what the caller expected.
    fn check_unchanged(&self, id: &RrsetId, expected: Option<&Rrset>, live: Option<Rrset>) -> Result<(), DnsError> {
        let same = match (&live, expected) {
            (None, None) => true,
            (Some(live), Some(expected)) => live.same_records(expected),
            _ => false,
        };
        if same {
            return Ok(());
        }
        let found = live.map_or_else(|| "no records".to_string(), |s| s.to_string());
        Err(DnsError::Changed { server: self.url.clone(), id: id.to_string(), found })
    }
}

/// PowerDNS content of one canonical value: TXT quoted in chunks, the rest as it is.
fn content(rtype: RecordType, value: &str) -> String {
    match rtype {
        RecordType::Txt => rdata::txt_presentation(value),
        _ => value.to_string(),
    }
}

/// A zone's id in API paths: its name with the trailing dot; `/` escaped as PowerDNS does.
fn zone_id(zone: &str) -> String {
    zone.replace('=', "=3D").replace('/', "=2F")
}

#[async_trait]
impl Backend for PowerDns {
    fn describe(&self) -> String {
        format!("PowerDNS API {}", self.url)
    }

    async fn read(&self, id: &RrsetId) -> Result<Option<Rrset>, DnsError> {
        retry(&format!("read {id}"), || self.read_once(id)).await
    }

    async fn write(&self, id: &RrsetId, expected: Option<&Rrset>, desired: &Rrset) -> Result<(), DnsError> {
        let records: Vec<Value> =
            desired.records.iter().map(|v| json!({ "content": content(id.rtype, v), "disabled": false })).collect();
        let rrset = json!({
            "name": id.name, "type": id.rtype.as_str(), "ttl": desired.ttl, "changetype": "REPLACE", "records": records,
        });
        self.change(id, expected, Some(desired), rrset).await
    }

    async fn delete(&self, id: &RrsetId, expected: &Rrset) -> Result<(), DnsError> {
        let rrset = json!({ "name": id.name, "type": id.rtype.as_str(), "changetype": "DELETE" });
        self.change(id, Some(expected), None, rrset).await
    }
}

impl PowerDns {
    /// One PATCH that turns `expected` into `outcome` (`None`: deleted). Every attempt reads
    /// first: the set must still be `expected`, unless a PATCH already sent landed after all
    /// (its answer lost), in which case the set is `outcome` and there is nothing left to do.
    async fn change(
        &self,
        id: &RrsetId,
        expected: Option<&Rrset>,
        outcome: Option<&Rrset>,
        rrset: Value,
    ) -> Result<(), DnsError> {
        let sent = AtomicBool::new(false);
        let verb = if outcome.is_some() { "update" } else { "delete" };
        retry(&format!("{verb} {id}"), || {
            let rrset = rrset.clone();
            let sent = &sent;
            async move {
                let live = self.read_once(id).await?;
                if sent.load(Ordering::SeqCst) && live.as_ref() == outcome {
                    return Ok(());
                }
                self.check_unchanged(id, expected, live)?;
                sent.store(true, Ordering::SeqCst);
                self.patch(id, rrset).await
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_presentation_format() {
        assert_eq!(content(RecordType::Txt, "v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(content(RecordType::Caa, "0 issue \"letsencrypt.org\""), "0 issue \"letsencrypt.org\"");
        assert_eq!(content(RecordType::Mx, "10 mail.example.com."), "10 mail.example.com.");
        assert_eq!(zone_id("0/26.2.0.192.in-addr.arpa."), "0=2F26.2.0.192.in-addr.arpa.");
    }
}
