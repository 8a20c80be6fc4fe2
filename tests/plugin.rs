//! The go-plugin process contract, checked against the real binary: handshake, AutoMTLS
//! with a Terraform-like client certificate, health, schema, shutdown and debug mode.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use platform_provider::plugin::handshake::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use platform_provider::plugin::services::proto::grpc_controller_client::GrpcControllerClient;
use platform_provider::tfproto::proto::provider_client::ProviderClient;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tonic::transport::{Channel, Endpoint};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-platform");

/// A client identity shaped like the one Terraform generates: P-521, self-signed, CA:TRUE.
struct ClientIdentity {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn terraform_like_client_identity() -> ClientIdentity {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.distinguished_name.push(DnType::OrganizationName, "HashiCorp");
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(1);
    let cert = params.self_signed(&key).unwrap();
    ClientIdentity { cert_pem: cert.pem(), cert_der: cert.der().clone(), key_der: key.serialize_der() }
}

struct Plugin {
    child: Child,
    network: String,
    address: String,
    server_cert: CertificateDer<'static>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_plugin(client_cert_pem: &str) -> Plugin {
    start_plugin_with_env(client_cert_pem, &[])
}

/// Starts the plugin with extra environment variables (e.g. `SOPS_AGE_KEY_FILE`).
fn start_plugin_with_env(client_cert_pem: &str, envs: &[(&str, &str)]) -> Plugin {
    let mut child = Command::new(BINARY)
        .envs(envs.iter().copied())
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_CLIENT_CERT", client_cert_pem)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let fields: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(fields.len(), 6, "handshake line: {line:?}");
    assert_eq!(&fields[..2], &["1", "6"]);
    assert_eq!(fields[4], "grpc");
    let der = base64::engine::general_purpose::STANDARD_NO_PAD.decode(fields[5]).expect("unpadded standard base64");
    Plugin {
        network: fields[2].to_string(),
        address: fields[3].to_string(),
        server_cert: CertificateDer::from(der),
        child,
    }
}

/// Dials the plugin over TLS with an optional client identity, as go-plugin does.
async fn connect(plugin: &Plugin, identity: Option<&ClientIdentity>) -> Result<Channel, tonic::transport::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = PinnedServer { expected: plugin.server_cert.clone(), algorithms: provider.signature_verification_algorithms };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![id.cert_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let (network, address) = (plugin.network.clone(), plugin.address.clone());
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let (connector, network, address) = (connector.clone(), network.clone(), address.clone());
            async move {
                assert_eq!(network, "unix");
                let socket = tokio::net::UnixStream::connect(&address).await?;
                let tls = connector.connect(ServerName::try_from("localhost").unwrap(), socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

/// Trusts exactly the certificate from the handshake line, as go-plugin's client does by
/// making it the only root (Go accepts a CA:TRUE self-signed leaf that way; webpki does not).
#[derive(Debug)]
struct PinnedServer {
    expected: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        assert_eq!(end_entity.as_ref(), self.expected.as_ref(), "server presented another certificate");
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[tokio::test]
async fn mtls_accepts_only_the_client_certificate_from_the_environment() {
    let expected = terraform_like_client_identity();
    let stranger = terraform_like_client_identity();
    let plugin = start_plugin(&expected.cert_pem);

    // No client certificate: the TLS handshake is refused.
    let anonymous = connect(&plugin, None).await;
    let anonymous_call = match anonymous {
        Err(_) => true,
        Ok(channel) => ProviderClient::new(channel)
            .get_provider_schema(platform_provider::tfproto::proto::get_provider_schema::Request {})
            .await
            .is_err(),
    };
    assert!(anonymous_call, "a client without a certificate must be rejected");

    // A different certificate of the same shape: refused too.
    let wrong = match connect(&plugin, Some(&stranger)).await {
        Err(_) => true,
        Ok(channel) => ProviderClient::new(channel)
            .get_provider_schema(platform_provider::tfproto::proto::get_provider_schema::Request {})
            .await
            .is_err(),
    };
    assert!(wrong, "a client with another certificate must be rejected");

    // The expected certificate: health says SERVING and the schema lists our types.
    let channel = connect(&plugin, Some(&expected)).await.expect("connect with the expected certificate");
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest { service: "plugin".into() })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(health.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let schema = ProviderClient::new(channel.clone())
        .get_provider_schema(platform_provider::tfproto::proto::get_provider_schema::Request {})
        .await
        .expect("schema")
        .into_inner();
    assert!(schema.provider.is_some_and(|p| p.block.is_some()));
    assert!(schema.resource_schemas.contains_key("platform_namespace"));
    assert!(schema.data_source_schemas.contains_key("platform_namespace"));
}

#[tokio::test]
async fn shutdown_ends_the_process_promptly() {
    let identity = terraform_like_client_identity();
    let mut plugin = start_plugin(&identity.cert_pem);
    let channel = connect(&plugin, Some(&identity)).await.unwrap();
    GrpcControllerClient::new(channel)
        .shutdown(platform_provider::plugin::services::proto::Empty {})
        .await
        .expect("shutdown answered");
    let started = Instant::now();
    loop {
        if let Some(status) = plugin.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        // go-plugin kills plugins that take longer than 2 s.
        assert!(started.elapsed() < Duration::from_secs(2), "still running after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!std::path::Path::new(&plugin.address).exists(), "unix socket left behind");
}

/// grpc-go >= 1.67 (Terraform >= 1.12) refuses TLS servers that do not select `h2` (pitfall 6).
#[tokio::test]
async fn tls_negotiates_http2_via_alpn() {
    let identity = terraform_like_client_identity();
    let plugin = start_plugin(&identity.cert_pem);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = PinnedServer { expected: plugin.server_cert.clone(), algorithms: provider.signature_verification_algorithms };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(
            vec![identity.cert_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let socket = tokio::net::UnixStream::connect(&plugin.address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), socket)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

/// Ctrl-C reaches the whole process group; the plugin must keep serving until Terraform
/// says stop (pitfall 9).
#[tokio::test]
async fn interrupts_do_not_kill_the_plugin() {
    let (mut plugin, channel) = connected_plugin().await;
    let pid = plugin.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(plugin.child.try_wait().unwrap().is_none(), "plugin died on SIGINT");
    ProviderClient::new(channel)
        .stop_provider(platform_provider::tfproto::proto::stop_provider::Request {})
        .await
        .expect("StopProvider answered");
    assert!(plugin.child.try_wait().unwrap().is_none(), "StopProvider must not end the process");
}

#[test]
fn refuses_to_run_without_the_magic_cookie() {
    let output = Command::new(BINARY).env_remove(MAGIC_COOKIE_KEY).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "nothing may reach stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("This binary is a plugin"), "{stderr}");
}

#[test]
fn refuses_a_host_that_speaks_only_protocol_5() {
    let output = Command::new(BINARY)
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("speaks only [6]"));
}

#[test]
fn debug_mode_prints_the_reattach_value() {
    let mut child = Command::new(BINARY)
        .arg("--debug")
        .env_remove(MAGIC_COOKIE_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = BufReader::new(child.stderr.take().unwrap());
    let line = reader
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("TF_REATTACH_PROVIDERS="))
        .expect("reattach line");
    let _ = child.kill();
    let _ = child.wait();
    let json = line.split_once('=').unwrap().1.trim().trim_matches('\'');
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let entry = &value["registry.terraform.io/platform/platform"];
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Test"], true);
    assert_eq!(entry["Addr"]["Network"], "unix");
}

/// Starts the plugin and connects as Terraform would.
async fn connected_plugin() -> (Plugin, Channel) {
    let identity = terraform_like_client_identity();
    let plugin = start_plugin(&identity.cert_pem);
    let channel = connect(&plugin, Some(&identity)).await.expect("connect");
    (plugin, channel)
}

/// Terraform's own schema checks (pitfall 11): names are lower-case identifiers, every
/// attribute is required, optional or computed, never required and optional or computed
/// at once, types are valid JSON, and every block is present.
#[tokio::test]
async fn schema_passes_terraforms_validity_rules() {
    use platform_provider::tfproto::proto::schema::Block;
    fn check_block(block: &Block, at: &str) {
        let name_ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        for a in &block.attributes {
            let here = format!("{at}.{}", a.name);
            assert!(name_ok(&a.name), "{here}: bad name");
            assert!(a.required || a.optional || a.computed, "{here}: no flag");
            assert!(!(a.required && (a.optional || a.computed)), "{here}: conflicting flags");
            assert!(a.r#type.is_empty() != a.nested_type.is_none(), "{here}: exactly one of type or nested_type");
            if !a.r#type.is_empty() {
                serde_json::from_slice::<serde_json::Value>(&a.r#type).unwrap_or_else(|e| panic!("{here}: type JSON: {e}"));
            }
            if let Some(nested) = &a.nested_type {
                check_block(&Block { attributes: nested.attributes.clone(), ..Default::default() }, &here);
            }
        }
        for b in &block.block_types {
            let here = format!("{at}.{}", b.type_name);
            assert!(name_ok(&b.type_name), "{here}: bad name");
            assert!(block.attributes.iter().all(|a| a.name != b.type_name), "{here}: both block and attribute");
            check_block(b.block.as_ref().unwrap_or_else(|| panic!("{here}: block missing")), &here);
        }
    }
    let (_plugin, channel) = connected_plugin().await;
    let schema = ProviderClient::new(channel)
        .get_provider_schema(platform_provider::tfproto::proto::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    check_block(schema.provider.unwrap().block.as_ref().unwrap(), "provider");
    for (name, s) in schema.resource_schemas.iter().chain(schema.data_source_schemas.iter()) {
        assert!(name.starts_with("platform_"), "{name} lacks the provider prefix");
        check_block(s.block.as_ref().unwrap(), name);
    }
}

/// Terraform >= 1.12 asks for identity schemas and tolerates only `Unimplemented` (pitfall 24).
#[tokio::test]
async fn identity_schemas_are_unimplemented() {
    let (_plugin, channel) = connected_plugin().await;
    let status = ProviderClient::new(channel)
        .get_resource_identity_schemas(platform_provider::tfproto::proto::get_resource_identity_schemas::Request {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

/// Configurations beyond tonic's 4 MiB default must get through (pitfall 10), and a
/// validation problem comes back as an error diagnostic on the attribute (pitfall 22).
#[tokio::test]
async fn large_messages_pass_and_problems_come_back_as_diagnostics() {
    use platform_provider::framework::value::{encode_msgpack, Value};
    use platform_provider::tfproto::proto::{attribute_path::step::Selector, diagnostic::Severity, validate_resource_config, DynamicValue};
    let (_plugin, channel) = connected_plugin().await;
    let schema = platform_provider::framework::engine::Engine::new(std::sync::Arc::new(
        platform_provider::provider::PlatformProvider::new(),
    ));
    let ty = schema.resource_value_type("platform_namespace").unwrap().clone();
    let mut config = Value::null_object(&ty);
    config.set_attr("name", Value::from("Not-Valid"));
    let big: std::collections::BTreeMap<String, Value> =
        (0..50_000).map(|i| (format!("key-{i:06}"), Value::from("v".repeat(100).as_str()))).collect();
    config.set_attr("annotations", Value::Map(big));
    let msgpack = encode_msgpack(&ty, &config).unwrap();
    assert!(msgpack.len() > 5 * 1024 * 1024);
    let response = ProviderClient::new(channel)
        .max_encoding_message_size(64 * 1024 * 1024)
        .validate_resource_config(validate_resource_config::Request {
            type_name: "platform_namespace".into(),
            config: Some(DynamicValue { msgpack, json: vec![] }),
            ..Default::default()
        })
        .await
        .expect("large request accepted")
        .into_inner();
    assert_eq!(response.diagnostics.len(), 1, "{:?}", response.diagnostics);
    let diagnostic = &response.diagnostics[0];
    assert_eq!(diagnostic.severity, Severity::Error as i32);
    let step = &diagnostic.attribute.as_ref().unwrap().steps[0];
    assert_eq!(step.selector, Some(Selector::AttributeName("name".into())));
}

// ---------------------------------------------------------------------------------------
// Secrets types at the protocol level: write-only attributes and the ephemeral resource.
// ---------------------------------------------------------------------------------------

fn schema_attribute<'a>(
    schema: &'a platform_provider::tfproto::proto::Schema,
    name: &str,
) -> &'a platform_provider::tfproto::proto::schema::Attribute {
    let block = schema.block.as_ref().expect("schema block");
    block.attributes.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("no attribute {name}"))
}

/// `data_wo` is write-only and sensitive in the schema; Terraform < 1.11 (no
/// `write_only_attributes_allowed` capability) gets an error on `data_wo`, >= 1.11 none.
#[tokio::test]
async fn write_only_data_is_declared_and_refused_without_the_client_capability() {
    use platform_provider::framework::value::{encode_msgpack, Value};
    use platform_provider::tfproto::proto::{
        attribute_path::step::Selector, diagnostic::Severity, get_provider_schema, validate_resource_config,
        ClientCapabilities, DynamicValue,
    };
    let (_plugin, channel) = connected_plugin().await;
    let mut client = ProviderClient::new(channel);
    let schema = client.get_provider_schema(get_provider_schema::Request {}).await.unwrap().into_inner();
    for type_name in ["platform_secret", "platform_sealed_secret"] {
        let resource = &schema.resource_schemas[type_name];
        let data_wo = schema_attribute(resource, "data_wo");
        assert!(data_wo.write_only && data_wo.sensitive, "{type_name}.data_wo: {data_wo:?}");
        assert!(data_wo.optional && !data_wo.computed, "{type_name}.data_wo: {data_wo:?}");
        let data = schema_attribute(resource, "data");
        assert!(data.sensitive && !data.write_only, "{type_name}.data: {data:?}");
        assert!(!schema_attribute(resource, "data_wo_version").write_only, "{type_name}.data_wo_version");
    }

    let engine = platform_provider::framework::engine::Engine::new(std::sync::Arc::new(
        platform_provider::provider::PlatformProvider::new(),
    ));
    for type_name in ["platform_secret", "platform_sealed_secret"] {
        let ty = engine.resource_value_type(type_name).unwrap().clone();
        let mut config = Value::null_object(&ty);
        config.set_attr("namespace", Value::from("apps"));
        config.set_attr("name", Value::from("db"));
        config.set_attr("data_wo", Value::map([("password", Value::from("s3cret"))]));
        config.set_attr("data_wo_version", Value::from(1i64));
        if type_name == "platform_sealed_secret" {
            // A valid RSA certificate, so that only `data_wo` can be objected to.
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
            let cert = rcgen::CertificateParams::new(vec!["sealed-secrets".into()]).unwrap().self_signed(&key).unwrap();
            config.set_attr("certificate", Value::from(cert.pem().as_str()));
        }
        let msgpack = encode_msgpack(&ty, &config).unwrap();
        for capabilities in [None, Some(false), Some(true)] {
            let response = client
                .validate_resource_config(validate_resource_config::Request {
                    type_name: type_name.into(),
                    config: Some(DynamicValue { msgpack: msgpack.clone(), json: vec![] }),
                    client_capabilities: capabilities
                        .map(|allowed| ClientCapabilities { write_only_attributes_allowed: allowed, ..Default::default() }),
                })
                .await
                .expect("ValidateResourceConfig answered")
                .into_inner();
            if capabilities == Some(true) {
                assert!(response.diagnostics.is_empty(), "{type_name}: {:?}", response.diagnostics);
                continue;
            }
            assert_eq!(response.diagnostics.len(), 1, "{type_name} {capabilities:?}: {:?}", response.diagnostics);
            let diagnostic = &response.diagnostics[0];
            assert_eq!(diagnostic.severity, Severity::Error as i32);
            assert!(diagnostic.summary.contains("1.11"), "{diagnostic:?}");
            let steps = &diagnostic.attribute.as_ref().expect("attribute path").steps;
            assert_eq!(steps.len(), 1, "{diagnostic:?}");
            assert_eq!(steps[0].selector, Some(Selector::AttributeName("data_wo".into())));
        }
    }
}

/// An age key and a sops-encrypted YAML file made by the real tools, or `None` (after
/// saying why) when `TF_ACC_SOPS` is unset.
fn sops_fixture(dir: &std::path::Path, password: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let Some(sops) = std::env::var_os("TF_ACC_SOPS").filter(|v| !v.is_empty()) else {
        panic!("missing test tool: TF_ACC_SOPS is unset (run `make testenv` and source ~/.cache/terraform-provider-platform/testenv/env.sh)");
    };
    let keygen = std::env::var_os("TF_ACC_AGE_KEYGEN").filter(|v| !v.is_empty()).unwrap_or_else(|| "age-keygen".into());
    let key = dir.join("age.txt");
    let status = Command::new(&keygen).arg("-o").arg(&key).stderr(Stdio::null()).status().expect("run age-keygen");
    assert!(status.success(), "age-keygen failed");
    let text = std::fs::read_to_string(&key).unwrap();
    let recipient = text.lines().find_map(|l| l.strip_prefix("# public key: ")).expect("public key line").trim().to_string();
    let plain = dir.join("plain.yaml");
    std::fs::write(&plain, format!("database:\n  password: {password}\nreplicas: 3\n")).unwrap();
    let encrypted = dir.join("secrets.yaml");
    let output = Command::new(&sops)
        .args(["--config", "/dev/null", "encrypt", "--age", &recipient, "--output"])
        .arg(&encrypted)
        .arg(&plain)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .output()
        .expect("run sops");
    assert!(output.status.success(), "sops encrypt failed: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::remove_file(&plain).unwrap();
    Some((key, encrypted))
}

/// `platform_sops_file` is an ephemeral resource: listed by GetMetadata, with a schema,
/// and Open decrypts a real sops file with the key from the provider's environment;
/// Renew and Close answer OK.
#[tokio::test]
async fn sops_file_ephemeral_resource_opens_renews_and_closes() {
    use platform_provider::framework::value::{decode_msgpack, encode_msgpack, Value};
    use platform_provider::tfproto::proto::{
        attribute_path::step::Selector, close_ephemeral_resource, configure_provider, get_metadata, get_provider_schema,
        open_ephemeral_resource, renew_ephemeral_resource, validate_ephemeral_resource_config, ClientCapabilities,
        DynamicValue,
    };
    let dir = tempfile::tempdir().unwrap();
    let password = format!("pw-{}", std::process::id());
    let fixture = sops_fixture(dir.path(), &password);
    let key_file = fixture.as_ref().map(|(key, _)| key.display().to_string()).unwrap_or_default();
    let config_home = dir.path().join("xdg");
    std::fs::create_dir_all(&config_home).unwrap();
    let identity = terraform_like_client_identity();
    let plugin = start_plugin_with_env(
        &identity.cert_pem,
        &[("SOPS_AGE_KEY_FILE", key_file.as_str()), ("XDG_CONFIG_HOME", config_home.to_str().unwrap())],
    );
    let channel = connect(&plugin, Some(&identity)).await.expect("connect");
    let mut client = ProviderClient::new(channel);

    let metadata = client.get_metadata(get_metadata::Request {}).await.unwrap().into_inner();
    assert!(
        metadata.ephemeral_resources.iter().any(|e| e.type_name == "platform_sops_file"),
        "{:?}",
        metadata.ephemeral_resources
    );
    let schema = client.get_provider_schema(get_provider_schema::Request {}).await.unwrap().into_inner();
    let ephemeral = schema.ephemeral_resource_schemas.get("platform_sops_file").expect("ephemeral schema");
    assert!(schema_attribute(ephemeral, "path").required);
    assert!(schema_attribute(ephemeral, "data").computed && schema_attribute(ephemeral, "data").sensitive);
    assert!(schema_attribute(ephemeral, "raw").sensitive);

    let Some((_, encrypted)) = fixture else { return };
    let engine = platform_provider::framework::engine::Engine::new(std::sync::Arc::new(
        platform_provider::provider::PlatformProvider::new(),
    ));
    // Terraform configures the provider first; an empty provider block.
    let provider_ty = engine.provider_value_type().clone();
    let configure = client
        .configure_provider(configure_provider::Request {
            terraform_version: "1.11.4".into(),
            config: Some(DynamicValue { msgpack: encode_msgpack(&provider_ty, &Value::null_object(&provider_ty)).unwrap(), json: vec![] }),
            client_capabilities: Some(ClientCapabilities { write_only_attributes_allowed: true, ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(configure.diagnostics.is_empty(), "{:?}", configure.diagnostics);

    let ty = engine.ephemeral_resource_value_type("platform_sops_file").unwrap().clone();
    let config_for = |path: &str| {
        let mut config = Value::null_object(&ty);
        config.set_attr("path", Value::from(path));
        DynamicValue { msgpack: encode_msgpack(&ty, &config).unwrap(), json: vec![] }
    };
    let config = config_for(encrypted.to_str().unwrap());
    let validated = client
        .validate_ephemeral_resource_config(validate_ephemeral_resource_config::Request {
            type_name: "platform_sops_file".into(),
            config: Some(config.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(validated.diagnostics.is_empty(), "{:?}", validated.diagnostics);

    let opened = client
        .open_ephemeral_resource(open_ephemeral_resource::Request {
            type_name: "platform_sops_file".into(),
            config: Some(config),
            client_capabilities: Some(ClientCapabilities::default()),
        })
        .await
        .expect("OpenEphemeralResource answered")
        .into_inner();
    assert!(opened.diagnostics.is_empty(), "{:?}", opened.diagnostics);
    let result = decode_msgpack(&ty, &opened.result.as_ref().expect("a result").msgpack).unwrap();
    let data = result.get_attr("data").and_then(Value::as_map).expect("data map");
    assert_eq!(data.get("database.password").and_then(Value::as_str), Some(password.as_str()));
    assert_eq!(data.get("replicas").and_then(Value::as_str), Some("3"));
    assert_eq!(data.len(), 2, "{:?}", data.keys());
    let raw = result.get_attr("raw").and_then(Value::as_str).expect("raw");
    assert!(raw.contains(&password) && !raw.contains("sops:") && !raw.contains("ENC["), "raw is not the decrypted document");

    let renewed = client
        .renew_ephemeral_resource(renew_ephemeral_resource::Request {
            type_name: "platform_sops_file".into(),
            private: opened.private.clone(),
        })
        .await
        .expect("RenewEphemeralResource answered")
        .into_inner();
    assert!(renewed.diagnostics.is_empty(), "{:?}", renewed.diagnostics);
    let closed = client
        .close_ephemeral_resource(close_ephemeral_resource::Request {
            type_name: "platform_sops_file".into(),
            private: opened.private.clone(),
        })
        .await
        .expect("CloseEphemeralResource answered")
        .into_inner();
    assert!(closed.diagnostics.is_empty(), "{:?}", closed.diagnostics);

    // A file that is not there: an error on `path`, no result.
    let missing = client
        .open_ephemeral_resource(open_ephemeral_resource::Request {
            type_name: "platform_sops_file".into(),
            config: Some(config_for(dir.path().join("missing.yaml").to_str().unwrap())),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(missing.diagnostics.len(), 1, "{:?}", missing.diagnostics);
    let steps = &missing.diagnostics[0].attribute.as_ref().expect("attribute path").steps;
    assert_eq!(steps[0].selector, Some(Selector::AttributeName("path".into())));
    assert!(missing.diagnostics.iter().all(|d| !d.detail.contains(&password)));
}

#[test]
fn version_flag_prints_the_cargo_version() {
    let output = Command::new(BINARY).arg("--version").env_remove(MAGIC_COOKIE_KEY).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim(), format!("terraform-provider-platform {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(platform_provider::VERSION, env!("CARGO_PKG_VERSION"));
}

#[test]
fn start_up_log_carries_the_version() {
    let mut child = Command::new(BINARY)
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .env("TF_LOG_PROVIDER", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut handshake = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut handshake).unwrap();
    assert!(handshake.starts_with("1|6|"), "{handshake:?}");
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let start = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["@message"] == "terraform-provider-platform starting")
        .unwrap_or_else(|| panic!("no start-up line in:\n{stderr}"));
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(start["@level"], "info");
}
