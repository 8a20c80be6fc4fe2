//! A loopback HTTP server handing out manifest files, for `manifests_url` components: files
//! can be added or replaced while it runs, and every request is recorded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Serves `GET /<path>` from an in-memory table on `127.0.0.1:<free port>` until dropped.
pub struct ManifestsServer {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ManifestsServer {
    #[track_caller]
    pub fn start() -> ManifestsServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, r, s) = (files.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (f, r) = (f.clone(), r.clone());
                std::thread::spawn(move || serve(stream, &f, &r));
            }
        });
        ManifestsServer { port, files, requests, stop }
    }

    /// Serves `body` at `/<path>` (replacing what was there); returns its URL.
    pub fn put(&self, path: &str, body: &str) -> String {
        let path = path.trim_start_matches('/').to_string();
        self.files.lock().unwrap().insert(path.clone(), body.as_bytes().to_vec());
        self.url(&path)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    /// Request lines received so far, e.g. `GET /crds.yaml`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// How many times `/<path>` was requested.
    pub fn hits(&self, path: &str) -> usize {
        let wanted = format!("GET /{}", path.trim_start_matches('/'));
        self.requests().iter().filter(|r| **r == wanted).count()
    }
}

impl Drop for ManifestsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The SHA-256 of `text`, hex-encoded, as `manifests_sha256` wants it.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn serve(stream: TcpStream, files: &Mutex<HashMap<String, Vec<u8>>>, requests: &Mutex<Vec<String>>) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let Some((method, path)) = super::read_request_head(&mut reader) else { return };
    requests.lock().unwrap().push(format!("{method} /{path}"));
    let body = (method == "GET").then(|| files.lock().unwrap().get(&path).cloned()).flatten();
    let mut stream = stream;
    let response = match body {
        Some(body) => {
            let mut head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            head.extend_from_slice(&body);
            head
        }
        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n".to_vec(),
    };
    let _ = stream.write_all(&response);
    let _ = stream.flush();
}
