//! A tiny blocking HTTPS client for the API server (readiness probes, direct object
//! checks), independent of the provider's own Kubernetes client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

impl HttpResponse {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

#[derive(Clone)]
pub struct HttpClient {
    host: String,
    port: u16,
    prefix: String,
    config: Arc<rustls::ClientConfig>,
    token: Option<String>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpClient(https://{}:{}{})", self.host, self.port, self.prefix)
    }
}

impl HttpClient {
    /// `server` is `https://host[:port][/prefix]`; `ca_pem` the cluster CA; either a bearer
    /// token or a PEM client certificate and key authenticates.
    pub fn new(
        server: &str,
        ca_pem: &str,
        token: Option<&str>,
        client_cert: Option<(&str, &str)>,
    ) -> Result<Self, String> {
        let rest = server.strip_prefix("https://").ok_or_else(|| format!("server {server:?} is not https://"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, String::new()),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or("bad IPv6 authority")?;
            (
                h.to_string(),
                p.strip_prefix(':').map(|p| p.parse::<u16>()).transpose().map_err(|e| e.to_string())?.unwrap_or(443),
            )
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|e| format!("bad port in {server}: {e}"))?),
                None => (authority.to_string(), 443),
            }
        };

        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("bad CA PEM: {e}"))?;
            roots.add(cert).map_err(|e| format!("bad CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("no CA certificate given".into());
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match client_cert {
            Some((cert_pem, key_pem)) => {
                let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("bad client certificate: {e}"))?;
                let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_bytes())
                    .map_err(|e| format!("bad client key: {e}"))?
                    .ok_or("no client key")?;
                builder.with_client_auth_cert(certs, key).map_err(|e| e.to_string())?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(HttpClient { host, port, prefix, config: Arc::new(config), token: token.map(str::to_string) })
    }

    pub fn get(&self, path: &str) -> Result<HttpResponse, String> {
        self.request("GET", path, None, None)
    }

    /// One request on a fresh connection (`Connection: close`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        let name =
            ServerName::try_from(self.host.clone()).map_err(|e| format!("bad server name {}: {e}", self.host))?;
        let conn = rustls::ClientConnection::new(self.config.clone(), name).map_err(|e| e.to_string())?;
        let sock = TcpStream::connect((self.host.as_str(), self.port))
            .map_err(|e| format!("connect {}:{}: {e}", self.host, self.port))?;
        sock.set_read_timeout(Some(Duration::from_secs(60))).ok();
        sock.set_write_timeout(Some(Duration::from_secs(60))).ok();
        let mut tls = rustls::StreamOwned::new(conn, sock);

        let body = body.unwrap_or_default();
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}:{}\r\nAccept: application/json\r\nUser-Agent: tf-acc-harness\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.prefix,
            self.host,
            self.port,
            body.len()
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        tls.write_all(&request).map_err(|e| format!("{method} {path}: {e}"))?;
        tls.flush().map_err(|e| format!("{method} {path}: {e}"))?;

        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(resp) = parse_response(&buf, false)? {
                return Ok(resp);
            }
            match tls.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                // Go servers may close without close_notify.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(format!("{method} {path}: read: {e}")),
            }
        }
        parse_response(&buf, true)?.ok_or_else(|| format!("{method} {path}: truncated response ({} bytes)", buf.len()))
    }
}

/// Parses a complete response, or returns `None` when more bytes are needed.
fn parse_response(buf: &[u8], eof: bool) -> Result<Option<HttpResponse>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                content_length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let body = &buf[end + 4..];
    let body = if chunked {
        match dechunk(body) {
            Some(b) => b,
            None if eof => return Err("truncated chunked body".into()),
            None => return Ok(None),
        }
    } else if let Some(len) = content_length {
        if body.len() < len {
            return if eof { Err("truncated body".into()) } else { Ok(None) };
        }
        body[..len].to_vec()
    } else if eof {
        body.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(HttpResponse { status, body: String::from_utf8_lossy(&body).into_owned() }))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
