//! Conversions between tfplugin6 wire messages and framework types.

use super::proto;
use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics, Severity, Step};
use crate::framework::schema::{Attribute, AttributeType, Block, NestedBlock, Nesting, Schema};
use crate::framework::value::{self, Type, Value};

pub fn schema(schema: &Schema) -> proto::Schema {
    proto::Schema { version: schema.version, block: Some(block(&schema.block)) }
}

fn block(block: &Block) -> proto::schema::Block {
    proto::schema::Block {
        version: 0,
        attributes: block.attributes.iter().map(attribute).collect(),
        block_types: block.blocks.iter().map(nested_block).collect(),
        description: block.description.clone(),
        description_kind: proto::StringKind::Markdown as i32,
        deprecated: block.deprecation.is_some(),
        ..Default::default()
    }
}

fn attribute(attribute: &Attribute) -> proto::schema::Attribute {
    let (ty, nested_type) = match &attribute.kind {
        AttributeType::Plain(ty) => (ty.to_json_bytes(), None),
        AttributeType::Nested { nesting, attributes } => (
            Vec::new(),
            Some(proto::schema::Object {
                attributes: attributes.iter().map(self::attribute).collect(),
                nesting: object_nesting(*nesting) as i32,
                ..Default::default()
            }),
        ),
    };
    proto::schema::Attribute {
        name: attribute.name.clone(),
        r#type: ty,
        nested_type,
        description: attribute.description.clone(),
        required: attribute.required,
        optional: attribute.optional,
        computed: attribute.computed,
        sensitive: attribute.sensitive,
        description_kind: proto::StringKind::Markdown as i32,
        deprecated: attribute.deprecation.is_some(),
        write_only: attribute.write_only,
        ..Default::default()
    }
}

fn object_nesting(nesting: Nesting) -> proto::schema::object::NestingMode {
    use proto::schema::object::NestingMode;
    match nesting {
        Nesting::Single | Nesting::Group => NestingMode::Single,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
        Nesting::Map => NestingMode::Map,
    }
}

fn nested_block(nested: &NestedBlock) -> proto::schema::NestedBlock {
    use proto::schema::nested_block::NestingMode;
    let nesting = match nested.nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
        Nesting::Map => NestingMode::Map,
        Nesting::Group => NestingMode::Group,
    };
    proto::schema::NestedBlock {
        type_name: nested.type_name.clone(),
        block: Some(block(&nested.block)),
        nesting: nesting as i32,
        min_items: nested.min_items,
        max_items: nested.max_items,
    }
}

pub fn diagnostics(diags: Diagnostics) -> Vec<proto::Diagnostic> {
    diags.into_iter().map(diagnostic).collect()
}

fn diagnostic(d: Diagnostic) -> proto::Diagnostic {
    let severity = match d.severity {
        Severity::Error => proto::diagnostic::Severity::Error,
        Severity::Warning => proto::diagnostic::Severity::Warning,
    };
    proto::Diagnostic {
        severity: severity as i32,
        summary: d.summary,
        detail: d.detail,
        attribute: d.attribute.map(|p| attribute_path(&p)),
        ..Default::default()
    }
}

pub fn attribute_path(path: &AttributePath) -> proto::AttributePath {
    use proto::attribute_path::step::Selector;
    proto::AttributePath {
        steps: path
            .0
            .iter()
            .map(|step| proto::attribute_path::Step {
                selector: Some(match step {
                    Step::Attribute(name) => Selector::AttributeName(name.clone()),
                    Step::Key(key) => Selector::ElementKeyString(key.clone()),
                    Step::Index(index) => Selector::ElementKeyInt(*index),
                }),
            })
            .collect(),
    }
}

/// Decodes a value Terraform sent. An absent or empty message is null.
pub fn decode(ty: &Type, dynamic: Option<&proto::DynamicValue>, what: &str) -> Result<Value, Diagnostics> {
    let result = match dynamic {
        Some(d) if !d.msgpack.is_empty() => value::decode_msgpack(ty, &d.msgpack),
        Some(d) if !d.json.is_empty() => value::decode_json(ty, &d.json),
        _ => return Ok(Value::Null),
    };
    result.map_err(|e| {
        Diagnostic::error("Invalid value from Terraform", format!("The {what} could not be decoded: {e}")).into()
    })
}

/// Encodes a value for Terraform, always as msgpack.
pub fn encode(ty: &Type, value: &Value, diags: &mut Diagnostics) -> Option<proto::DynamicValue> {
    match value::encode_msgpack(ty, value) {
        Ok(msgpack) => Some(proto::DynamicValue { msgpack, json: Vec::new() }),
        Err(e) => {
            diags.error("Provider bug: value does not match its schema", format!("Please report this issue: {e}"));
            None
        }
    }
}
