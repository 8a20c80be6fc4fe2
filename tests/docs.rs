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
    for (path, content) in &files {
        assert!(content.contains("## Example Usage"), "{} has no example", path.display());
        assert!(content.contains("## Schema"), "{} has no schema", path.display());
    }
    assert!(files.keys().any(|p| p.ends_with("resources/namespace.md")));
    assert!(files.keys().any(|p| p.ends_with("data-sources/namespace.md")));
}
