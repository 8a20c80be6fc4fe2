//! `docs/` is generated from the schemas and `examples/`; this fails when it is stale.

use std::path::Path;

#[test]
fn generated_docs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (path, expected) in platform_provider::docs::generate(root) {
        let actual = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
        if actual != expected {
            stale.push(path.display().to_string());
        }
    }
    assert!(stale.is_empty(), "docs are stale: {stale:?}; run `make docs` and commit the result");
}

#[test]
fn every_type_has_an_example_and_a_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = platform_provider::docs::generate(root);
    for (path, content) in files.iter().filter(|(path, _)| path.starts_with("docs")) {
        assert!(content.contains("## Example Usage"), "{} has no example", path.display());
        assert!(content.contains("## Schema"), "{} has no schema", path.display());
    }
    assert!(files.keys().any(|p| p.ends_with("resources/namespace.md")));
    assert!(files.keys().any(|p| p.ends_with("data-sources/namespace.md")));
}

#[test]
fn index_explains_installation_with_protocol_and_tested_versions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = platform_provider::docs::generate(root);
    let index = &files[Path::new("docs/index.md")];
    for needle in ["## Installation", "filesystem_mirror", "network_mirror", "dev_overrides", "Plugin protocol: 6.0"] {
        assert!(index.contains(needle), "docs/index.md lacks {needle:?}");
    }
    for version in platform_provider::docs::TESTED_TERRAFORM_VERSIONS {
        assert!(index.contains(version), "docs/index.md does not name Terraform {version}");
    }
    assert!(!index.contains("{{"), "an unfilled placeholder in docs/index.md");
}
