//! `platform_sealed_secrets_certificate` data source: the Sealed Secrets controller's public
//! certificate, fetched the way `kubeseal --fetch-cert` fetches it (`/v1/cert.pem` of the
//! controller's Service, through the API server's service proxy), so that a
//! `platform_sealed_secret` needs no certificate copied by hand.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clients::deadline::Deadline;
use crate::clients::sealing::SealingKey;
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};
use crate::resources::metadata;

const DEFAULT_NAME: &str = "sealed-secrets-controller";
const DEFAULT_NAMESPACE: &str = "kube-system";
/// How long the controller may take to answer (the API server's proxy included).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub struct SealedSecretsCertificateDataSource {
    platform: Arc<Platform>,
}

impl SealedSecretsCertificateDataSource {
    pub fn new(platform: Arc<Platform>) -> Self {
        SealedSecretsCertificateDataSource { platform }
    }
}

fn text<'a>(config: &'a Value, name: &str, default: &'a str) -> &'a str {
    config.get_attr(name).and_then(Value::as_str).unwrap_or(default)
}

#[async_trait]
impl DataSource for SealedSecretsCertificateDataSource {
    fn type_name(&self) -> &'static str {
        "platform_sealed_secrets_certificate"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(vec![
                Attribute::string("id").computed().describe("`<controller_namespace>/<controller_name>`."),
                Attribute::string("controller_name")
                    .optional()
                    .describe("Name of the controller's Service (default `sealed-secrets-controller`, as `kubeseal --controller-name`)."),
                Attribute::string("controller_namespace")
                    .optional()
                    .describe("Namespace of the controller (default `kube-system`, as `kubeseal --controller-namespace`)."),
                Attribute::string("certificate").computed().describe(
                    "The controller's current public certificate (PEM), for `platform_sealed_secret.certificate`.",
                ),
                Attribute::string("fingerprint").computed().describe("SHA-256 of the certificate's public key, hex: changes when the controller's key does."),
                Attribute::string("not_after").computed().describe("When the certificate expires (RFC 3339)."),
                cluster_attribute(),
            ])
            .describe(
                "The Sealed Secrets controller's public certificate, fetched as `kubeseal --fetch-cert` does: `/v1/cert.pem` of \
                 the controller's Service through the API server's service proxy. Read at every plan, so a rotated key shows as \
                 a new certificate (and the sealed secrets using it are sealed again).",
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        metadata::validate_name(config, "controller_namespace", diags);
        if let Some(name) = config.get_attr("controller_name").and_then(Value::as_str) {
            if let Some(problem) = metadata::dns1123_label_problem(name) {
                diags.error_at(
                    AttributePath::root("controller_name"),
                    "Invalid controller name",
                    format!("{name:?} {problem}."),
                );
            }
        }
        validate_cluster_attribute(config, diags);
    }

    async fn read(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let name = text(config, "controller_name", DEFAULT_NAME).to_string();
        let namespace = text(config, "controller_namespace", DEFAULT_NAMESPACE).to_string();
        let cluster = self.platform.cluster(config.get_attr("cluster")).await.map_err(|d| diags.push(d)).ok()?;
        let deadline = Deadline::after(READ_TIMEOUT, ctx.stop.clone());
        let pem = match deadline.run(cluster.service_proxy_get(&namespace, &name, "/v1/cert.pem")).await {
            Ok(pem) => pem,
            Err(e) if e.is_not_found() || e.is_not_served() => {
                diags.error_at(
                    AttributePath::root("controller_name"),
                    "Sealed Secrets controller not found",
                    format!(
                        "There is no Service {namespace}/{name} to fetch the certificate from ({e}). Install the controller (for \
                         example `catalog = \"sealed-secrets\"` in a stack), or set `controller_name` and `controller_namespace` \
                         to where it runs."
                    ),
                );
                return None;
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not fetch the certificate of {namespace}/{name}"), &e));
                return None;
            }
        };
        let key = match SealingKey::from_pem(&pem) {
            Ok(key) => key,
            Err(e) => {
                diags.error(
                    "Invalid certificate from the Sealed Secrets controller",
                    format!("{namespace}/{name} answered /v1/cert.pem with something that is not a usable sealing certificate: {e}."),
                );
                return None;
            }
        };
        let mut state = config.clone();
        state.set_attr("id", Value::string(format!("{namespace}/{name}")));
        state.set_attr("certificate", Value::string(pem));
        state.set_attr("fingerprint", Value::string(key.fingerprint()));
        let not_after = key
            .not_after_unix()
            .and_then(|t| u64::try_from(t).ok())
            .map(|t| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t)).to_string());
        state.set_attr("not_after", not_after.map_or(Value::Null, Value::string));
        Some(state)
    }
}
