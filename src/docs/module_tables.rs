//! The input and output tables of a Terraform module's README (`modules/*`, `examples/*`),
//! read from its `variables.tf` and `outputs.tf` and written between the README's
//! `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->` markers.

use std::fmt::Write as _;
use std::path::Path;

use hcl::{Body, Expression};

pub const BEGIN: &str = "<!-- BEGIN_TF_DOCS -->";
pub const END: &str = "<!-- END_TF_DOCS -->";

/// One `variable` block.
#[derive(Debug, PartialEq)]
pub struct Input {
    pub name: String,
    pub description: String,
    pub type_: String,
    /// `None` when the variable has no default (the caller must set it).
    pub default: Option<String>,
    pub sensitive: bool,
}

/// One `output` block.
#[derive(Debug, PartialEq)]
pub struct Output {
    pub name: String,
    pub description: String,
    pub sensitive: bool,
}

/// The README of the module in `dir` with its tables brought up to date, or `None` when it has
/// no markers. A file that does not parse is an error naming it.
pub fn readme(dir: &Path) -> Result<Option<String>, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("README.md")) else { return Ok(None) };
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else { return Ok(None) };
    if end < begin {
        return Err(format!("{}: {END} comes before {BEGIN}", dir.join("README.md").display()));
    }
    let inputs = inputs(&parse(&dir.join("variables.tf"))?);
    let outputs = outputs(&parse(&dir.join("outputs.tf"))?);
    let tables = tables(&inputs, &outputs);
    Ok(Some(format!("{}{BEGIN}\n{tables}{}", &text[..begin], &text[end..])))
}

/// A missing file is an empty body: a module may have no outputs.
fn parse(path: &Path) -> Result<Body, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => hcl::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(_) => Ok(Body::default()),
    }
}

fn attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn string_attribute(body: &Body, key: &str) -> String {
    match attribute(body, key) {
        Some(Expression::String(s)) => s.clone(),
        Some(other) => expression(other),
        None => String::new(),
    }
}

fn is_true(body: &Body, key: &str) -> bool {
    matches!(attribute(body, key), Some(Expression::Bool(true)))
}

/// `text` on one line, runs of whitespace made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An expression as written, on one line.
fn expression(expr: &Expression) -> String {
    one_line(&hcl::format::to_string(expr).unwrap_or_default())
}

pub fn inputs(body: &Body) -> Vec<Input> {
    body.blocks()
        .filter(|b| b.identifier() == "variable")
        .filter_map(|b| {
            let name = b.labels().first()?.as_str().to_string();
            let body = &b.body;
            Some(Input {
                name,
                description: string_attribute(body, "description"),
                type_: attribute(body, "type").map_or_else(|| "any".to_string(), expression),
                default: attribute(body, "default").map(expression),
                sensitive: is_true(body, "sensitive"),
            })
        })
        .collect()
}

pub fn outputs(body: &Body) -> Vec<Output> {
    body.blocks()
        .filter(|b| b.identifier() == "output")
        .filter_map(|b| {
            let name = b.labels().first()?.as_str().to_string();
            Some(Output {
                name,
                description: string_attribute(&b.body, "description"),
                sensitive: is_true(&b.body, "sensitive"),
            })
        })
        .collect()
}

/// Text for a Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn code(text: &str) -> String {
    format!("`{}`", cell(text))
}

/// The two tables: required inputs first, then the optional ones, each in file order.
pub fn tables(inputs: &[Input], outputs: &[Output]) -> String {
    let mut out = String::from("## Inputs\n\n");
    if inputs.is_empty() {
        out.push_str("No inputs.\n");
    } else {
        out.push_str(
            "| Name | Description | Type | Default | Required |\n|------|-------------|------|---------|:--------:|\n",
        );
        let (required, optional): (Vec<&Input>, Vec<&Input>) = inputs.iter().partition(|i| i.default.is_none());
        for input in required.into_iter().chain(optional) {
            let sensitive = if input.sensitive { " (sensitive)" } else { "" };
            let default = input.default.as_deref().map_or_else(|| "n/a".to_string(), code);
            let required = if input.default.is_none() { "yes" } else { "no" };
            let _ = writeln!(
                out,
                "| `{}` | {}{sensitive} | {} | {default} | {required} |",
                input.name,
                cell(&input.description),
                code(&input.type_)
            );
        }
    }
    out.push_str("\n## Outputs\n\n");
    if outputs.is_empty() {
        out.push_str("No outputs.\n");
    } else {
        out.push_str("| Name | Description | Sensitive |\n|------|-------------|:---------:|\n");
        for output in outputs {
            let sensitive = if output.sensitive { "yes" } else { "no" };
            let _ = writeln!(out, "| `{}` | {} | {sensitive} |", output.name, cell(&output.description));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARIABLES: &str = r#"
variable "cluster" {
  description = "Connection of the cluster."
  type        = map(string)
  sensitive   = true
  default     = null
}

variable "acme_email" {
  description = "Contact | address."
  type        = string
}

variable "schedules" {
  description = "Backup schedules."
  type = map(object({
    schedule = string
    ttl      = string
  }))
  default = {}
}
"#;

    #[test]
    fn reads_variables_with_types_and_defaults_as_written() {
        let inputs = inputs(&hcl::parse(VARIABLES).unwrap());
        assert_eq!(inputs.len(), 3);
        assert_eq!(inputs[0].type_, "map(string)");
        assert_eq!(inputs[0].default.as_deref(), Some("null"));
        assert!(inputs[0].sensitive);
        assert_eq!(inputs[1].default, None);
        assert_eq!(inputs[2].type_, "map(object({ schedule = string, ttl = string }))");
        assert_eq!(inputs[2].default.as_deref(), Some("{}"));
    }

    #[test]
    fn tables_list_required_inputs_first_and_escape_pipes() {
        let inputs = inputs(&hcl::parse(VARIABLES).unwrap());
        let outputs =
            outputs(&hcl::parse("output \"issuer\" {\n  description = \"Its name.\"\n  value = 1\n}\n").unwrap());
        let text = tables(&inputs, &outputs);
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| `")).collect();
        assert_eq!(rows[0], "| `acme_email` | Contact \\| address. | `string` | n/a | yes |");
        assert_eq!(rows[1], "| `cluster` | Connection of the cluster. (sensitive) | `map(string)` | `null` | no |");
        assert_eq!(rows[3], "| `issuer` | Its name. | no |");
    }

    #[test]
    fn a_readme_without_markers_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "# x\n").unwrap();
        assert_eq!(readme(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("README.md"), format!("# x\n\n{BEGIN}\nold\n{END}\n")).unwrap();
        std::fs::write(dir.path().join("variables.tf"), VARIABLES).unwrap();
        let text = readme(dir.path()).unwrap().unwrap();
        assert!(text.starts_with("# x\n\n<!-- BEGIN_TF_DOCS -->\n## Inputs\n"), "{text}");
        assert!(text.ends_with("No outputs.\n<!-- END_TF_DOCS -->\n"), "{text}");
        assert!(!text.contains("old"));
    }
}
