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
        deprecation_message: block.deprecation.clone().unwrap_or_default(),
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
        deprecation_message: attribute.deprecation.clone().unwrap_or_default(),
        write_only: attribute.write_only,
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
    }
}

pub fn attribute_path(path: &AttributePath) -> proto::AttributePath {
    use proto::attribute_path::step::Selector;
    proto::AttributePath {
        steps: path
            .0
            .iter()
            .map_while(|step| {
                let selector = match step {
                    Step::Attribute(name) => Selector::AttributeName(name.clone()),
                    Step::Key(key) => Selector::ElementKeyString(key.clone()),
                    Step::Index(index) => Selector::ElementKeyInt(*index),
                    Step::Element(_) => return None,
                };
                Some(proto::attribute_path::Step { selector: Some(selector) })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::timeouts_block;

    #[test]
    fn schemas_carry_flags_descriptions_and_deprecation() {
        let block = Block::new(vec![
            Attribute::string("name").required().describe("The **name**."),
            Attribute::string("old").optional().deprecated("Use `name`."),
            Attribute::string("token").optional().sensitive(),
            Attribute::string("secret_wo").optional().write_only(),
            Attribute::nested("conn", Nesting::Single, vec![Attribute::string("host").optional()]).optional(),
        ])
        .with_block(timeouts_block(&["create"]));
        let wire = schema(&Schema::new(block));
        let block = wire.block.unwrap();
        let by_name = |n: &str| block.attributes.iter().find(|a| a.name == n).unwrap().clone();
        assert_eq!(by_name("name").r#type, b"\"string\"");
        assert!(by_name("name").required);
        assert_eq!(by_name("name").description_kind, proto::StringKind::Markdown as i32);
        assert!(by_name("old").deprecated);
        assert_eq!(by_name("old").deprecation_message, "Use `name`.");
        assert!(by_name("token").sensitive);
        assert!(by_name("secret_wo").write_only);
        let conn = by_name("conn");
        assert!(conn.r#type.is_empty());
        assert_eq!(conn.nested_type.unwrap().nesting, proto::schema::object::NestingMode::Single as i32);
        let timeouts = &block.block_types[0];
        assert_eq!(timeouts.type_name, "timeouts");
        assert_eq!(timeouts.nesting, proto::schema::nested_block::NestingMode::Single as i32);
    }

    #[test]
    fn diagnostics_always_have_a_severity_and_keep_their_path() {
        let mut diags = Diagnostics::new();
        diags.error_at(AttributePath::root("labels").key("tier"), "bad", "detail");
        diags.error_at(AttributePath::root("component").element("web").attribute("name"), "in a set", "detail");
        diags.warning("careful", "");
        let wire = diagnostics(diags);
        assert_eq!(wire[0].severity, proto::diagnostic::Severity::Error as i32);
        assert_eq!(wire[2].severity, proto::diagnostic::Severity::Warning as i32);
        use proto::attribute_path::step::Selector;
        let steps = |i: usize| -> Vec<Selector> {
            wire[i].attribute.as_ref().unwrap().steps.iter().map(|s| s.selector.clone().unwrap()).collect()
        };
        assert_eq!(steps(0), vec![Selector::AttributeName("labels".into()), Selector::ElementKeyString("tier".into())]);
        // Set elements cannot be addressed: the path ends at the set.
        assert_eq!(steps(1), vec![Selector::AttributeName("component".into())]);
    }

    #[test]
    fn absent_values_decode_as_null_and_garbage_is_a_diagnostic() {
        let ty = Type::String;
        assert_eq!(decode(&ty, None, "x").unwrap(), Value::Null);
        let empty = proto::DynamicValue::default();
        assert_eq!(decode(&ty, Some(&empty), "x").unwrap(), Value::Null);
        let garbage = proto::DynamicValue { msgpack: vec![0xc1], json: vec![] };
        assert!(decode(&ty, Some(&garbage), "configuration").unwrap_err().has_errors());
        let json = proto::DynamicValue { msgpack: vec![], json: b"\"a\"".to_vec() };
        assert_eq!(decode(&ty, Some(&json), "x").unwrap(), Value::from("a"));
    }
}
