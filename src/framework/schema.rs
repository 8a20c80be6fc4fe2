//! Schemas as resources declare them: what Terraform sees (types, flags, descriptions)
//! plus the framework's planning behaviour for each attribute (replacement, keeping a
//! computed value across updates).

use std::collections::BTreeMap;

use super::value::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
    Map,
    /// Blocks only: always present, never null.
    Group,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeType {
    Plain(Type),
    /// A protocol-6 nested attribute: an object (or collection of objects) whose own
    /// attributes have flags, e.g. `cluster = { host = ..., token = ... }`.
    Nested { nesting: Nesting, attributes: Vec<Attribute> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub kind: AttributeType,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub write_only: bool,
    pub deprecation: Option<String>,
    /// A change of this attribute replaces the resource.
    pub requires_replace: bool,
    /// A computed attribute whose prior value stays valid across updates (ids, uids).
    pub keep_on_update: bool,
}

impl Attribute {
    pub fn new(name: &str, kind: AttributeType) -> Self {
        Attribute {
            name: name.to_string(),
            kind,
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecation: None,
            requires_replace: false,
            keep_on_update: false,
        }
    }
    pub fn string(name: &str) -> Self {
        Self::new(name, AttributeType::Plain(Type::String))
    }
    pub fn bool(name: &str) -> Self {
        Self::new(name, AttributeType::Plain(Type::Bool))
    }
    pub fn number(name: &str) -> Self {
        Self::new(name, AttributeType::Plain(Type::Number))
    }
    pub fn string_map(name: &str) -> Self {
        Self::new(name, AttributeType::Plain(Type::Map(Box::new(Type::String))))
    }
    pub fn string_list(name: &str) -> Self {
        Self::new(name, AttributeType::Plain(Type::List(Box::new(Type::String))))
    }
    pub fn nested(name: &str, nesting: Nesting, attributes: Vec<Attribute>) -> Self {
        Self::new(name, AttributeType::Nested { nesting, attributes })
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    pub fn keep_on_update(mut self) -> Self {
        self.keep_on_update = true;
        self
    }
    pub fn describe(mut self, text: &str) -> Self {
        self.description = text.to_string();
        self
    }
    pub fn deprecated(mut self, message: &str) -> Self {
        self.deprecation = Some(message.to_string());
        self
    }

    pub fn value_type(&self) -> Type {
        match &self.kind {
            AttributeType::Plain(ty) => ty.clone(),
            AttributeType::Nested { nesting, attributes } => {
                let object = object_type(attributes, &[]);
                wrap(*nesting, object)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NestedBlock {
    pub type_name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

impl NestedBlock {
    pub fn single(type_name: &str, block: Block) -> Self {
        NestedBlock { type_name: type_name.to_string(), nesting: Nesting::Single, block, min_items: 0, max_items: 0 }
    }
    pub fn list(type_name: &str, block: Block) -> Self {
        NestedBlock { nesting: Nesting::List, ..Self::single(type_name, block) }
    }
    pub fn set(type_name: &str, block: Block) -> Self {
        NestedBlock { nesting: Nesting::Set, ..Self::single(type_name, block) }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: String,
    pub deprecation: Option<String>,
}

impl Block {
    pub fn new(attributes: Vec<Attribute>) -> Self {
        Block { attributes, ..Default::default() }
    }
    pub fn with_block(mut self, block: NestedBlock) -> Self {
        self.blocks.push(block);
        self
    }
    pub fn describe(mut self, text: &str) -> Self {
        self.description = text.to_string();
        self
    }

    /// The object type every value of this block is encoded against.
    pub fn implied_type(&self) -> Type {
        object_type(&self.attributes, &self.blocks)
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

fn object_type(attributes: &[Attribute], blocks: &[NestedBlock]) -> Type {
    let mut fields: BTreeMap<String, Type> = BTreeMap::new();
    for attribute in attributes {
        fields.insert(attribute.name.clone(), attribute.value_type());
    }
    for block in blocks {
        let inner = block.block.implied_type();
        // Blocks holding `dynamic` attributes would need structural types; none of ours do.
        debug_assert!(!contains_dynamic(&inner) || block.nesting == Nesting::Single);
        fields.insert(block.type_name.clone(), wrap(block.nesting, inner));
    }
    Type::Object(fields)
}

fn wrap(nesting: Nesting, inner: Type) -> Type {
    match nesting {
        Nesting::Single | Nesting::Group => inner,
        Nesting::List => Type::List(Box::new(inner)),
        Nesting::Set => Type::Set(Box::new(inner)),
        Nesting::Map => Type::Map(Box::new(inner)),
    }
}

fn contains_dynamic(ty: &Type) -> bool {
    match ty {
        Type::Dynamic => true,
        Type::List(t) | Type::Set(t) | Type::Map(t) => contains_dynamic(t),
        Type::Object(fields) => fields.values().any(contains_dynamic),
        Type::Tuple(items) => items.iter().any(contains_dynamic),
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

impl Schema {
    pub fn new(block: Block) -> Self {
        Schema { version: 0, block }
    }
    pub fn implied_type(&self) -> Type {
        self.block.implied_type()
    }
}

/// The `timeouts { create = "5m" ... }` block many resources share.
pub fn timeouts_block(operations: &[&str]) -> NestedBlock {
    let attributes = operations
        .iter()
        .map(|op| {
            Attribute::string(op).optional().describe(&format!(
                "How long to wait for the {op} operation, as a duration like `30s`, `5m` or `1h`."
            ))
        })
        .collect();
    NestedBlock::single("timeouts", Block::new(attributes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_type_covers_attributes_nested_attributes_and_blocks() {
        let block = Block::new(vec![
            Attribute::string("name").required(),
            Attribute::string_map("labels").optional(),
            Attribute::nested("cluster", Nesting::Single, vec![Attribute::string("host").optional()]),
        ])
        .with_block(timeouts_block(&["create"]))
        .with_block(NestedBlock::list("component", Block::new(vec![Attribute::string("name").required()])));
        let ty = block.implied_type();
        let expected = Type::Object(BTreeMap::from([
            ("name".to_string(), Type::String),
            ("labels".to_string(), Type::Map(Box::new(Type::String))),
            ("cluster".to_string(), Type::Object(BTreeMap::from([("host".to_string(), Type::String)]))),
            ("timeouts".to_string(), Type::Object(BTreeMap::from([("create".to_string(), Type::String)]))),
            (
                "component".to_string(),
                Type::List(Box::new(Type::Object(BTreeMap::from([("name".to_string(), Type::String)])))),
            ),
        ]));
        assert_eq!(ty, expected);
    }
}
