//! `platform_catalog`: the platform components this provider knows, with a pinned chart
//! version each, for `component { catalog = "..." }` in `platform_stack` or for reference.

use async_trait::async_trait;

use crate::catalog;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, AttributeType, Block, Schema};
use crate::framework::value::{Type, Value};

pub struct CatalogDataSource;

const TEXT_FIELDS: &[&str] = &["description", "repository", "chart", "version", "namespace", "default_values", "homepage"];

fn entry_type() -> Type {
    let mut fields: Vec<(&str, Type)> = TEXT_FIELDS.iter().map(|f| (*f, Type::String)).collect();
    fields.push(("depends_on", Type::list(Type::String)));
    Type::object(fields)
}

fn entry_value(entry: &catalog::CatalogEntry) -> Value {
    Value::object([
        ("description", Value::string(entry.description)),
        ("repository", Value::string(entry.repository)),
        ("chart", Value::string(entry.chart)),
        ("version", Value::string(entry.version)),
        ("namespace", Value::string(entry.namespace)),
        ("default_values", Value::string(entry.default_values)),
        ("homepage", Value::string(entry.homepage)),
        ("depends_on", Value::List(entry.depends_on.iter().map(|d| Value::string(*d)).collect())),
    ])
}

#[async_trait]
impl DataSource for CatalogDataSource {
    fn type_name(&self) -> &'static str {
        "platform_catalog"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(vec![
                Attribute::string("id").computed().describe("Always `catalog`."),
                Attribute::string_list("names").computed().describe("Every component name, sorted."),
                Attribute::new("components", AttributeType::Plain(Type::map(entry_type()))).computed().describe(
                    "Each component by name: `description`, `repository` (https:// or oci://), `chart`, pinned `version`, usual \
                     `namespace`, `default_values` (YAML) , `homepage` and `depends_on` (other catalog names).",
                ),
            ])
            .describe(
                "The catalog of platform components (Helm charts of cert-manager, Cilium, ingress-nginx, kube-prometheus-stack, \
                 Velero, ...) that `platform_stack` components can name with `catalog`.",
            ),
        )
    }

    async fn read(&self, _ctx: &Context, config: &Value, _diags: &mut Diagnostics) -> Option<Value> {
        let entries = catalog::entries();
        let mut state = config.clone();
        state.set_attr("id", Value::string("catalog"));
        state.set_attr("names", Value::List(entries.iter().map(|e| Value::string(e.name)).collect()));
        state.set_attr("components", Value::map(entries.iter().map(|e| (e.name, entry_value(e)))));
        Some(state)
    }
}
