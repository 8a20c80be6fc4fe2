//! `platform_backups` data source: the Velero Backups of a namespace, by schedule or by
//! labels, newest first, with their phase and times, and the latest completed one, so
//! modules can refer to it (a restore of last night's backup, say).

use std::sync::Arc;

use async_trait::async_trait;
use kube::api::{Api, DynamicObject, ListParams};

use crate::clients::deadline::Deadline;
use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, AttributeType, Block, Schema};
use crate::framework::value::{Type, Value};
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};
use crate::resources::metadata;
use crate::resources::velero::{self, DEFAULT_NAMESPACE};

const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The label Velero puts on the backups of a schedule.
const SCHEDULE_LABEL: &str = "velero.io/schedule-name";
const FIELDS: [&str; 7] = ["name", "phase", "schedule", "storage_location", "started", "completed", "expiration"];

pub struct BackupsDataSource {
    platform: Arc<Platform>,
}

impl BackupsDataSource {
    pub fn new(platform: Arc<Platform>) -> Self {
        BackupsDataSource { platform }
    }

    async fn list(&self, ctx: &Context, config: &Value) -> Result<Value, Diagnostic> {
        let namespace = config.get_attr("namespace").and_then(Value::as_str).unwrap_or(DEFAULT_NAMESPACE).to_string();
        let mut selector: Vec<String> = metadata::string_map(config.get_attr("labels"))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(schedule) = config.get_attr("schedule").and_then(Value::as_str) {
            selector.push(format!("{SCHEDULE_LABEL}={schedule}"));
        }
        let cluster = self.platform.cluster(config.get_attr("cluster")).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), &namespace, &velero::velero_kind("Backup", "backups"));
        let params = ListParams::default().labels(&selector.join(","));
        let listed = Deadline::after(READ_TIMEOUT, ctx.stop.clone())
            .run(async { api.list(&params).await.map_err(|e| cluster.error(e)) })
            .await
            .map_err(|e| kube_diagnostic(&format!("Could not list the Backups in namespace {namespace:?}"), &e))?;
        let mut backups: Vec<serde_json::Value> =
            listed.items.into_iter().filter_map(|b| serde_json::to_value(b).ok()).collect();
        // Newest first: by start time, then by name for backups not started yet.
        backups.sort_by(|a, b| {
            let key = |v: &serde_json::Value| {
                (v["status"]["startTimestamp"].as_str().unwrap_or_default().to_string(), v["metadata"]["name"].as_str().unwrap_or_default().to_string())
            };
            key(b).cmp(&key(a))
        });
        let text = |v: &serde_json::Value| v.as_str().map_or(Value::Null, Value::string);
        let entries: Vec<Value> = backups
            .iter()
            .map(|b| {
                Value::object([
                    ("name", text(&b["metadata"]["name"])),
                    ("phase", Value::string(velero::phase(b))),
                    ("schedule", text(&b["metadata"]["labels"][SCHEDULE_LABEL])),
                    ("storage_location", text(&b["spec"]["storageLocation"])),
                    ("started", text(&b["status"]["startTimestamp"])),
                    ("completed", text(&b["status"]["completionTimestamp"])),
                    ("expiration", text(&b["status"]["expiration"])),
                ])
            })
            .collect();
        let latest = backups.iter().find(|b| velero::phase(b) == "Completed").map_or(Value::Null, |b| text(&b["metadata"]["name"]));
        let mut state = config.clone();
        state.set_attr("id", Value::string(format!("{namespace}/{}", selector.join(","))));
        state.set_attr("namespace", Value::string(namespace));
        state.set_attr("backups", Value::List(entries));
        state.set_attr("latest_completed", latest);
        Ok(state)
    }
}

#[async_trait]
impl DataSource for BackupsDataSource {
    fn type_name(&self) -> &'static str {
        "platform_backups"
    }

    fn schema(&self) -> Schema {
        let entry = Type::object(FIELDS.iter().map(|f| (*f, Type::String)));
        Schema::new(
            Block::new(vec![
                Attribute::string("id").computed().describe("`namespace/selector`."),
                Attribute::string("namespace").optional().computed().describe(&format!("Velero's namespace; `{DEFAULT_NAMESPACE}` when omitted.")),
                Attribute::string("schedule").optional().describe("Only the backups of this Schedule."),
                Attribute::string_map("labels").optional().describe("Only backups carrying these labels."),
                Attribute::new("backups", AttributeType::Plain(Type::list(entry))).computed().describe(
                    "The backups, newest first: `name`, `phase`, `schedule`, `storage_location`, `started`, `completed`, \
                     `expiration` (times in RFC 3339).",
                ),
                Attribute::string("latest_completed").computed().describe("Name of the newest Completed backup, or null when there is none."),
                cluster_attribute(),
            ])
            .describe("Lists Velero Backups by schedule or labels, newest first, with the latest completed one."),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if config.get_attr("namespace").and_then(Value::as_str).is_some() {
            metadata::validate_name(config, "namespace", diags);
        }
        if let Some(labels) = metadata::string_map(config.get_attr("labels")) {
            for key in labels.keys() {
                if let Some(problem) = metadata::qualified_name_problem(key) {
                    diags.error_at(AttributePath::root("labels").key(key), "Invalid label key", format!("{key:?} {problem}."));
                }
            }
        }
        validate_cluster_attribute(config, diags);
    }

    async fn read(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        self.list(ctx, config).await.map_err(|d| diags.push(d)).ok()
    }
}
