//! The provider block's `dns { ... }` blocks: their schema, and the named DNS servers they
//! set for `platform_dns_record`.

use std::collections::BTreeMap;

use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::schema::{Attribute, Block, NestedBlock};
use crate::framework::value::Value;
use crate::platform::dns::{
    connection_from_fields, DnsDefaults, CLOUDFLARE_FIELDS, DEFAULT_DNS_NAME, OWNER_ID_FIELD, POWERDNS_FIELDS,
    RFC2136_FIELDS,
};

/// A field of a backend and what it means.
type Field = (&'static str, &'static str);

/// The backends, each a sub-block of `dns`: its name, fields and description.
const BACKENDS: [(&str, &[Field], &str); 3] = [
    (
        "rfc2136",
        RFC2136_FIELDS,
        "A primary server that takes RFC 2136 dynamic updates signed with TSIG (BIND, Knot, PowerDNS with dnsupdate).",
    ),
    ("powerdns", POWERDNS_FIELDS, "A PowerDNS Authoritative server's HTTP API."),
    ("cloudflare", CLOUDFLARE_FIELDS, "Cloudflare's v4 API."),
];

fn is_secret(field: &str) -> bool {
    matches!(field, "key_secret" | "api_key" | "api_token")
}

fn is_required(field: &str) -> bool {
    matches!(field, "server" | "url" | "api_key" | "api_token")
}

/// `what` as a sentence: capitalised, with a full stop.
fn sentence(what: &str) -> String {
    let mut chars = what.chars();
    chars.next().map(|first| format!("{}{}.", first.to_uppercase(), chars.as_str())).unwrap_or_default()
}

/// The provider block's `dns` blocks.
pub fn dns_block() -> NestedBlock {
    let mut block = Block::new(vec![
        Attribute::string("name").optional().describe(&format!(
            "Name records pick this server by (`dns = \"...\"`); `{DEFAULT_DNS_NAME}` when omitted."
        )),
        Attribute::string(OWNER_ID_FIELD.0).optional().describe(&sentence(OWNER_ID_FIELD.1)),
    ]);
    for (name, fields, description) in BACKENDS {
        let attributes = fields
            .iter()
            .map(|(field, what)| {
                let attribute = Attribute::string(field).describe(&sentence(what));
                let attribute = if is_required(field) { attribute.required() } else { attribute.optional() };
                if is_secret(field) {
                    attribute.sensitive()
                } else {
                    attribute
                }
            })
            .collect();
        block = block.with_block(NestedBlock::single(name, Block::new(attributes).describe(description)));
    }
    NestedBlock::list(
        "dns",
        block.describe(
            "A DNS server or API that holds zones for `platform_dns_record`; give exactly one of `rfc2136`, `powerdns` \
             or `cloudflare`. Repeat the block, each with its own `name`, for several servers. Credentials set here stay out \
             of state; give them through variables, since Terraform copies literal provider settings into saved plans.",
        ),
    )
}

/// Reads the `dns` blocks; errors name the block and field.
pub fn dns_defaults_from_config(blocks: Option<&Value>, diags: &mut Diagnostics) -> DnsDefaults {
    let blocks = match blocks {
        None | Some(Value::Null) => return DnsDefaults::NotConfigured,
        Some(Value::Unknown) => return DnsDefaults::Unknown,
        Some(Value::List(blocks)) => blocks,
        Some(_) => return DnsDefaults::NotConfigured,
    };
    let mut servers = BTreeMap::new();
    for (index, block) in blocks.iter().enumerate() {
        let path = AttributePath::root("dns").index(index as i64);
        let name = match block.get_attr("name") {
            Some(Value::String(name)) => name.clone(),
            Some(Value::Unknown) => {
                diags.push(
                    Diagnostic::error(
                        "DNS block name not known",
                        "The `name` of a `dns` block must be known when planning.",
                    )
                    .at(path.attribute("name")),
                );
                continue;
            }
            _ => DEFAULT_DNS_NAME.to_string(),
        };
        if servers.contains_key(&name) {
            diags.push(
                Diagnostic::error(
                    "Duplicate DNS block",
                    format!("Two `dns` blocks are named {name:?}; give each its own `name`."),
                )
                .at(path.attribute("name")),
            );
            continue;
        }
        let given: Vec<(&str, &BTreeMap<String, Value>)> = BACKENDS
            .iter()
            .filter_map(|(kind, _, _)| match block.get_attr(kind) {
                Some(Value::Object(fields)) => Some((*kind, fields)),
                _ => None,
            })
            .collect();
        let (kind, fields) = match given.as_slice() {
            [one] => *one,
            [] => {
                diags.push(
                    Diagnostic::error(
                        "Incomplete DNS block",
                        format!("The `dns` block {name:?} needs one of `rfc2136`, `powerdns` or `cloudflare`."),
                    )
                    .at(path),
                );
                continue;
            }
            _ => {
                diags.push(
                    Diagnostic::error(
                        "Ambiguous DNS block",
                        format!("The `dns` block {name:?} has several of `rfc2136`, `powerdns` and `cloudflare`; give one (use another block for another server)."),
                    )
                    .at(path),
                );
                continue;
            }
        };
        let sub = path.clone().attribute(kind);
        match connection_from_fields(fields, block.get_attr(OWNER_ID_FIELD.0), &sub, |p, k| p.clone().attribute(k)) {
            Ok(connection) => {
                servers.insert(name, connection);
            }
            Err(diagnostic) => diags.push(diagnostic),
        }
    }
    DnsDefaults::Known(servers)
}
