//! RFC 2136 dynamic updates and direct queries to an authoritative server, over TCP, every
//! message signed with TSIG (RFC 8945) and every answer's signature checked.
//!
//! Reads ask the server itself, never a resolver. Writes are one UPDATE message each, made
//! conditional on what the caller last read (RFC 2136 prerequisites): "the RRset does not
//! exist" for a create, "the RRset is exactly these records" for a change, so a set changed
//! by someone else meanwhile is reported instead of overwritten.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType as WireType, TSigner};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clients::deadline::retry;
use super::rdata::{self, Caa, RecordType};
use super::{Backend, DnsError, Rrset, RrsetId};

/// Seconds of clock difference the server may tolerate (RFC 8945 recommends 300).
const FUDGE: u16 = 300;
/// Largest message accepted from a server.
const MAX_MESSAGE: usize = 65535;

/// The TSIG algorithms a key may use.
pub const ALGORITHMS: [&str; 3] = ["hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// A TSIG key: its name, algorithm and secret (base64, as `tsig-keygen` prints it).
#[derive(Clone)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey").field("name", &self.name).field("algorithm", &self.algorithm).field("secret", &"(redacted)").finish()
    }
}

impl TsigKey {
    /// Checks the key without using it: a known algorithm, a valid name, a base64 secret.
    pub fn check(name: &str, algorithm: &str, secret: &str) -> Result<(), String> {
        algorithm_of(algorithm)?;
        Name::from_ascii(name).map_err(|e| format!("key name {name:?} is not a DNS name: {e}"))?;
        decode_secret(secret).map(|_| ())
    }

    fn signer(&self) -> Result<TSigner, String> {
        let key = decode_secret(self.secret.expose_secret())?;
        let name = Name::from_ascii(&self.name).map_err(|e| format!("key name {:?} is not a DNS name: {e}", self.name))?;
        TSigner::new(key, algorithm_of(&self.algorithm)?, name, FUDGE).map_err(|e| e.to_string())
    }
}

fn algorithm_of(text: &str) -> Result<TsigAlgorithm, String> {
    match text.to_ascii_lowercase().trim_end_matches('.') {
        "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
        "hmac-sha1" | "hmac-md5" | "hmac-md5.sig-alg.reg.int" | "hmac-sha224" => Err(format!(
            "TSIG algorithm {text:?} is not supported: it is deprecated (RFC 8945); make a key with one of {}",
            ALGORITHMS.join(", ")
        )),
        _ => Err(format!("unknown TSIG algorithm {text:?}; use one of {}", ALGORITHMS.join(", "))),
    }
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim())
        .map_err(|_| "the TSIG secret is not valid base64 (as tsig-keygen prints it)".to_string())?;
    if key.is_empty() {
        return Err("the TSIG secret is empty".to_string());
    }
    Ok(key)
}

/// One server that takes dynamic updates.
#[derive(Debug, Clone)]
pub struct Rfc2136 {
    /// `host:port`.
    server: String,
    key: Option<TsigKey>,
}

impl Rfc2136 {
    /// `server` is `host` or `host:port` (port 53 when absent).
    pub fn new(server: &str, key: Option<TsigKey>) -> Rfc2136 {
        let server = if server.parse::<std::net::SocketAddr>().is_ok() || server.rsplit_once(':').is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok()) {
            server.to_string()
        } else if server.contains(':') && !server.starts_with('[') {
            format!("[{server}]:53")
        } else {
            format!("{server}:53")
        };
        Rfc2136 { server, key }
    }

    fn err_unreachable(&self, message: impl Into<String>) -> DnsError {
        DnsError::Unreachable { server: self.server.clone(), message: message.into() }
    }

    fn protocol(&self, message: impl Into<String>) -> DnsError {
        DnsError::Protocol { server: self.server.clone(), message: message.into() }
    }

    /// Sends `message` (signed when we have a key) and returns the verified answer.
    async fn exchange(&self, mut message: Message) -> Result<Message, DnsError> {
        let verifier = match &self.key {
            Some(key) => {
                let signer = key.signer().map_err(|m| DnsError::Credentials { server: self.server.clone(), message: m })?;
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
                message.finalize(&signer, now).map_err(|e| self.protocol(format!("cannot sign the message: {e}")))?
            }
            None => None,
        };
        let bytes = message.to_vec().map_err(|e| self.protocol(format!("cannot encode the message: {e}")))?;
        let answer = self.round_trip(&bytes).await?;
        let response = Message::from_vec(&answer).map_err(|e| self.protocol(format!("cannot decode the answer: {e}")))?;
        if response.metadata.id != message.metadata.id {
            return Err(self.protocol("the answer's id does not match the question's"));
        }
        // A server that rejects our key answers NOTAUTH with an unsigned TSIG naming why.
        if let Some(error) = response.signature.as_ref().and_then(|s| s.data.error) {
            let why = match error {
                TsigError::BadSig => "the signature does not verify (wrong TSIG secret or algorithm)".to_string(),
                TsigError::BadKey => "the server does not know the TSIG key name or algorithm".to_string(),
                TsigError::BadTime => "the signature's time is outside the server's window (check both clocks)".to_string(),
                other => format!("TSIG error {other:?}"),
            };
            return Err(DnsError::Credentials { server: self.server.clone(), message: why });
        }
        if let Some(mut verifier) = verifier {
            if response.signature.is_none() {
                let code = response.metadata.response_code;
                // Failures some servers (and middleboxes) answer unsigned: worth another try.
                if code == ResponseCode::ServFail {
                    return Err(DnsError::Busy { server: self.server.clone(), what: "SERVFAIL (unsigned)".to_string() });
                }
                if code == ResponseCode::NotAuth {
                    return Err(DnsError::Credentials {
                        server: self.server.clone(),
                        message: "the server refused the TSIG signature (NOTAUTH)".to_string(),
                    });
                }
                return Err(self.protocol(format!("the answer ({code}) is not signed; a TSIG-signed question needs a signed answer")));
            }
            verifier.verify(&answer).map_err(|e| self.protocol(format!("the answer's TSIG signature does not verify: {e}")))?;
        }
        Ok(response)
    }

    /// One TCP exchange: two-byte length, message; two-byte length, answer.
    async fn round_trip(&self, bytes: &[u8]) -> Result<Vec<u8>, DnsError> {
        let io = |e: std::io::Error| self.err_unreachable(e.to_string());
        let mut stream = TcpStream::connect(&self.server).await.map_err(io)?;
        let length = u16::try_from(bytes.len()).map_err(|_| self.protocol("the message is larger than 64 KiB"))?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(bytes);
        stream.write_all(&framed).await.map_err(io)?;
        let length = stream.read_u16().await.map_err(io)? as usize;
        if length > MAX_MESSAGE {
            return Err(self.protocol("the answer is too large"));
        }
        let mut answer = vec![0; length];
        stream.read_exact(&mut answer).await.map_err(io)?;
        Ok(answer)
    }

    /// What a non-NOERROR answer to a question or update about `id` means.
    fn answer_error(&self, code: ResponseCode, id: &RrsetId, update: bool) -> DnsError {
        let server = self.server.clone();
        match code {
            ResponseCode::ServFail => DnsError::Busy { server, what: "SERVFAIL".to_string() },
            ResponseCode::NotZone => DnsError::ZoneNotServed {
                server,
                zone: id.zone.clone(),
                message: format!("NOTZONE: {} is not in the zone the server has", id.name),
            },
            ResponseCode::NotAuth => DnsError::ZoneNotServed {
                server,
                zone: id.zone.clone(),
                message: "NOTAUTH: the server is not authoritative for it".to_string(),
            },
            ResponseCode::Refused if update => DnsError::Refused {
                server,
                message: format!(
                    "REFUSED the update of {id}: the zone may not be served there, the key may not update it \
                     (BIND: allow-update/update-policy; Knot: an acl with action update), or the zone's checks refused \
                     the records (BIND's check-integrity: an MX or SRV target inside the zone needs its address \
                     records first, so make the record depend on them); the server's log says which"
                ),
            },
            ResponseCode::Refused => DnsError::ZoneNotServed {
                server,
                zone: id.zone.clone(),
                message: "REFUSED the question: the server does not serve the zone, or does not answer us".to_string(),
            },
            other => DnsError::Refused { server, message: format!("{other} for {id}") },
        }
    }

    async fn read_once(&self, id: &RrsetId) -> Result<Option<Rrset>, DnsError> {
        let name = wire_name(&id.name).map_err(|m| self.protocol(m))?;
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(name.clone(), WireType::from(id.rtype.code())));
        let response = self.exchange(message).await?;
        let code = response.metadata.response_code;
        if code == ResponseCode::NXDomain {
            return Ok(None);
        }
        if code != ResponseCode::NoError {
            return Err(self.answer_error(code, id, false));
        }
        let wanted = WireType::from(id.rtype.code());
        let matching = |records: &[Record]| -> Vec<Record> {
            records.iter().filter(|r| r.name.to_lowercase() == name.to_lowercase() && r.record_type() == wanted).cloned().collect()
        };
        let mut found = matching(&response.answers);
        // NS records below the apex are a delegation: the server answers with a referral,
        // the set in the authority section and the answer not authoritative.
        let referral = found.is_empty() && id.rtype == RecordType::Ns && id.name != id.zone;
        if referral {
            found = matching(&response.authorities);
        }
        let delegated = referral && !found.is_empty();
        if !response.metadata.authoritative && !delegated {
            return Err(DnsError::ZoneNotServed {
                server: self.server.clone(),
                zone: id.zone.clone(),
                message: "its answer is not authoritative".to_string(),
            });
        }
        let mut ttl = None;
        let mut records = Vec::new();
        for record in &found {
            ttl = Some(ttl.map_or(record.ttl, |t: u32| t.min(record.ttl)));
            records.push(text_of(&record.data).map_err(|m| self.protocol(m))?);
        }
        Ok(ttl.map(|ttl| Rrset::new(ttl, records)))
    }

    /// An UPDATE of `id`'s zone with the given prerequisites and updates.
    async fn update_once(&self, id: &RrsetId, prerequisites: Vec<Record>, updates: Vec<Record>) -> Result<(), DnsError> {
        let zone = wire_name(&id.zone).map_err(|m| self.protocol(m))?;
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        let mut zone_query = Query::new();
        zone_query.set_name(zone).set_query_class(DNSClass::IN).set_query_type(WireType::SOA);
        message.add_zone(zone_query);
        message.add_pre_requisites(prerequisites);
        message.add_updates(updates);
        let response = self.exchange(message).await?;
        match response.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            // A prerequisite failed: the set is not what the caller last saw.
            ResponseCode::NXRRSet | ResponseCode::YXRRSet | ResponseCode::NXDomain | ResponseCode::YXDomain => {
                let found = match self.read_once(id).await {
                    Ok(Some(set)) => set.to_string(),
                    Ok(None) => "no records".to_string(),
                    Err(e) => format!("(cannot read it: {e})"),
                };
                Err(DnsError::Changed { server: self.server.clone(), id: id.to_string(), found })
            }
            code => Err(self.answer_error(code, id, true)),
        }
    }

    fn records(&self, id: &RrsetId, ttl: u32, class: DNSClass, set: &Rrset) -> Result<Vec<Record>, DnsError> {
        let name = wire_name(&id.name).map_err(|m| self.protocol(m))?;
        set.records
            .iter()
            .map(|value| {
                let data = rdata_of(id.rtype, value).map_err(|m| self.protocol(m))?;
                let mut record = Record::from_rdata(name.clone(), ttl, data);
                record.dns_class = class;
                Ok(record)
            })
            .collect()
    }

    /// The prerequisite "the RRset is exactly `set`" (RFC 2136 2.4.2), or "no such RRset" (2.4.3).
    fn prerequisites(&self, id: &RrsetId, expected: Option<&Rrset>) -> Result<Vec<Record>, DnsError> {
        match expected {
            Some(set) => self.records(id, 0, DNSClass::IN, set),
            None => {
                let name = wire_name(&id.name).map_err(|m| self.protocol(m))?;
                let mut record = Record::update0(name, 0, WireType::from(id.rtype.code()));
                record.dns_class = DNSClass::NONE;
                Ok(vec![record])
            }
        }
    }

    /// "Delete the RRset" (RFC 2136 2.5.2).
    fn delete_all(&self, id: &RrsetId) -> Result<Record, DnsError> {
        let name = wire_name(&id.name).map_err(|m| self.protocol(m))?;
        let mut record = Record::update0(name, 0, WireType::from(id.rtype.code()));
        record.dns_class = DNSClass::ANY;
        Ok(record)
    }
}

#[async_trait]
impl Backend for Rfc2136 {
    fn describe(&self) -> String {
        format!("RFC 2136 server {}", self.server)
    }

    async fn read(&self, id: &RrsetId) -> Result<Option<Rrset>, DnsError> {
        retry(&format!("read {id}"), || self.read_once(id)).await
    }

    async fn write(&self, id: &RrsetId, expected: Option<&Rrset>, desired: &Rrset) -> Result<(), DnsError> {
        let prerequisites = self.prerequisites(id, expected)?;
        let mut updates = vec![self.delete_all(id)?];
        updates.extend(self.records(id, desired.ttl, DNSClass::IN, desired)?);
        retry(&format!("update {id}"), || async {
            match self.update_once(id, prerequisites.clone(), updates.clone()).await {
                // A retried update that did land the first time finds its own result.
                Err(DnsError::Changed { .. }) if self.read_once(id).await.ok().flatten().as_ref() == Some(desired) => Ok(()),
                other => other,
            }
        })
        .await
    }

    async fn delete(&self, id: &RrsetId, expected: &Rrset) -> Result<(), DnsError> {
        let prerequisites = self.prerequisites(id, Some(expected))?;
        let updates = vec![self.delete_all(id)?];
        retry(&format!("delete {id}"), || async {
            match self.update_once(id, prerequisites.clone(), updates.clone()).await {
                Err(DnsError::Changed { .. }) if self.read_once(id).await.ok().flatten().is_none() => Ok(()),
                other => other,
            }
        })
        .await
    }
}

fn wire_name(name: &str) -> Result<Name, String> {
    Name::from_ascii(name).map_err(|e| format!("{name:?} is not a DNS name: {e}"))
}

/// The wire form of one canonical value.
fn rdata_of(rtype: RecordType, value: &str) -> Result<RData, String> {
    let mut bytes = Vec::new();
    let name_bytes = |bytes: &mut Vec<u8>, name: &str| -> Result<(), String> {
        for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
            bytes.push(label.len() as u8);
            bytes.extend_from_slice(label.as_bytes());
        }
        bytes.push(0);
        Ok(())
    };
    match rtype {
        RecordType::A => bytes.extend_from_slice(&value.parse::<std::net::Ipv4Addr>().map_err(|e| e.to_string())?.octets()),
        RecordType::Aaaa => bytes.extend_from_slice(&value.parse::<std::net::Ipv6Addr>().map_err(|e| e.to_string())?.octets()),
        RecordType::Cname | RecordType::Ns | RecordType::Ptr => name_bytes(&mut bytes, value)?,
        RecordType::Mx | RecordType::Srv => {
            let (numbers, target) = rdata::split_numbers(rtype, value);
            for n in numbers {
                bytes.extend_from_slice(&n.to_be_bytes());
            }
            name_bytes(&mut bytes, target)?;
        }
        RecordType::Txt => {
            for chunk in rdata::txt_chunks(value) {
                bytes.push(chunk.len() as u8);
                bytes.extend_from_slice(chunk.as_bytes());
            }
        }
        RecordType::Caa => {
            let caa = Caa::parse(value)?;
            bytes.push(caa.flags);
            bytes.push(caa.tag.len() as u8);
            bytes.extend_from_slice(caa.tag.as_bytes());
            bytes.extend_from_slice(caa.value.as_bytes());
        }
    }
    let length = u16::try_from(bytes.len()).map_err(|_| "the record is larger than 64 KiB".to_string())?;
    let mut decoder = BinDecoder::new(&bytes);
    RData::read(&mut decoder, WireType::from(rtype.code()), Restrict::new(length)).map_err(|e| format!("cannot encode {value:?}: {e}"))
}

/// The canonical text of one record the server sent.
fn text_of(data: &RData) -> Result<String, String> {
    let name = |n: &Name| n.to_lowercase().to_ascii();
    Ok(match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => name(&n.0),
        RData::NS(n) => name(&n.0),
        RData::PTR(n) => name(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name(&mx.exchange)),
        RData::SRV(srv) => format!("{} {} {} {}", srv.priority, srv.weight, srv.port, name(&srv.target)),
        RData::TXT(txt) => {
            let bytes: Vec<u8> = txt.txt_data.iter().flat_map(|c| c.iter().copied()).collect();
            String::from_utf8(bytes).map_err(|_| "a TXT record holds bytes that are not UTF-8".to_string())?
        }
        RData::CAA(caa) => Caa {
            flags: caa.flags(),
            tag: caa.tag.to_ascii_lowercase(),
            value: String::from_utf8(caa.value.clone()).map_err(|_| "a CAA value is not UTF-8".to_string())?,
        }
        .to_string(),
        other => return Err(format!("unexpected record type {}", other.record_type())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_survives_the_wire() {
        let long_txt = "k=".to_string() + &"a".repeat(400);
        let cases = [
            (RecordType::A, "10.0.0.1"),
            (RecordType::Aaaa, "2001:db8::1"),
            (RecordType::Cname, "ingress.example.com."),
            (RecordType::Ns, "ns1.example.com."),
            (RecordType::Ptr, "host.example.com."),
            (RecordType::Mx, "10 mail.example.com."),
            (RecordType::Srv, "0 5 5060 sip.example.com."),
            (RecordType::Txt, "v=spf1 include:_spf.example.com ~all"),
            (RecordType::Txt, long_txt.as_str()),
            (RecordType::Caa, "0 issue \"letsencrypt.org\""),
            (RecordType::Caa, "128 iodef \"mailto:security@example.com\""),
        ];
        for (rtype, value) in cases {
            let data = rdata_of(rtype, value).unwrap_or_else(|e| panic!("{rtype} {value}: {e}"));
            assert_eq!(text_of(&data).unwrap(), value, "{rtype}");
        }
    }

    #[test]
    fn keys_are_checked_before_use() {
        assert!(TsigKey::check("tf-key.", "hmac-sha256", "c2VjcmV0").is_ok());
        assert!(TsigKey::check("tf-key.", "hmac-sha256", "not base64!").unwrap_err().contains("base64"));
        assert!(TsigKey::check("tf-key.", "hmac-sha1", "c2VjcmV0").unwrap_err().contains("not supported"));
        assert!(TsigKey::check("tf-key.", "hmac-foo", "c2VjcmV0").unwrap_err().contains("unknown"));
        let key = TsigKey { name: "k.".into(), algorithm: "hmac-sha512".into(), secret: SecretString::from("c2VjcmV0") };
        assert!(!format!("{key:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn servers_get_port_53_unless_given_one() {
        assert_eq!(Rfc2136::new("10.0.0.1", None).server, "10.0.0.1:53");
        assert_eq!(Rfc2136::new("10.0.0.1:5353", None).server, "10.0.0.1:5353");
        assert_eq!(Rfc2136::new("ns.example.com", None).server, "ns.example.com:53");
        assert_eq!(Rfc2136::new("::1", None).server, "[::1]:53");
        assert_eq!(Rfc2136::new("[::1]:5353", None).server, "[::1]:5353");
    }
}
