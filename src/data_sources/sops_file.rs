//! `platform_sops_file`: a SOPS file decrypted inside the provider, as a data source (values
//! end up in state, marked sensitive) and as an ephemeral resource (Terraform >= 1.10:
//! values are never stored; use it to feed write-only attributes).

use std::sync::Arc;

use async_trait::async_trait;

use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::framework::value::Value;
use crate::platform::{sops_format, Platform};

pub struct SopsFile {
    platform: Arc<Platform>,
}

impl SopsFile {
    pub fn new(platform: Arc<Platform>) -> Self {
        SopsFile { platform }
    }
}

#[async_trait]
impl DataSource for SopsFile {
    fn type_name(&self) -> &'static str {
        "platform_sops_file"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(vec![
                Attribute::string("path").required().describe("Path of the SOPS-encrypted file (age recipients)."),
                Attribute::string("format").optional().describe(
                    "`yaml`, `json`, `dotenv` or `binary`; defaults from the file name, like sops.",
                ),
                Attribute::string_map("data").computed().sensitive().describe(
                    "Decrypted values, flattened: nested keys joined with `.`, list items by index (`a.0.b`); a binary file gives `data`.",
                ),
                Attribute::string("raw").computed().sensitive().describe("The whole decrypted document, as `sops -d` prints it."),
            ])
            .describe(
                "Decrypts a SOPS file with the provider's age keys and checks its MAC. As an ephemeral resource nothing is stored; \
                 as a data source the values land in state (sensitive).",
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(format) = config.get_attr("format").and_then(Value::as_str) {
            if let Err(problem) = sops_format("", Some(format)) {
                diags.error_at(AttributePath::root("format"), "Invalid SOPS format", problem);
            }
        }
    }

    async fn read(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let path = config.get_attr("path").and_then(Value::as_str).unwrap_or_default();
        let format = sops_format(path, config.get_attr("format").and_then(Value::as_str))
            .map_err(|problem| diags.error_at(AttributePath::root("format"), "Invalid SOPS format", problem))
            .ok()?;
        let decrypted = self
            .platform
            .decrypt_sops_file(path, format, AttributePath::root("path"))
            .map_err(|d| diags.push(d))
            .ok()?;
        let mut state = config.clone();
        state.set_attr("data", Value::map(decrypted.flattened().into_iter().map(|(k, v)| (k, Value::string(v)))));
        state.set_attr("raw", Value::string(String::from_utf8_lossy(&decrypted.raw())));
        Some(state)
    }
}
