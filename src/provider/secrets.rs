//! The provider block's `secrets { ... }`: its schema, and the [`SecretsConfig`] it sets.

use secrecy::SecretString;

use crate::framework::schema::{Attribute, Block, NestedBlock};
use crate::framework::value::Value;
use crate::platform::SecretsConfig;

/// The provider block's `secrets { ... }`.
pub fn secrets_block() -> NestedBlock {
    NestedBlock::single(
        "secrets",
        Block::new(vec![
            Attribute::string("age_key_file").optional().describe(
                "File with age identities (`AGE-SECRET-KEY-1...` lines) for SOPS files. Defaults like sops: \
                 `SOPS_AGE_KEY`, then `SOPS_AGE_KEY_FILE`, then `sops/age/keys.txt` in the user's configuration \
                 directory: `$XDG_CONFIG_HOME` or `~/.config` on Linux, `~/Library/Application Support` on macOS \
                 (`$XDG_CONFIG_HOME` when set), `%AppData%` on Windows.",
            ),
            Attribute::string("age_key").optional().sensitive().describe(
                "age identities given inline, e.g. from a variable; takes precedence over `age_key_file`.",
            ),
        ])
        .describe("How to decrypt SOPS files. Nothing is read until a resource needs a key."),
    )
}

/// Reads the block; unknown values (keys written by this very run) count as unset.
pub fn secrets_config_from_block(block: Option<&Value>) -> SecretsConfig {
    let text = |name: &str| block.and_then(|b| b.get_attr(name)).and_then(Value::as_str).map(str::to_string);
    SecretsConfig::new(text("age_key_file"), text("age_key").map(SecretString::from))
}
