//! Transient failures of the Kubernetes API, retried once for every request a client makes.
//!
//! A tower layer on the client (see `ClientCache`), so every call — typed `Api`s, dynamic
//! objects, discovery — gets the same treatment without each caller looping. Retried:
//! refused, reset or timed-out connections, HTTP/2 GOAWAY and refused streams, 429 (after
//! its `Retry-After`), 500, 502, 503 and 504. Everything else (400, 401, 403, 404, 409, 422,
//! TLS and credential failures) is answered at once. A POST that may have reached the server
//! (reset, timeout, 500/502/504) is not repeated: a create is not idempotent.
//!
//! Retries wait with jittered exponential backoff and stop at the operation's deadline
//! ([`Deadline::current`]) or after [`MAX_RETRIES`]: a wait that would end past the
//! deadline is not started, and the last answer is returned instead. Each retry is logged at debug and counted on the deadline and
//! on the client.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Request, Response, StatusCode};
use kube::client::Body;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::clients::deadline::{Deadline, Interrupted};

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Retries of one request at most (about 25 s of backoff): a server that keeps failing
/// longer than that is reported rather than waited on for the whole deadline.
pub const MAX_RETRIES: u32 = 8;

/// What went wrong below HTTP, found by walking an error's causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// The operation's deadline passed or it was cancelled, mid-request.
    Interrupted(Interrupted),
    /// Certificate or handshake failure: retrying cannot help.
    Tls(String),
    /// The credential plugin (`exec`) failed.
    ExecPlugin(String),
    /// Other credential loading failures (unreadable token file, bad token...).
    Credentials(String),
    /// Nothing was sent: the connection was refused (the server is down or restarting).
    Refused,
    /// The connection broke or timed out; the server may have seen the request.
    Broken(String),
    /// The server (HTTP/2) asked us to go elsewhere before handling the stream.
    GoAway,
    /// None of the above.
    Other,
}

impl TransportFailure {
    pub fn of(error: &(dyn StdError + 'static)) -> TransportFailure {
        let mut found = TransportFailure::Other;
        let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(e) = cause {
            if let Some(interrupted) = e.downcast_ref::<Interrupted>() {
                return TransportFailure::Interrupted(*interrupted);
            }
            if let Some(auth) = e.downcast_ref::<kube::client::AuthError>() {
                return auth_failure(auth);
            }
            if e.downcast_ref::<rustls::Error>().is_some() {
                return TransportFailure::Tls(e.to_string());
            }
            if let Some(io_error) = e.downcast_ref::<io::Error>() {
                match io_error.kind() {
                    io::ErrorKind::ConnectionRefused => return TransportFailure::Refused,
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::NotConnected => found = TransportFailure::Broken(io_error.to_string()),
                    _ => {}
                }
            }
            if let Some(h2) = e.downcast_ref::<h2::Error>() {
                if h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM) {
                    return TransportFailure::GoAway;
                }
                if h2.is_reset() || h2.is_io() {
                    found = TransportFailure::Broken(h2.to_string());
                }
            }
            if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
                let broken = hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() || hyper.is_timeout();
                if broken && found == TransportFailure::Other {
                    found = TransportFailure::Broken(hyper.to_string());
                }
            }
            // An io::Error's `source` skips the error it wraps (tokio-rustls wraps rustls's
            // handshake errors, hyper-rustls wraps that again): step into it instead.
            cause = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => e.source(),
            };
        }
        found
    }

    /// Whether `method` may be sent again after this failure.
    fn retryable(&self, method: &Method) -> bool {
        match self {
            TransportFailure::Refused | TransportFailure::GoAway => true,
            TransportFailure::Broken(_) => method != Method::POST,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            TransportFailure::Refused => "connection refused".into(),
            TransportFailure::GoAway => "HTTP/2 GOAWAY".into(),
            TransportFailure::Broken(message) => message.clone(),
            other => format!("{other:?}"),
        }
    }
}

fn auth_failure(error: &kube::client::AuthError) -> TransportFailure {
    use kube::client::AuthError as A;
    let message = crate::clients::error_chain(error);
    match error {
        A::AuthExecStart(_)
        | A::AuthExecRun { .. }
        | A::AuthExecParse(_)
        | A::AuthExecSerialize(_)
        | A::AuthExec(_)
        | A::ExecPluginFailed
        | A::MissingCommand
        | A::UnrefreshableTokenResponse => TransportFailure::ExecPlugin(message),
        _ => TransportFailure::Credentials(message),
    }
}

/// Whether an answer with this status may be asked for again; `None` means it is final.
fn retryable_status(status: StatusCode, method: &Method) -> bool {
    match status.as_u16() {
        // The server says it did not (429) or could not (503) take the request.
        429 | 503 => true,
        500 | 502 | 504 => method != Method::POST,
        _ => false,
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP-date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// The wait before retry number `attempt` (0-based): exponential, capped, with jitter in
/// its upper half so concurrent requests do not retry in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF.saturating_mul(1u32 << attempt.min(16)).min(MAX_BACKOFF);
    full / 2 + full.mul_f64(jitter() / 2.0)
}

/// A number in [0, 1) from the process's random hasher keys and a counter.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Adds [`RetryService`] to a client's service stack; `retries` counts every retry.
#[derive(Clone)]
pub struct RetryLayer {
    retries: Arc<AtomicU64>,
}

impl RetryLayer {
    pub fn new(retries: Arc<AtomicU64>) -> Self {
        RetryLayer { retries }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;
    fn layer(&self, inner: S) -> RetryService<S> {
        RetryService { inner, retries: self.retries.clone() }
    }
}

#[derive(Clone)]
pub struct RetryService<S> {
    inner: S,
    retries: Arc<AtomicU64>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> Service<Request<Body>> for RetryService<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<B>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was made ready goes to this call; the fresh one stays for the next.
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        let retries = self.retries.clone();
        // The deadline is read when the future first runs: that is in the caller's task,
        // where the operation's task-local lives (this `call` may run in a buffer worker).
        Box::pin(send_with_retries(inner, request, retries))
    }
}

async fn send_with_retries<S, B>(mut inner: S, mut request: Request<Body>, retries: Arc<AtomicU64>) -> Result<Response<B>, BoxError>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError>,
{
    let deadline = Deadline::current();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut attempt = 0u32;
    loop {
        let spare = try_clone(&request);
        let outcome = deadline
            .within(async {
                inner.ready().await?;
                inner.call(request).await
            })
            .await;
        let (reason, asked) = match &outcome {
            Ok(response) if retryable_status(response.status(), &method) => {
                (response.status().to_string(), retry_after(response.headers(), SystemTime::now()))
            }
            Ok(_) => return outcome,
            Err(error) => {
                let failure = TransportFailure::of(error.as_ref());
                if !failure.retryable(&method) {
                    return outcome;
                }
                (failure.describe(), None)
            }
        };
        let Some(next) = spare else {
            tracing::debug!(%method, path, reason, "not retrying: the request body cannot be sent twice");
            return outcome;
        };
        if attempt >= MAX_RETRIES {
            tracing::debug!(%method, path, reason, attempt, "not retrying: too many attempts");
            return outcome;
        }
        let wait = asked.unwrap_or_else(|| backoff(attempt));
        if wait >= deadline.remaining() || deadline.is_cancelled() {
            tracing::debug!(%method, path, reason, ?wait, remaining = ?deadline.remaining(), "not retrying: the deadline is too close");
            return outcome;
        }
        attempt += 1;
        retries.fetch_add(1, Ordering::Relaxed);
        deadline.note_retry();
        tracing::debug!(%method, path, attempt, reason, ?wait, "retrying Kubernetes API request");
        drop(outcome);
        deadline.sleep(wait).await?;
        request = next;
    }
}

/// A copy of `request` to send again, when its body is in memory (kube's requests are).
fn try_clone(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        headers.insert(http::header::RETRY_AFTER, later.parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        headers.insert(http::header::RETRY_AFTER, past.parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn backoff_grows_to_a_cap_with_jitter() {
        for attempt in 0..20 {
            let full = FIRST_BACKOFF.saturating_mul(1 << attempt.min(16)).min(MAX_BACKOFF);
            let wait = backoff(attempt);
            assert!(wait >= full / 2 && wait <= full, "attempt {attempt}: {wait:?} outside [{:?}, {full:?}]", full / 2);
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }

    #[test]
    fn statuses_are_classified() {
        for code in [429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(code).unwrap(), &Method::PATCH), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 422] {
            assert!(!retryable_status(StatusCode::from_u16(code).unwrap(), &Method::GET), "{code}");
        }
        // A create may have happened behind a 500: only "not taken" answers repeat a POST.
        assert!(!retryable_status(StatusCode::INTERNAL_SERVER_ERROR, &Method::POST));
        assert!(retryable_status(StatusCode::TOO_MANY_REQUESTS, &Method::POST));
        assert!(retryable_status(StatusCode::SERVICE_UNAVAILABLE, &Method::POST));
    }

    #[test]
    fn transport_failures_are_classified_through_their_causes() {
        let wrapped = |e: io::Error| -> BoxError { Box::new(kube::Error::Service(Box::new(e))) };
        let refused = wrapped(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(TransportFailure::of(refused.as_ref()), TransportFailure::Refused);
        let reset = wrapped(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(matches!(TransportFailure::of(reset.as_ref()), TransportFailure::Broken(_)));
        assert!(TransportFailure::of(reset.as_ref()).retryable(&Method::PATCH));
        assert!(!TransportFailure::of(reset.as_ref()).retryable(&Method::POST));
        // As hyper-rustls reports a handshake failure: an io error around tokio-rustls's.
        let tls = wrapped(io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        assert!(matches!(TransportFailure::of(tls.as_ref()), TransportFailure::Tls(_)));
        assert!(!TransportFailure::of(tls.as_ref()).retryable(&Method::GET));
        let exec: BoxError = Box::new(kube::client::AuthError::AuthExec("no such command".into()));
        assert!(matches!(TransportFailure::of(exec.as_ref()), TransportFailure::ExecPlugin(_)));
        let go_away: BoxError = Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM));
        assert_eq!(TransportFailure::of(go_away.as_ref()), TransportFailure::GoAway);
        let interrupted: BoxError = Box::new(Interrupted::Cancelled);
        assert_eq!(TransportFailure::of(interrupted.as_ref()), TransportFailure::Interrupted(Interrupted::Cancelled));
    }

    type Answer = Result<Response<()>, BoxError>;
    /// When a request came, and its body.
    type Seen = (Instant, Vec<u8>);

    /// A service answering from a script, recording when each request came.
    #[derive(Clone)]
    struct Scripted {
        answers: Arc<Mutex<VecDeque<Answer>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Scripted {
        fn new(answers: Vec<Answer>) -> Self {
            Scripted { answers: Arc::new(Mutex::new(answers.into())), seen: Arc::default() }
        }
        fn times(&self) -> Vec<Instant> {
            self.seen.lock().unwrap().iter().map(|(t, _)| *t).collect()
        }
    }

    impl Service<Request<Body>> for Scripted {
        type Response = Response<()>;
        type Error = BoxError;
        type Future = BoxFuture<Result<Response<()>, BoxError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: Request<Body>) -> Self::Future {
            let this = self.clone();
            Box::pin(async move {
                let body = request.into_body().collect_bytes().await.unwrap().to_vec();
                this.seen.lock().unwrap().push((Instant::now(), body));
                this.answers.lock().unwrap().pop_front().expect("an answer for every request")
            })
        }
    }

    fn status(code: u16, retry_after: Option<&str>) -> Result<Response<()>, BoxError> {
        let mut builder = Response::builder().status(code);
        if let Some(value) = retry_after {
            builder = builder.header(http::header::RETRY_AFTER, value);
        }
        Ok(builder.body(()).unwrap())
    }

    fn patch() -> Request<Body> {
        Request::builder().method(Method::PATCH).uri("/api/v1/namespaces/x").body(Body::from(b"{\"a\":1}".to_vec())).unwrap()
    }

    async fn send(script: &Scripted, counter: &Arc<AtomicU64>, request: Request<Body>) -> Result<Response<()>, BoxError> {
        RetryLayer::new(counter.clone()).layer(script.clone()).oneshot(request).await
    }

    #[tokio::test(start_paused = true)]
    async fn transient_answers_are_retried_honouring_retry_after() {
        let script = Scripted::new(vec![
            status(429, Some("2")),
            Err(Box::new(io::Error::from(io::ErrorKind::ConnectionReset))),
            status(503, None),
            status(200, None),
        ]);
        let counter = Arc::new(AtomicU64::new(0));
        let deadline = Deadline::after(Duration::from_secs(60), CancellationToken::new());
        let response = deadline.run(send(&script, &counter, patch())).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(counter.load(Ordering::Relaxed), 3);
        assert_eq!(deadline.retries(), 3);
        let times = script.times();
        assert_eq!(times[1] - times[0], Duration::from_secs(2), "Retry-After honoured");
        assert!(times[2] - times[1] <= MAX_BACKOFF);
        // The body went out whole every time.
        assert!(script.seen.lock().unwrap().iter().all(|(_, body)| body == b"{\"a\":1}"));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_answers_are_returned_at_once() {
        for code in [400, 401, 403, 404, 409, 422] {
            let script = Scripted::new(vec![status(code, None)]);
            let counter = Arc::new(AtomicU64::new(0));
            let response = send(&script, &counter, patch()).await.unwrap();
            assert_eq!(response.status(), code);
            assert_eq!(script.times().len(), 1, "{code} sent once");
            assert_eq!(counter.load(Ordering::Relaxed), 0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_before_the_deadline() {
        // The server wants 30 s; the operation has 10 s: the 429 is the answer, at once.
        let script = Scripted::new(vec![status(429, Some("30"))]);
        let counter = Arc::new(AtomicU64::new(0));
        let deadline = Deadline::after(Duration::from_secs(10), CancellationToken::new());
        let started = Instant::now();
        let response = deadline.run(send(&script, &counter, patch())).await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(started.elapsed(), Duration::ZERO);
        // Endless 503s end with the last 503 before the deadline, never after it.
        let script = Scripted::new((0..100).map(|_| status(503, None)).collect());
        let deadline = Deadline::after(Duration::from_secs(10), CancellationToken::new());
        let started = Instant::now();
        let response = deadline.run(send(&script, &counter, patch())).await.unwrap();
        assert_eq!(response.status(), 503);
        assert!(started.elapsed() <= Duration::from_secs(10));
        assert!(script.times().len() >= 4, "retried several times: {}", script.times().len());
        // With all the time in the world, a request is still sent at most 1 + MAX_RETRIES times.
        let script = Scripted::new((0..100).map(|_| status(500, None)).collect());
        let deadline = Deadline::after(Duration::from_secs(3600), CancellationToken::new());
        let response = deadline.run(send(&script, &counter, patch())).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(script.times().len(), 1 + MAX_RETRIES as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_a_retry_wait() {
        let script = Scripted::new(vec![status(503, Some("20")), status(200, None)]);
        let counter = Arc::new(AtomicU64::new(0));
        let token = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(60), token.clone());
        let cancel = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            token.cancel();
        });
        let started = Instant::now();
        let error = deadline.run(send(&script, &counter, patch())).await.unwrap_err();
        assert_eq!(TransportFailure::of(error.as_ref()), TransportFailure::Interrupted(Interrupted::Cancelled));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(script.times().len(), 1);
        cancel.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_post_that_may_have_landed_is_not_repeated() {
        let script = Scripted::new(vec![Err(Box::new(io::Error::from(io::ErrorKind::ConnectionReset)))]);
        let counter = Arc::new(AtomicU64::new(0));
        let post = Request::builder().method(Method::POST).uri("/api/v1/namespaces").body(Body::from(b"{}".to_vec())).unwrap();
        assert!(send(&script, &counter, post).await.is_err());
        assert_eq!(script.times().len(), 1);
    }
}
