//! Writes `docs/` from the provider's schemas and `examples/`. Run from the repository root.

fn main() -> std::io::Result<()> {
    let root = std::env::current_dir()?;
    for (path, content) in platform_provider::docs::generate(&root) {
        let target = root.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
