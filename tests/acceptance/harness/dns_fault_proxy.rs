//! A fault-injecting TCP proxy on 127.0.0.1 in front of one of the rig's DNS servers
//! (`harness::dns`): either its DNS port (DNS over TCP, RFC 1035 4.2.2: each message framed
//! by a two-byte length) or the PowerDNS HTTP API.
//!
//! Per a [`Schedule`] it resets the first connections (accepted, then dropped with RST before
//! a byte is read), answers the first DNS messages SERVFAIL itself (made from the question:
//! same id, QR set, RCODE 2, unsigned), swallows messages without answering (stalls), or
//! answers the first HTTP requests 503 or 429. Everything else is forwarded as it came, and
//! answers go back byte for byte, so TSIG signatures and API keys are judged by the real
//! server. It counts what it injected ([`Counts`]), so a test can tell a retry happened.
//!
//! HTTP requests are forwarded one per connection (`Connection: close`), bodies by
//! `Content-Length` only (what the provider's client sends); it knows nothing of TLS.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::background::Background;

/// What the proxy does, in order: faults are used up by the first connections, messages or
/// requests that reach it, then everything is forwarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Connections accepted and dropped at once (RST), before reading anything.
    pub resets: u64,
    /// DNS messages answered SERVFAIL by the proxy, not forwarded.
    pub servfails: u64,
    /// DNS messages or HTTP requests read and never answered; the connection stays open.
    pub stalls: u64,
    /// HTTP requests answered 503 Service Unavailable, not forwarded.
    pub http_503: u64,
    /// HTTP requests answered 429 Too Many Requests (`Retry-After: 1`), not forwarded.
    pub http_429: u64,
}

/// What the proxy has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub connections: u64,
    pub resets: u64,
    pub servfails: u64,
    pub stalls: u64,
    pub http_503: u64,
    pub http_429: u64,
    /// DNS messages or HTTP requests passed on to the server.
    pub forwarded: u64,
}

/// What the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    DnsTcp,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageFault {
    ServFail,
    Stall,
    Http503,
    Http429,
}

#[derive(Default)]
struct State {
    left: Schedule,
    counts: Counts,
}

impl State {
    /// Takes one reset if any is left.
    fn take_reset(&mut self) -> bool {
        self.counts.connections += 1;
        if self.left.resets == 0 {
            return false;
        }
        self.left.resets -= 1;
        self.counts.resets += 1;
        true
    }

    /// The fault for the next message or request, counted; `None`: forward it (counted too).
    fn take_message_fault(&mut self, protocol: Protocol) -> Option<MessageFault> {
        let order: &[MessageFault] = match protocol {
            Protocol::DnsTcp => &[MessageFault::ServFail, MessageFault::Stall],
            Protocol::Http => &[MessageFault::Http503, MessageFault::Http429, MessageFault::Stall],
        };
        for &fault in order {
            let (left, done) = self.slot(fault);
            if *left > 0 {
                *left -= 1;
                *done += 1;
                return Some(fault);
            }
        }
        self.counts.forwarded += 1;
        None
    }

    /// How many of `fault` are left, and how many were injected.
    fn slot(&mut self, fault: MessageFault) -> (&mut u64, &mut u64) {
        let (left, counts) = (&mut self.left, &mut self.counts);
        match fault {
            MessageFault::ServFail => (&mut left.servfails, &mut counts.servfails),
            MessageFault::Stall => (&mut left.stalls, &mut counts.stalls),
            MessageFault::Http503 => (&mut left.http_503, &mut counts.http_503),
            MessageFault::Http429 => (&mut left.http_429, &mut counts.http_429),
        }
    }
}

pub struct DnsFaultProxy {
    address: String,
    state: Arc<Mutex<State>>,
    _server: Background,
}

impl std::fmt::Debug for DnsFaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsFaultProxy").field("address", &self.address).field("counts", &self.counts()).finish()
    }
}

impl DnsFaultProxy {
    /// A proxy in front of the DNS server at `upstream` (`127.0.0.1:PORT`, TCP).
    pub fn dns(upstream: &str, schedule: Schedule) -> DnsFaultProxy {
        Self::start(upstream, Protocol::DnsTcp, schedule)
    }

    /// A proxy in front of the HTTP API at `upstream_url` (`http://127.0.0.1:PORT`).
    pub fn http(upstream_url: &str, schedule: Schedule) -> DnsFaultProxy {
        let upstream = upstream_url.strip_prefix("http://").unwrap_or(upstream_url).trim_end_matches('/');
        Self::start(upstream, Protocol::Http, schedule)
    }

    fn start(upstream: &str, protocol: Protocol, schedule: Schedule) -> DnsFaultProxy {
        let state = Arc::new(Mutex::new(State { left: schedule, counts: Counts::default() }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the DNS fault proxy");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let address = listener.local_addr().expect("proxy address").to_string();
        let upstream = upstream.to_string();
        let served = state.clone();
        let server =
            Background::start("dns-fault-proxy", 1, move |stopped| serve(listener, upstream, protocol, served, stopped));
        DnsFaultProxy { address, state, _server: server }
    }

    /// `127.0.0.1:PORT`: what a provider's `server` points at.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `http://127.0.0.1:PORT`: what a provider's PowerDNS `url` points at.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn counts(&self) -> Counts {
        self.state.lock().unwrap().counts
    }

    /// Replaces what is left of the schedule (counts carry on).
    pub fn arm(&self, schedule: Schedule) {
        self.state.lock().unwrap().left = schedule;
    }
}

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    protocol: Protocol,
    state: Arc<Mutex<State>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let client = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => continue,
            },
        };
        if state.lock().unwrap().take_reset() {
            // Linger zero: the kernel answers with RST at once, a reset rather than a close.
            let _ = client.set_zero_linger();
            drop(client);
            continue;
        }
        let (upstream, state) = (upstream.clone(), state.clone());
        tokio::spawn(async move {
            match protocol {
                Protocol::DnsTcp => dns_connection(client, upstream, state).await,
                Protocol::Http => http_connection(client, upstream, state).await,
            }
        });
    }
}

/// One client connection to the DNS port: every message either faulted or forwarded on one
/// upstream connection (opened on the first forwarded message); every answer the server
/// sends goes back as it came.
async fn dns_connection(client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    let (mut from_client, mut to_client) = client.into_split();
    // Answers from the server and from the proxy share one writer, a frame at a time.
    let (answers, mut outbox) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(frame) = outbox.recv().await {
            if to_client.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut to_server: Option<tokio::net::tcp::OwnedWriteHalf> = None;
    while let Some(message) = read_frame(&mut from_client).await {
        let fault = state.lock().unwrap().take_message_fault(Protocol::DnsTcp);
        match fault {
            Some(MessageFault::ServFail) => {
                let _ = answers.send(framed(&servfail(&message)));
            }
            Some(_) => {} // stalled: never answered
            None => {
                if to_server.is_none() {
                    let Ok(server) = TcpStream::connect(&upstream).await else { return };
                    let (mut from_server, writer) = server.into_split();
                    let answers = answers.clone();
                    tokio::spawn(async move {
                        while let Some(answer) = read_frame(&mut from_server).await {
                            if answers.send(framed(&answer)).is_err() {
                                return;
                            }
                        }
                    });
                    to_server = Some(writer);
                }
                let server = to_server.as_mut().expect("connected above");
                if server.write_all(&framed(&message)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One length-prefixed DNS message; `None` at the end of the stream.
async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let length = stream.read_u16().await.ok()? as usize;
    let mut message = vec![0; length];
    stream.read_exact(&mut message).await.ok()?;
    Some(message)
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The SERVFAIL answer to `question`: its id, opcode and RD bit, QR set, RCODE 2, its
/// question (or zone) section, nothing else: no records and no TSIG, as a middlebox or a
/// server without the key would answer.
pub fn servfail(question: &[u8]) -> Vec<u8> {
    let mut answer = vec![0u8; 12];
    if question.len() < 12 {
        return answer;
    }
    answer[0..2].copy_from_slice(&question[0..2]);
    answer[2] = 0x80 | (question[2] & 0x79); // QR, the opcode, RD
    answer[3] = 0x02; // RA clear, RCODE 2 (SERVFAIL)
    let asked = u16::from_be_bytes([question[4], question[5]]);
    let mut end = 12;
    let mut copied = 0u16;
    while copied < asked {
        match question_end(question, end) {
            Some(next) => {
                end = next;
                copied += 1;
            }
            None => break,
        }
    }
    answer[4..6].copy_from_slice(&copied.to_be_bytes());
    answer.extend_from_slice(&question[12..end]);
    answer
}

/// Where the question entry starting at `at` ends (its name, type and class).
fn question_end(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)? as usize;
        match length {
            0 => {
                at += 1;
                break;
            }
            l if l & 0xC0 == 0xC0 => {
                at += 2;
                break;
            }
            l => at += 1 + l,
        }
    }
    (at + 4 <= message.len()).then_some(at + 4)
}

/// One client connection to the HTTP port: requests read one at a time; a faulted one gets
/// the proxy's answer, a forwarded one goes to the server on a fresh connection with
/// `Connection: close`, and the server's answer is copied back until it closes. Either way
/// the client's connection ends after the answer.
async fn http_connection(client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    let mut client = BufReader::new(client);
    let Some(request) = read_http_request(&mut client).await else { return };
    let fault = state.lock().unwrap().take_message_fault(Protocol::Http);
    let mut client = client.into_inner();
    let canned = |status: &str, extra: &str, error: &str| {
        let body = serde_json::json!({ "error": error }).to_string();
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match fault {
        Some(MessageFault::Http503) => {
            let _ = client.write_all(canned("503 Service Unavailable", "", "injected by the fault proxy: unavailable").as_bytes()).await;
        }
        Some(MessageFault::Http429) => {
            let response = canned("429 Too Many Requests", "Retry-After: 1\r\n", "injected by the fault proxy: slow down");
            let _ = client.write_all(response.as_bytes()).await;
        }
        Some(_) => {
            // Stalled: hold the connection until the client gives up.
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink).await;
        }
        None => {
            let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
            if server.write_all(&request).await.is_err() {
                return;
            }
            let _ = tokio::io::copy(&mut server, &mut client).await;
        }
    }
    let _ = client.shutdown().await;
    // Give the client the last bytes before the socket goes.
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A whole request (head with `Connection: close`, then the body by `Content-Length`).
async fn read_http_request(client: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut body_length = 0usize;
    loop {
        let mut line = String::new();
        if client.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if line == "\r\n" || line == "\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        if let Some(value) = lower.strip_prefix("content-length:") {
            body_length = value.trim().parse().ok()?;
        }
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0; body_length];
    client.read_exact(&mut body).await.ok()?;
    head.extend_from_slice(&body);
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_faults_servfail_answer_keeps_the_id_and_the_question() {
        // id 0xBEEF, RD, one question: "a.test." A IN, then an additional record (TSIG).
        let mut question = vec![0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        let name = [1, b'a', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1];
        question.extend_from_slice(&name);
        question.extend_from_slice(&[0, 0, 250, 0, 255]);
        let answer = servfail(&question);
        assert_eq!(&answer[0..2], &[0xBE, 0xEF]);
        assert_eq!(answer[2], 0x81, "QR and RD");
        assert_eq!(answer[3] & 0x0F, 2, "RCODE SERVFAIL");
        assert_eq!(&answer[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&answer[12..], &name);
    }
}
