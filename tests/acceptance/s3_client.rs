//! The provider's own S3 client (`platform_provider::clients::s3`) against the real
//! SeaweedFS rig, which checks signatures: good keys list, a wrong secret, an unknown key and
//! a missing bucket are told apart by S3's own error codes, listings follow continuation
//! tokens, a closed port is retried until the deadline, and TLS failures are named as such
//! (a small rustls listener with a self-signed certificate). No error shows the secret.

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_provider::clients::deadline::Deadline;
use platform_provider::clients::s3::{self, S3Credentials, S3Error, S3Location};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::harness::s3::s3 as rig;
use crate::harness::unique_name;

/// The rig's region (SeaweedFS takes any), known without starting the rig.
const REGION: &str = "us-east-1";

fn location(endpoint: &str, bucket: &str, prefix: Option<&str>) -> S3Location {
    S3Location {
        endpoint: endpoint.to_string(),
        region: REGION.to_string(),
        bucket: bucket.to_string(),
        prefix: prefix.map(str::to_string),
        path_style: true,
        insecure_skip_tls_verify: false,
        ca_pem: None,
    }
}

fn credentials(access_key: &str, secret_key: &str) -> S3Credentials {
    S3Credentials { access_key: access_key.to_string(), secret_key: SecretString::from(secret_key) }
}

fn rig_credentials() -> S3Credentials {
    credentials(rig().access_key(), rig().secret_key())
}

/// The error, checked not to show `secret` in its message or its `Debug` form.
#[track_caller]
fn secret_free(error: S3Error, secret: &str) -> S3Error {
    let (display, debug) = (error.to_string(), format!("{error:?}"));
    assert!(!display.contains(secret) && !debug.contains(secret), "the secret leaked into {debug}");
    error
}

#[tokio::test]
async fn s3_client_good_keys_pass_and_list_follows_every_page() {
    let rig = rig();
    assert_eq!(rig.region(), REGION);
    let bucket = unique_name("s3-client-ok");
    rig.create_bucket(&bucket);
    let at = location(&rig.endpoint(), &bucket, Some("/cluster-a/"));

    // An empty bucket is readable.
    s3::check_access(&at, &rig_credentials()).await.expect("an empty bucket is readable");
    assert_eq!(s3::list(&at, &rig_credentials(), "").await.unwrap(), Vec::<String>::new());

    let keys = [
        "cluster-a/backups/one/velero-backup.json",
        "cluster-a/backups/one/one.tar.gz",
        "cluster-a/backups/two/velero-backup.json",
        "cluster-a/backups/with space+plus.txt",
        "cluster-a/backups/odd %41 & <chars>.txt",
        "cluster-a/restores/r1/restore.log",
    ];
    for key in keys {
        rig.put(&bucket, key, b"x");
    }
    rig.put(&bucket, "cluster-b/backups/other.json", b"not under the location's prefix");
    s3::check_access(&at, &rig_credentials()).await.expect("the bucket is readable");

    // Pages of two: three requests, every key once, in S3's order.
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(s3::list_in_pages(&at, &rig_credentials(), "", 2).await.unwrap(), expected);
    assert_eq!(s3::list(&at, &rig_credentials(), "").await.unwrap(), expected);
    assert_eq!(
        s3::list_in_pages(&at, &rig_credentials(), "backups/one/", 1).await.unwrap(),
        vec!["cluster-a/backups/one/one.tar.gz", "cluster-a/backups/one/velero-backup.json"]
    );
    assert!(s3::list(&at, &rig_credentials(), "nothing/").await.unwrap().is_empty());

    // Without a prefix the whole bucket is listed.
    let whole = location(&rig.endpoint(), &bucket, None);
    assert_eq!(s3::list(&whole, &rig_credentials(), "").await.unwrap().len(), keys.len() + 1);
    rig.assert_alive();
}

#[tokio::test]
async fn s3_client_wrong_secret_is_signature_does_not_match() {
    let rig = rig();
    let bucket = unique_name("s3-client-secret");
    rig.create_bucket(&bucket);
    let wrong_secret = format!("{}x", &rig.secret_key()[1..]);
    let error = s3::check_access(&location(&rig.endpoint(), &bucket, None), &credentials(rig.access_key(), &wrong_secret))
        .await
        .unwrap_err();
    let error = secret_free(secret_free(error, &wrong_secret), rig.secret_key());
    match &error {
        S3Error::Credentials { code, message, .. } => {
            assert_eq!(code, "SignatureDoesNotMatch", "{error}");
            assert!(!message.is_empty(), "S3's message is quoted: {error}");
        }
        other => panic!("expected refused credentials, got {other:?}"),
    }
    assert!(!error.is_transient());
    assert!(error.to_string().contains("SignatureDoesNotMatch"), "{error}");
}

#[tokio::test]
async fn s3_client_unknown_key_is_invalid_access_key_id() {
    let rig = rig();
    let bucket = unique_name("s3-client-key");
    rig.create_bucket(&bucket);
    let at = location(&rig.endpoint(), &bucket, Some("velero"));
    let error = s3::check_access(&at, &credentials("TFACCUNKNOWNKEY00000", rig.secret_key())).await.unwrap_err();
    let error = secret_free(error, rig.secret_key());
    assert!(matches!(&error, S3Error::Credentials { code, .. } if code == "InvalidAccessKeyId"), "{error:?}");
    // A listing is refused the same way.
    let error = s3::list(&at, &credentials("TFACCUNKNOWNKEY00000", rig.secret_key()), "").await.unwrap_err();
    assert!(matches!(secret_free(error, rig.secret_key()), S3Error::Credentials { .. }));
}

#[tokio::test]
async fn s3_client_missing_bucket_is_no_such_bucket() {
    let rig = rig();
    let bucket = unique_name("s3-client-missing");
    let error = s3::check_access(&location(&rig.endpoint(), &bucket, Some("velero")), &rig_credentials())
        .await
        .unwrap_err();
    let error = secret_free(error, rig.secret_key());
    match &error {
        S3Error::NoSuchBucket { bucket: named, .. } => assert_eq!(named, &bucket),
        other => panic!("expected NoSuchBucket, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains(&bucket) && text.contains("NoSuchBucket"), "{text}");
}

#[tokio::test]
async fn s3_client_closed_port_is_unreachable_after_retries_within_the_deadline() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let at = location(&format!("http://127.0.0.1:{port}"), "velero", None);
    let secret = "closed-port-secret-0123456789";
    let deadline = Deadline::after(Duration::from_secs(3), CancellationToken::new());
    let started = Instant::now();
    let result = deadline.run(s3::check_access(&at, &credentials("AKID", secret))).await;
    let elapsed = started.elapsed();
    let error = secret_free(result.unwrap_err(), secret);
    assert!(matches!(error, S3Error::Unreachable { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&format!("cannot reach S3 endpoint http://127.0.0.1:{port}")), "{text}");
    assert!(text.contains("gave up after") && text.contains("3s timeout"), "{text}");
    assert!(deadline.retries() >= 2, "retried {} times: {text}", deadline.retries());
    assert!(elapsed <= Duration::from_secs(3), "took {elapsed:?}, past the 3 s deadline");
}

/// An HTTPS server on 127.0.0.1 with a fresh self-signed certificate (returned as PEM) that
/// answers every request after the handshake with an S3 `AccessDenied`.
async fn self_signed_https() -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("self-signed certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(certified.cert.der().to_vec())],
            PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends here.
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "<Error><Code>AccessDenied</Code><Message>TLS stand-in</Message></Error>";
                let response = format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (endpoint, certified.cert.pem())
}

#[tokio::test]
async fn s3_client_self_signed_certificate_is_a_tls_error_unless_trusted_or_skipped() {
    let (endpoint, ca_pem) = self_signed_https().await;
    let secret = "tls-secret-0123456789";
    let keys = credentials("AKID", secret);

    let untrusted = location(&endpoint, "velero", None);
    let error = secret_free(s3::check_access(&untrusted, &keys).await.unwrap_err(), secret);
    match &error {
        S3Error::Tls { message, .. } => {
            assert!(message.contains("certificate"), "{error}");
            assert!(message.contains("ca_pem") && message.contains("insecure_skip_tls_verify"), "{error}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(!error.is_transient(), "a certificate problem is not retried");

    // Past the handshake, the stand-in's answer is what comes back.
    let trusted = S3Location { ca_pem: Some(ca_pem), ..untrusted.clone() };
    let skipped = S3Location { insecure_skip_tls_verify: true, ..untrusted.clone() };
    for at in [trusted, skipped] {
        let error = secret_free(s3::check_access(&at, &keys).await.unwrap_err(), secret);
        match &error {
            S3Error::AccessDenied { message, .. } => assert_eq!(message, "TLS stand-in"),
            other => panic!("expected the stand-in's AccessDenied past TLS, got {other:?}"),
        }
    }

    // The plain-HTTP rig behind an https:// endpoint is named as a TLS problem, not retried.
    let rig = rig();
    let plain = location(&rig.endpoint().replace("http://", "https://"), "velero", None);
    let error = secret_free(s3::check_access(&plain, &rig_credentials()).await.unwrap_err(), rig.secret_key());
    assert!(matches!(&error, S3Error::Tls { message, .. } if message.contains("HTTPS")), "{error:?}");
}
