//! DNS servers as resources see them: the provider's named `dns` blocks (read in
//! `provider::dns`) and the `connection` attribute a record may carry instead, both turned
//! into a [`DnsServer`] here and into a client ([`Backend`]) on first use.
//!
//! A connection is written with the keys of one backend: `server`, `key_name`,
//! `key_algorithm`, `key_secret` (RFC 2136); `url`, `api_key`, `server_id` (PowerDNS);
//! `api_token`, `base_url` (Cloudflare); and `owner_id` for external-dns's TXT registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::clients::dns::cloudflare::Cloudflare;
use crate::clients::dns::powerdns::PowerDns;
use crate::clients::dns::rfc2136::{Rfc2136, TsigKey};
use crate::clients::dns::Backend;
use crate::framework::diagnostics::{AttributePath, Diagnostic};
use crate::framework::value::Value;

/// The name of a `dns` block written without one.
pub const DEFAULT_DNS_NAME: &str = "default";

/// The keys each backend takes, with what they mean (for docs and diagnostics).
pub const RFC2136_FIELDS: &[(&str, &str)] = &[
    ("server", "the primary server, `host` or `host:port` (port 53 when absent)"),
    ("key_name", "name of the TSIG key, e.g. `tf-key.`"),
    ("key_algorithm", "TSIG algorithm: `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`"),
    ("key_secret", "the key's secret, base64 as `tsig-keygen` prints it"),
];
pub const POWERDNS_FIELDS: &[(&str, &str)] = &[
    ("url", "base URL of the PowerDNS API, e.g. `http://10.0.0.2:8081`"),
    ("api_key", "the API key (`api-key` in pdns.conf)"),
    ("server_id", "the server id in API paths (default `localhost`)"),
];
pub const CLOUDFLARE_FIELDS: &[(&str, &str)] = &[
    ("api_token", "an API token with DNS edit permission on the zones"),
    ("base_url", "base URL of the API (default `https://api.cloudflare.com/client/v4`), for proxies"),
];
pub const OWNER_ID_FIELD: (&str, &str) = (
    "owner_id",
    "turns on external-dns's TXT registry with this owner id: records are claimed with a TXT record as external-dns \
     does, and records another owner claims are left alone",
);

/// Where a record set lives: one server or API.
#[derive(Clone)]
pub enum DnsServer {
    Rfc2136 { server: String, key: Option<TsigKey> },
    PowerDns { url: String, server_id: String, api_key: SecretString },
    Cloudflare { base_url: Option<String>, api_token: SecretString },
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsServer::Rfc2136 { server, key } => f.debug_struct("Rfc2136").field("server", server).field("key", key).finish(),
            DnsServer::PowerDns { url, server_id, .. } => {
                f.debug_struct("PowerDns").field("url", url).field("server_id", server_id).finish_non_exhaustive()
            }
            DnsServer::Cloudflare { base_url, .. } => f.debug_struct("Cloudflare").field("base_url", base_url).finish_non_exhaustive(),
        }
    }
}

/// A server and how records on it are claimed.
#[derive(Debug, Clone)]
pub struct DnsConnection {
    pub server: DnsServer,
    /// external-dns registry owner id, when the registry is on.
    pub owner_id: Option<String>,
}

impl DnsConnection {
    /// A key identifying the server and credentials, for the client cache.
    fn cache_key(&self) -> String {
        match &self.server {
            DnsServer::Rfc2136 { server, key } => format!(
                "rfc2136|{server}|{}",
                key.as_ref().map(|k| format!("{}|{}|{}", k.name, k.algorithm, k.secret.expose_secret())).unwrap_or_default()
            ),
            DnsServer::PowerDns { url, server_id, api_key } => format!("powerdns|{url}|{server_id}|{}", api_key.expose_secret()),
            DnsServer::Cloudflare { base_url, api_token } => {
                format!("cloudflare|{}|{}", base_url.as_deref().unwrap_or_default(), api_token.expose_secret())
            }
        }
    }

    fn client(&self) -> Result<Arc<dyn Backend>, String> {
        Ok(match &self.server {
            DnsServer::Rfc2136 { server, key } => Arc::new(Rfc2136::new(server, key.clone())),
            DnsServer::PowerDns { url, server_id, api_key } => Arc::new(PowerDns::new(url, server_id, api_key.clone())?),
            DnsServer::Cloudflare { base_url, api_token } => Arc::new(Cloudflare::new(base_url.as_deref(), api_token.clone())?),
        })
    }
}

/// One connection's fields, from a `dns` block's sub-block or a `connection` map. `Ok(None)`
/// when a value is not known yet.
pub fn connection_from_fields(
    fields: &BTreeMap<String, Value>,
    owner_id: Option<&Value>,
    path: &AttributePath,
    key_path: impl Fn(&AttributePath, &str) -> AttributePath,
) -> Result<Option<DnsConnection>, Diagnostic> {
    let invalid = |name: &str, detail: String| Diagnostic::error("Invalid DNS connection", detail).at(key_path(path, name));
    let mut known = true;
    let mut text = |name: &str| -> Result<Option<String>, Diagnostic> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Unknown) => {
                known = false;
                Ok(None)
            }
            Some(_) => Err(invalid(name, format!("`{name}` must be a string."))),
        }
    };
    let owner_id = match owner_id {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Unknown) => return Ok(None),
        _ => None,
    };
    let server = text("server")?;
    let url = text("url")?;
    let api_token = text("api_token")?;
    let kinds = [server.is_some(), url.is_some(), api_token.is_some()].iter().filter(|k| **k).count();
    let connection = match (server, url, api_token) {
        _ if kinds > 1 => {
            return Err(Diagnostic::error(
                "Invalid DNS connection",
                "Give one kind of server: `server` (RFC 2136), `url` (PowerDNS) or `api_token` (Cloudflare), not several.",
            )
            .at(path.clone()))
        }
        (Some(server), None, None) => {
            let key_name = text("key_name")?;
            let key_secret = text("key_secret")?;
            let algorithm = text("key_algorithm")?.unwrap_or_else(|| "hmac-sha256".to_string());
            let key = match (key_name, key_secret) {
                (Some(name), Some(secret)) => {
                    TsigKey::check(&name, &algorithm, &secret).map_err(|m| {
                        let at = if m.contains("algorithm") { "key_algorithm" } else if m.contains("secret") { "key_secret" } else { "key_name" };
                        invalid(at, format!("{m}."))
                    })?;
                    Some(TsigKey { name, algorithm, secret: SecretString::from(secret) })
                }
                (None, None) => None,
                (Some(_), None) if known => return Err(invalid("key_secret", "`key_name` needs `key_secret`.".to_string())),
                (None, Some(_)) if known => return Err(invalid("key_name", "`key_secret` needs `key_name`.".to_string())),
                _ => None,
            };
            DnsServer::Rfc2136 { server, key }
        }
        (None, Some(url), None) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("url", format!("`url` must be an http:// or https:// URL, not {url:?}.")));
            }
            let api_key = text("api_key")?;
            let server_id = text("server_id")?.unwrap_or_else(|| "localhost".to_string());
            match api_key {
                Some(key) => DnsServer::PowerDns { url, server_id, api_key: SecretString::from(key) },
                None if known => return Err(invalid("api_key", "PowerDNS needs `api_key`.".to_string())),
                None => return Ok(None),
            }
        }
        (None, None, Some(token)) => {
            let base_url = text("base_url")?;
            DnsServer::Cloudflare { base_url, api_token: SecretString::from(token) }
        }
        _ if !known => return Ok(None),
        _ => {
            return Err(Diagnostic::error(
                "Invalid DNS connection",
                "Say which server: `server` (RFC 2136), `url` (PowerDNS) or `api_token` (Cloudflare).",
            )
            .at(path.clone()))
        }
    };
    if !known {
        return Ok(None);
    }
    Ok(Some(DnsConnection { server: connection, owner_id }))
}

/// The known keys of a `connection` map.
pub fn connection_keys() -> Vec<&'static str> {
    RFC2136_FIELDS
        .iter()
        .chain(POWERDNS_FIELDS)
        .chain(CLOUDFLARE_FIELDS)
        .map(|(name, _)| *name)
        .chain([OWNER_ID_FIELD.0])
        .collect()
}

/// The provider's `dns` blocks: each name's connection, or `None` while not known.
#[derive(Debug, Clone, Default)]
pub enum DnsDefaults {
    #[default]
    NotConfigured,
    /// The whole list of blocks is not known yet.
    Unknown,
    Known(BTreeMap<String, Option<DnsConnection>>),
}

/// What a resource learns when it asks for its server.
pub enum DnsTarget {
    Ready { backend: Arc<dyn Backend>, owner_id: Option<String> },
    /// Values known only after apply: plan contacts nothing.
    NotKnown,
}

/// Built clients, one per server and credentials, shared by all resources of a run.
#[derive(Default)]
pub struct DnsClients {
    clients: std::sync::Mutex<BTreeMap<String, Arc<dyn Backend>>>,
}

impl DnsClients {
    pub fn get(&self, connection: &DnsConnection) -> Result<Arc<dyn Backend>, String> {
        let key = connection.cache_key();
        let mut clients = self.clients.lock().expect("dns clients lock");
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = connection.client()?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// The `connection` map of a record, parsed; `Ok(None)` when absent, `Err(None)`-like
/// not-known is reported as `Ok(Some(None))`.
pub fn connection_from_attribute(attribute: Option<&Value>) -> Result<Option<Option<DnsConnection>>, Diagnostic> {
    let path = AttributePath::root("connection");
    match attribute {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Unknown) => Ok(Some(None)),
        Some(Value::Map(fields)) => {
            if let Some(unknown) = fields.keys().find(|k| !connection_keys().contains(&k.as_str())) {
                return Err(Diagnostic::error(
                    "Invalid DNS connection",
                    format!("`connection` has no key {unknown:?}; the keys are {}.", connection_keys().join(", ")),
                )
                .at(path.key(unknown)));
            }
            connection_from_fields(fields, fields.get(OWNER_ID_FIELD.0), &path, |p, k| p.clone().key(k)).map(Some)
        }
        Some(_) => Err(Diagnostic::error("Invalid DNS connection", "`connection` must be a map of strings.").at(path)),
    }
}

/// The optional `connection` attribute of DNS records: a server given on the record itself.
///
/// A sensitive `map(string)` like Kubernetes resources' `cluster`, for the same reasons: it
/// may come from resources of the same apply, and Terraform 1.0 cannot plan a null nested
/// attribute.
pub fn connection_attribute() -> crate::framework::schema::Attribute {
    let fields: Vec<String> = RFC2136_FIELDS
        .iter()
        .chain(POWERDNS_FIELDS)
        .chain(CLOUDFLARE_FIELDS)
        .chain([&OWNER_ID_FIELD])
        .map(|(name, what)| format!("`{name}` ({what})"))
        .collect();
    crate::framework::schema::Attribute::string_map("connection").optional().sensitive().describe(&format!(
        "The DNS server, given on the record instead of a provider `dns` block: a map with the keys of one backend: {}. \
         May refer to a server created in the same apply: while it is unknown, planning contacts nothing. Its \
         values are kept in state (marked sensitive), credentials included; a provider `dns` block keeps them out.",
        fields.join(", ")
    ))
}
