//! `/metrics` follows Prometheus naming (#19): one family (`swiftftp_*`, plus the standard `process_*`), every
//! counter ending in `_total`, nothing else ending so, and label values from closed sets (no fragments of Rust
//! Debug output, nothing a client can vary). Checked on what `/metrics` serves after a session that logs in,
//! lists, uploads, downloads, fails a command and logs out.

use crate::common::TestGateway;
use crate::common::swift::Fixture;

/// What `/metrics` serves after a session that logs in, uploads, downloads, lists, fails two commands and logs
/// out (a labelled series shows only once it has counted something).
fn metrics_after_a_session(name: &str) -> String {
    let fx = Fixture::new(name);
    // (libunftp's collectors are on only when metrics are served.)
    let gw = TestGateway::start_with(&["--metrics-address", "127.0.0.1:0"]);
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("m.txt")), b"metrics"),
        226
    );
    let (replies, _) = raw.transfer(&format!("RETR {}", fx.path("m.txt")));
    assert_eq!(replies.last().unwrap().0, 226);
    raw.transfer(&format!("MLSD {}", fx.path("")));
    assert_eq!(raw.cmd("SIZE /no/such \"(file)\"").0, 550);
    assert_eq!(raw.cmd("XYZZY (with) {braces}").0, 500);
    assert_eq!(raw.cmd("QUIT").0, 221);
    swiftftp::metrics::render()
}

#[test]
fn every_series_follows_the_naming_conventions() {
    let text = metrics_after_a_session("metrics");

    let mut wrong = Vec::new();
    let mut types = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (name, kind) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            types.insert(name.to_owned(), kind.to_owned());
            if !(name.starts_with("swiftftp_") || name.starts_with("process_")) {
                wrong.push(format!("{name}: not in the swiftftp_ family"));
            }
            if (kind == "counter") != name.ends_with("_total") {
                wrong.push(format!(
                    "{name}: a {kind}; counters and only counters end in _total"
                ));
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some(open) = line.find('{') else { continue };
        let close = line.rfind('}').unwrap_or(line.len());
        for pair in line[open + 1..close].split("\",") {
            let value = pair
                .split_once("=\"")
                .map_or("", |(_, v)| v.trim_end_matches('"'));
            if !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:-+".contains(c))
            {
                wrong.push(format!("a label value outside a closed set: {line}"));
            }
        }
    }
    for name in [
        "swiftftp_build_info",
        "swiftftp_ftp_commands_total",
        "swiftftp_ftp_replies_total",
        "swiftftp_ftp_data_sent_bytes_total",
        "swiftftp_transfers_total",
        "swiftftp_swift_request_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        if !types.contains_key(name) {
            wrong.push(format!("{name}: missing"));
        }
    }
    let version = format!(
        "swiftftp_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    if !text.lines().any(|l| l == version) {
        wrong.push(format!("no line {version}"));
    }
    assert!(wrong.is_empty(), "{}\n\n{text}", wrong.join("\n"));
}

/// The Grafana dashboard in `examples/` is valid JSON and uses only series `/metrics` serves.
#[test]
fn the_grafana_dashboard_uses_only_series_there_are() {
    let dashboard = std::fs::read_to_string("examples/grafana-dashboard.json").unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let panels = parsed["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    let served = metrics_after_a_session("metrics-dash");
    let mut unknown = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("swiftftp_") || word.starts_with("process_") {
                    let name = word.trim_end_matches("_bucket");
                    if !served.contains(&format!("# TYPE {name} ")) {
                        unknown.push(word.to_owned());
                    }
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "series the dashboard uses that /metrics lacks: {unknown:?}"
    );
}
