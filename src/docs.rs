//! Registry-layout documentation generated from the schemas and `examples/`:
//! `docs/index.md`, `docs/resources/<noun>.md`, `docs/data-sources/<noun>.md`,
//! `docs/ephemeral-resources/<noun>.md`; and the input and output tables of the READMEs of
//! `modules/*` and `examples/*`.
//! Run `cargo run --bin generate-docs`; a test fails when any of them is stale.

pub mod module_tables;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::framework::resource::Provider;
use crate::framework::schema::{Attribute, AttributeType, Block, Nesting, Schema};
use crate::provider::PlatformProvider;

/// The Terraform versions the acceptance tests run with (scripts/testenv.sh installs 1.0.3,
/// the oldest client of protocol 6; the other is the one on the test machine's PATH). The
/// acceptance tests fail when they run a version missing here, so the docs cannot overstate.
pub const TESTED_TERRAFORM_VERSIONS: &[&str] = &["1.0.3", "1.11.4"];

/// Every generated file, keyed by its path relative to the repository root: `docs/`, and the
/// READMEs of `modules/*` and `examples/*` with their input and output tables (see
/// [`module_tables`]).
pub fn generate(repo: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = provider_docs(repo);
    files.extend(module_readmes(repo));
    files
}

/// The READMEs of `modules/*` and `examples/*` that carry table markers, with their tables
/// brought up to date. A module whose HCL does not parse stops the generator, naming it.
fn module_readmes(repo: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    for parent in ["modules", "examples"] {
        let Ok(entries) = std::fs::read_dir(repo.join(parent)) else { continue };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for dir in dirs {
            match module_tables::readme(&dir) {
                Ok(Some(text)) => {
                    let relative = dir.strip_prefix(repo).unwrap_or(&dir).join("README.md");
                    files.insert(relative, text);
                }
                Ok(None) => {}
                Err(problem) => panic!("cannot document {}: {problem}", dir.display()),
            }
        }
    }
    files
}

fn provider_docs(repo: &Path) -> BTreeMap<PathBuf, String> {
    let provider = PlatformProvider::new();
    let mut files = BTreeMap::new();
    let examples = repo.join("examples");
    files.insert(PathBuf::from("docs/index.md"), index_page(&provider, &examples, &installation(repo)));
    for resource in provider.resources() {
        let name = resource.type_name();
        let dir = examples.join("resources").join(name);
        let page = page(name, "Resource", &resource.schema(), read(&dir.join("resource.tf")), read(&dir.join("import.sh")));
        files.insert(PathBuf::from(format!("docs/resources/{}.md", noun(name))), page);
    }
    for data_source in provider.data_sources() {
        let name = data_source.type_name();
        let dir = examples.join("data-sources").join(name);
        let page = page(name, "Data Source", &data_source.schema(), read(&dir.join("data-source.tf")), None);
        files.insert(PathBuf::from(format!("docs/data-sources/{}.md", noun(name))), page);
    }
    for ephemeral in provider.ephemeral_resources() {
        let name = ephemeral.type_name();
        let dir = examples.join("ephemeral-resources").join(name);
        let page = page(name, "Ephemeral Resource", &ephemeral.schema(), read(&dir.join("ephemeral-resource.tf")), None);
        files.insert(PathBuf::from(format!("docs/ephemeral-resources/{}.md", noun(name))), page);
    }
    files
}

fn noun(type_name: &str) -> &str {
    type_name.strip_prefix("platform_").unwrap_or(type_name)
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `templates/installation.md` with the release's protocol versions (from
/// `terraform-registry-manifest.json`, the file every release publishes) and the tested
/// Terraform versions filled in.
fn installation(repo: &Path) -> String {
    let Some(template) = read(&repo.join("templates/installation.md")) else { return String::new() };
    let manifest: serde_json::Value = read(&repo.join("terraform-registry-manifest.json"))
        .and_then(|m| serde_json::from_str(&m).ok())
        .unwrap_or_default();
    let protocols: Vec<&str> = manifest["metadata"]["protocol_versions"]
        .as_array()
        .map(|v| v.iter().filter_map(|p| p.as_str()).collect())
        .unwrap_or_default();
    let minor = crate::VERSION.rsplit_once('.').map_or(crate::VERSION, |(minor, _)| minor);
    template
        .replace("{{minor}}", minor)
        .replace("{{protocols}}", &protocols.join(", "))
        .replace("{{terraform}}", &TESTED_TERRAFORM_VERSIONS.join(" and "))
}

fn index_page(provider: &PlatformProvider, examples: &Path, installation: &str) -> String {
    let schema = provider.schema();
    let mut out = String::new();
    let _ = writeln!(out, "---\npage_title: \"platform Provider\"\ndescription: |-\n  {}\n---\n", schema.block.description);
    let _ = writeln!(out, "# platform Provider\n\n{}\n", schema.block.description);
    if let Some(example) = read(&examples.join("provider").join("provider.tf")) {
        let _ = writeln!(out, "## Example Usage\n\n```terraform\n{}```\n", example);
    }
    out.push_str(installation);
    out.push_str(&schema_section(&schema.block));
    out
}

fn page(type_name: &str, kind: &str, schema: &Schema, example: Option<String>, import: Option<String>) -> String {
    let description = &schema.block.description;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "---\npage_title: \"{type_name} {kind} - terraform-provider-platform\"\nsubcategory: \"\"\ndescription: |-\n  {description}\n---\n"
    );
    let _ = writeln!(out, "# {type_name} ({kind})\n\n{description}\n");
    if let Some(example) = example {
        let _ = writeln!(out, "## Example Usage\n\n```terraform\n{example}```\n");
    }
    out.push_str(&schema_section(&schema.block));
    if let Some(import) = import {
        let _ = writeln!(out, "## Import\n\nImport is supported using the following syntax:\n\n```shell\n{import}```");
    }
    out
}

fn schema_section(block: &Block) -> String {
    let mut out = String::from("<!-- schema generated by generate-docs -->\n## Schema\n\n");
    let mut nested = Vec::new();
    write_block(&mut out, block, "", &mut nested);
    while let Some((anchor, title, block)) = nested.first().cloned() {
        nested.remove(0);
        let _ = writeln!(out, "<a id=\"{anchor}\"></a>\n### Nested Schema for `{title}`\n");
        write_block(&mut out, &block, &format!("{title}."), &mut nested);
    }
    out
}

type Pending = Vec<(String, String, Block)>;

fn write_block(out: &mut String, block: &Block, prefix: &str, nested: &mut Pending) {
    let mut groups: [(&str, Vec<String>); 3] = [("Required", vec![]), ("Optional", vec![]), ("Read-Only", vec![])];
    for attribute in &block.attributes {
        let group = if attribute.required { 0 } else if attribute.optional { 1 } else { 2 };
        groups[group].1.push(attribute_line(attribute, prefix, nested));
    }
    for child in &block.blocks {
        let title = format!("{prefix}{}", child.type_name);
        let anchor = format!("nestedblock--{}", title.replace('.', "--"));
        let min = if child.min_items > 0 { format!(", Min: {}", child.min_items) } else { String::new() };
        let max = if child.max_items > 0 { format!(", Max: {}", child.max_items) } else { String::new() };
        let line = format!(
            "- `{}` (Block{}{min}{max}) {} (see [below for nested schema](#{anchor}))",
            child.type_name,
            nesting_word(child.nesting),
            child.block.description
        );
        let group = if child.min_items > 0 { 0 } else { 1 };
        groups[group].1.push(line);
        nested.push((anchor, title, child.block.clone()));
    }
    for (title, lines) in groups {
        if !lines.is_empty() {
            let _ = writeln!(out, "### {title}\n\n{}\n", lines.join("\n"));
        }
    }
}

fn attribute_line(attribute: &Attribute, prefix: &str, nested: &mut Pending) -> String {
    let mut flags = match &attribute.kind {
        AttributeType::Plain(ty) => type_word(&ty.to_json()),
        AttributeType::Nested { nesting, .. } => format!("Attributes{}", nesting_word(*nesting)),
    };
    if attribute.sensitive {
        flags.push_str(", Sensitive");
    }
    if attribute.write_only {
        flags.push_str(", Write-only");
    }
    if attribute.deprecation.is_some() {
        flags.push_str(", Deprecated");
    }
    let mut line = format!("- `{}` ({flags}) {}", attribute.name, attribute.description);
    if let AttributeType::Nested { attributes, .. } = &attribute.kind {
        let title = format!("{prefix}{}", attribute.name);
        let anchor = format!("nestedatt--{}", title.replace('.', "--"));
        let _ = write!(line, " (see [below for nested schema](#{anchor}))");
        nested.push((anchor, title, Block::new(attributes.clone())));
    }
    line
}

fn nesting_word(nesting: Nesting) -> &'static str {
    match nesting {
        Nesting::Single | Nesting::Group => "",
        Nesting::List => " List",
        Nesting::Set => " Set",
        Nesting::Map => " Map",
    }
}

fn type_word(json: &serde_json::Value) -> String {
    match json {
        serde_json::Value::String(s) => capitalise(s),
        serde_json::Value::Array(parts) => match (parts.first().and_then(|p| p.as_str()), parts.get(1)) {
            (Some(kind @ ("list" | "set" | "map")), Some(inner)) => format!("{} of {}", capitalise(kind), type_word(inner)),
            (Some(kind), _) => capitalise(kind),
            _ => "Dynamic".into(),
        },
        _ => "Dynamic".into(),
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
