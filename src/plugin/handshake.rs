//! The go-plugin handshake: what the host puts in our environment, and the one line we
//! answer on stdout so it can connect.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;

/// Terraform and OpenTofu set this variable to this value; anything else means a person ran us.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// go-plugin's own wire version, always the first field of the handshake line.
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// What go-plugin clients expect when the binary is run by hand.
pub const NOT_A_COMMAND: &str = "This binary is a plugin. These are not meant to be executed directly.
Please execute the program that consumes these plugins, which will
load any plugins automatically.
(terraform-provider-platform: run `terraform init` in a configuration that requires
this provider, or start it with --debug to attach Terraform by hand.)";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HandshakeError {
    #[error("{NOT_A_COMMAND}")]
    NotLaunchedByHost,
    #[error(
        "the host offered plugin protocol versions {offered:?}, but this provider speaks only {supported:?}; \
         use Terraform >= 1.0 or OpenTofu"
    )]
    NoCommonVersion { offered: Vec<u32>, supported: Vec<u32> },
    #[error("{name} is not a valid number: {value:?}")]
    BadNumber { name: &'static str, value: String },
}

/// The part of the process environment the handshake depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct HostEnvironment {
    pub protocol_version: u32,
    pub min_port: u16,
    pub max_port: u16,
    /// PEM of the client's certificate when the host uses AutoMTLS.
    pub client_cert_pem: Option<String>,
    pub unix_socket_dir: Option<PathBuf>,
}

impl HostEnvironment {
    /// Reads the handshake variables through `get` (the process environment in production).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        supported: &[u32],
    ) -> Result<Self, HandshakeError> {
        if get(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(HandshakeError::NotLaunchedByHost);
        }
        let offered: Vec<u32> = get("PLUGIN_PROTOCOL_VERSIONS")
            .map(|list| list.split(',').filter_map(|v| v.trim().parse().ok()).collect())
            .unwrap_or_default();
        let protocol_version = negotiate(&offered, supported).ok_or_else(|| {
            HandshakeError::NoCommonVersion { offered, supported: supported.to_vec() }
        })?;
        let port = |name: &'static str, default: u16| match get(name) {
            None => Ok(default),
            Some(value) if value.is_empty() => Ok(default),
            Some(value) => value.trim().parse().map_err(|_| HandshakeError::BadNumber { name, value }),
        };
        Ok(HostEnvironment {
            protocol_version,
            min_port: port("PLUGIN_MIN_PORT", 0)?,
            max_port: port("PLUGIN_MAX_PORT", 0)?,
            client_cert_pem: get("PLUGIN_CLIENT_CERT").filter(|pem| !pem.trim().is_empty()),
            unix_socket_dir: get("PLUGIN_UNIX_SOCKET_DIR").filter(|d| !d.is_empty()).map(PathBuf::from),
        })
    }
}

/// Picks the highest version both sides speak. An empty offer means an old host that did
/// not negotiate: it then expects our highest version.
pub fn negotiate(offered: &[u32], supported: &[u32]) -> Option<u32> {
    if offered.is_empty() {
        return supported.iter().copied().max();
    }
    supported.iter().copied().filter(|v| offered.contains(v)).max()
}

/// Where the gRPC server listens.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenAddress {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl ListenAddress {
    pub fn network(&self) -> &'static str {
        match self {
            ListenAddress::Tcp(_) => "tcp",
            ListenAddress::Unix(_) => "unix",
        }
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddress::Tcp(addr) => write!(f, "{addr}"),
            ListenAddress::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `CORE|APP|NETWORK|ADDRESS|grpc|CERT`: the certificate is the DER of our server
/// certificate in standard base64 without padding, as go-plugin's client decodes it.
/// No seventh field: Terraform 1.0 splits the line into at most six.
pub fn handshake_line(app_version: u32, address: &ListenAddress, server_cert_der: Option<&[u8]>) -> String {
    let cert = server_cert_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!(
        "{CORE_PROTOCOL_VERSION}|{app_version}|{}|{address}|grpc|{cert}",
        address.network()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn refuses_to_run_without_the_magic_cookie() {
        let err = HostEnvironment::from_lookup(lookup(&[]), &[6]).unwrap_err();
        assert_eq!(err, HandshakeError::NotLaunchedByHost);
        assert!(err.to_string().starts_with("This binary is a plugin."));
        let wrong = lookup(&[(MAGIC_COOKIE_KEY, "nope")]);
        assert_eq!(HostEnvironment::from_lookup(wrong, &[6]).unwrap_err(), HandshakeError::NotLaunchedByHost);
    }

    #[test]
    fn negotiates_from_the_offered_versions_in_any_order() {
        assert_eq!(negotiate(&[5, 6], &[6]), Some(6));
        assert_eq!(negotiate(&[6, 5], &[6]), Some(6));
        assert_eq!(negotiate(&[5], &[6]), None);
        assert_eq!(negotiate(&[], &[6]), Some(6));
    }

    #[test]
    fn reads_ports_and_client_certificate() {
        let env = HostEnvironment::from_lookup(
            lookup(&[
                (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
                ("PLUGIN_PROTOCOL_VERSIONS", "6,5"),
                ("PLUGIN_MIN_PORT", "10000"),
                ("PLUGIN_MAX_PORT", "25000"),
                ("PLUGIN_CLIENT_CERT", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
            ]),
            &[6],
        )
        .unwrap();
        assert_eq!((env.protocol_version, env.min_port, env.max_port), (6, 10000, 25000));
        assert!(env.client_cert_pem.unwrap().contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn explains_a_version_mismatch() {
        let err = HostEnvironment::from_lookup(
            lookup(&[(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE), ("PLUGIN_PROTOCOL_VERSIONS", "5")]),
            &[6],
        )
        .unwrap_err();
        assert!(err.to_string().contains("[5]"), "{err}");
    }

    #[test]
    fn rejects_a_garbled_port() {
        let err = HostEnvironment::from_lookup(
            lookup(&[(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE), ("PLUGIN_MIN_PORT", "ten")]),
            &[6],
        )
        .unwrap_err();
        assert_eq!(err, HandshakeError::BadNumber { name: "PLUGIN_MIN_PORT", value: "ten".into() });
    }

    #[test]
    fn handshake_line_has_six_fields_and_unpadded_standard_base64() {
        // 4 bytes -> 6 base64 chars; padded would end in "==", URL-safe would use '-' / '_'.
        let der = [0xfb, 0xff, 0xfe, 0x01];
        let line = handshake_line(6, &ListenAddress::Tcp("127.0.0.1:10000".parse().unwrap()), Some(&der));
        assert_eq!(line, "1|6|tcp|127.0.0.1:10000|grpc|+//+AQ");
        assert_eq!(line.split('|').count(), 6);
        let unix = handshake_line(6, &ListenAddress::Unix("/tmp/plugin1".into()), None);
        assert_eq!(unix, "1|6|unix|/tmp/plugin1|grpc|");
    }
}
