//! Logs to stderr as hclog JSON lines, the format go-plugin hosts parse: Terraform shows
//! them under `TF_LOG` / `TF_LOG_PROVIDER` with their level and fields intact.

use std::io::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Installs the stderr logger. The level follows `TF_LOG_PROVIDER`, then `TF_LOG`, like
/// Terraform's own filtering (`JSON` means trace); without either, only warnings and errors.
pub fn init() {
    let level = std::env::var("TF_LOG_PROVIDER")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("TF_LOG").ok().filter(|v| !v.is_empty()));
    let max = level_from_tf_log(level.as_deref());
    // Our own events at the requested level; libraries (h2, hyper, rustls, kube) at most at
    // info, or a trace log drowns in frame-level chatter.
    let libraries = std::cmp::min(max, Level::INFO);
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(libraries)
        .with_target("platform_provider", max)
        .with_target("terraform_provider_platform", max);
    let _ = tracing_subscriber::registry()
        .with(HclogLayer.with_filter(filter))
        .try_init();
}

pub fn level_from_tf_log(value: Option<&str>) -> Level {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v == "trace" || v == "json" => Level::TRACE,
        Some(v) if v == "debug" => Level::DEBUG,
        Some(v) if v == "info" => Level::INFO,
        Some(v) if v == "error" => Level::ERROR,
        // Terraform treats any other non-empty value as TRACE.
        Some(v) if v != "warn" && v != "off" => Level::TRACE,
        _ => Level::WARN,
    }
}

struct HclogLayer;

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let line = hclog_line(event, time::OffsetDateTime::now_utc());
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    }
}

fn hclog_line(event: &Event<'_>, now: time::OffsetDateTime) -> String {
    let mut fields = FieldCollector(serde_json::Map::new());
    event.record(&mut fields);
    let mut map = fields.0;
    let message = map.remove("message").unwrap_or_else(|| serde_json::Value::String(String::new()));
    map.insert("@message".into(), message);
    map.insert("@level".into(), level_name(event.metadata().level()).into());
    map.insert("@caller".into(), event.metadata().target().into());
    // go-plugin parses exactly hclog's layout: microseconds and a zone.
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    let timestamp = now.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default();
    map.insert("@timestamp".into(), timestamp.into());
    serde_json::Value::Object(map).to_string()
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

struct FieldCollector(serde_json::Map<String, serde_json::Value>);

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_log_values_map_to_levels() {
        assert_eq!(level_from_tf_log(Some("JSON")), Level::TRACE);
        assert_eq!(level_from_tf_log(Some("debug")), Level::DEBUG);
        assert_eq!(level_from_tf_log(Some("WARN")), Level::WARN);
        assert_eq!(level_from_tf_log(Some("1")), Level::TRACE);
        assert_eq!(level_from_tf_log(None), Level::WARN);
    }

    #[test]
    fn lines_are_hclog_json() {
        use std::sync::{Arc, Mutex};
        // Capture through a layer that formats with the same function.
        struct Capture(Arc<Mutex<Vec<String>>>);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
                let now = time::OffsetDateTime::UNIX_EPOCH;
                self.0.lock().unwrap().push(hclog_line(event, now));
            }
        }
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(resource = "platform_namespace", count = 3, "planned");
        });
        let line = lines.lock().unwrap()[0].clone();
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["@level"], "debug");
        assert_eq!(parsed["@message"], "planned");
        assert_eq!(parsed["@timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(parsed["resource"], "platform_namespace");
        assert_eq!(parsed["count"], 3);
    }
}
