//! The `timeouts` block: durations like `30s`, `5m`, `1h30m`, validated at plan time.

use std::time::Duration;

use super::diagnostics::{AttributePath, Diagnostics};
use super::value::Value;

/// The configured timeout for `operation`, or `default` when unset.
pub fn timeout(state: &Value, operation: &str, default: Duration) -> Duration {
    state
        .get_attr("timeouts")
        .and_then(|t| t.get_attr(operation))
        .and_then(Value::as_str)
        .and_then(|text| humantime::parse_duration(text.trim()).ok())
        .unwrap_or(default)
}

/// Reports each unparsable duration on its own attribute.
pub fn validate(config: &Value, operations: &[&str], diags: &mut Diagnostics) {
    let Some(timeouts) = config.get_attr("timeouts") else { return };
    for operation in operations {
        if let Some(text) = timeouts.get_attr(operation).and_then(Value::as_str) {
            if let Err(e) = humantime::parse_duration(text.trim()) {
                diags.error_at(
                    AttributePath::root("timeouts").attribute(operation),
                    "Invalid duration",
                    format!("{text:?} is not a duration ({e}); write it like \"30s\", \"5m\" or \"1h30m\"."),
                );
            }
        }
    }
}
