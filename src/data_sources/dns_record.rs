//! `platform_dns_record` data source: reads one record set as the authoritative server holds
//! it, with the external-dns owner that claims it, if any (e.g. to check what external-dns
//! wrote for an Ingress).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clients::deadline::Deadline;
use crate::clients::dns::{Registry, RrsetId};
use crate::framework::diagnostics::{Diagnostic, Diagnostics};
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, AttributeType, Block, Schema};
use crate::framework::value::{Type, Value};
use crate::platform::dns::{connection_attribute, connection_from_attribute};
use crate::platform::{dns_diagnostic, DnsTarget, Platform};
use crate::resources::dns_record::config;

const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub struct DnsRecordDataSource {
    platform: Arc<Platform>,
}

impl DnsRecordDataSource {
    pub fn new(platform: Arc<Platform>) -> Self {
        DnsRecordDataSource { platform }
    }
}

#[async_trait]
impl DataSource for DnsRecordDataSource {
    fn type_name(&self) -> &'static str {
        "platform_dns_record"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(vec![
                Attribute::string("id").computed().describe("`<zone>/<name>/<type>`."),
                Attribute::string("dns").optional().describe("Name of the provider's `dns` block holding the zone."),
                connection_attribute(),
                Attribute::string("zone").required().describe("The zone, e.g. `home.example.com`."),
                Attribute::string("name").required().describe("Owner name relative to the zone, `@` for the apex, or an absolute name inside it."),
                Attribute::string("type").required().describe("Record type: A, AAAA, CNAME, TXT, MX, SRV, CAA, NS or PTR."),
                Attribute::new("records", AttributeType::Plain(Type::set(Type::String)))
                    .computed()
                    .describe("The records of the set in canonical form (names with trailing dots, TXT as plain text)."),
                Attribute::number("ttl").computed().describe("Time to live in seconds."),
                Attribute::string("fqdn").computed().describe("The absolute owner name."),
                Attribute::string("owner").computed().describe(
                    "The owner id in external-dns's TXT registry record for the set, or null when none claims it.",
                ),
            ])
            .describe("Reads one DNS record set from its authoritative server (or API). Fails when the set does not exist."),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Err(diagnostic) = config::address(config) {
            diags.push(diagnostic);
        }
        if let Err(diagnostic) = connection_from_attribute(config.get_attr("connection")) {
            diags.push(diagnostic);
        }
    }

    async fn read(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        match self.read_set(ctx, config).await {
            Ok(state) => Some(state),
            Err(diagnostic) => {
                diags.push(diagnostic);
                None
            }
        }
    }
}

impl DnsRecordDataSource {
    async fn read_set(&self, ctx: &Context, config: &Value) -> Result<Value, Diagnostic> {
        let id: RrsetId = config::address(config)?
            .ok_or_else(|| Diagnostic::error("Record set not known", "zone, name and type must be known to read the set."))?;
        let backend = match self.platform.dns(config.get_attr("dns"), config.get_attr("connection"))? {
            DnsTarget::Ready { backend, .. } => backend,
            DnsTarget::NotKnown => return Err(Diagnostic::error("DNS server not known", "The `connection` or `dns` block is not known yet.")),
        };
        let deadline = Deadline::after(READ_TIMEOUT, ctx.stop.clone());
        let (live, registry) = deadline
            .run(async { Ok((backend.read(&id).await?, backend.read(&Registry::record_id(&id)).await?)) })
            .await
            .map_err(|e| dns_diagnostic(&format!("Could not read {} {}", id.name, id.rtype), &e))?;
        let live = live.ok_or_else(|| {
            Diagnostic::error("No such record set", format!("{} has no {} records at {}.", backend.describe(), id.rtype, id.name))
        })?;
        let mut state = config.clone();
        state.set_attr("id", Value::String(config::record_id(&id)));
        state.set_attr("records", Value::Set(live.records.iter().map(|r| Value::String(r.clone())).collect()));
        state.set_attr("ttl", Value::number(live.ttl));
        state.set_attr("fqdn", Value::String(id.name.clone()));
        state.set_attr("owner", registry.as_ref().and_then(Registry::owner_of).map_or(Value::Null, Value::String));
        Ok(state)
    }
}
