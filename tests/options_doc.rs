//! One source for every default: what `Config` takes when nothing is set is what the options table of
//! `docs/operations.md`, `--help` and `examples/swiftftp.conf` say. A default changed in one place fails here
//! until the other three follow. Needs no Swift: the configuration is only parsed.

use clap::{CommandFactory, Parser};
use swiftftp::cli::Cli;
use swiftftp::config::{
    Config, DEFAULT_BANNER, DloCheck, EndpointType, KNOWN_KEYS, KeystoneVersion, LogFormat,
};

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Every key that has a default, with that default as the code has it, written as the docs write it.
fn code_defaults() -> Vec<(&'static str, String)> {
    let cli = Cli::parse_from([
        "swiftftp",
        "--config",
        "tests/fixtures/empty.conf",
        "--auth-url",
        "http://127.0.0.1:1/auth/v1.0",
    ]);
    let c = Config::from_cli(cli).unwrap();
    let secs = |d: std::time::Duration| d.as_secs().to_string();
    vec![
        ("port", c.listen.port().to_string()),
        ("bind-address", c.listen.ip().to_string()),
        ("insecure", yes_no(c.insecure)),
        ("swift-timeout", secs(c.swift_timeout)),
        ("verbose", yes_no(c.logging.verbose)),
        ("syslog", yes_no(c.logging.syslog)),
        (
            "log-format",
            match c.logging.format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }
            .to_owned(),
        ),
        ("shutdown-grace", secs(c.shutdown_grace)),
        ("banner", DEFAULT_BANNER.to_owned()),
        ("cache-ttl", secs(c.cache_ttl)),
        (
            "dlo-check",
            match c.dlo_check {
                DloCheck::Segments => "segments",
                DloCheck::All => "all",
                DloCheck::None => "none",
            }
            .to_owned(),
        ),
        ("hide-segments", yes_no(c.hide_segments)),
        ("hide-part-dir", yes_no(c.hide_part_dir)),
        ("mfmt", yes_no(c.mfmt)),
        ("tls-required", yes_no(c.tls_required)),
        ("proxy-protocol", yes_no(c.proxy_protocol)),
        ("max-connections", c.limits.max_connections.to_string()),
        ("max-cons-per-ip", c.limits.max_cons_per_ip.to_string()),
        (
            "login-timeout",
            c.limits.login_timeout.map_or("0".to_owned(), secs),
        ),
        (
            "max-sessions-per-user",
            c.limits.max_sessions_per_user.to_string(),
        ),
        (
            "rename-max-objects",
            c.limits.rename_max_objects.to_string(),
        ),
        ("idle-timeout", secs(c.limits.idle_timeout)),
        (
            "max-login-failures",
            c.limits.max_login_failures.to_string(),
        ),
        ("login-lockout", secs(c.limits.login_lockout)),
        ("login-cache-ttl", secs(c.limits.login_cache_ttl)),
        (
            "permit-foreign-addresses",
            yes_no(c.permit_foreign_addresses),
        ),
        ("rackspace-service-net", yes_no(c.rackspace_service_net)),
        ("keystone-auth", yes_no(c.keystone.enabled)),
        (
            "keystone-auth-version",
            match c.keystone.version {
                KeystoneVersion::V2 => "2.0",
                KeystoneVersion::V3 => "3",
            }
            .to_owned(),
        ),
        (
            "keystone-tenant-separator",
            c.keystone.tenant_separator.clone(),
        ),
        (
            "keystone-domain-separator",
            c.keystone.domain_separator.clone(),
        ),
        ("keystone-service-type", c.keystone.service_type.clone()),
        (
            "keystone-endpoint-type",
            match c.keystone.endpoint_type {
                EndpointType::Public => "publicURL",
                EndpointType::Internal => "internalURL",
                EndpointType::Admin => "adminURL",
            }
            .to_owned(),
        ),
    ]
}

/// The default column of the options table's row for `key` (the row whose config-key column names it).
fn table_default<'a>(table: &'a str, key: &str) -> Option<&'a str> {
    let named = format!("`{key}`");
    table.lines().find_map(|line| {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | flag | key | default | meaning |
        (cells.len() >= 5 && cells[2].split(", ").any(|k| k == named)).then(|| cells[3])
    })
}

#[test]
fn the_options_table_help_and_example_config_say_the_code_s_defaults() {
    let table = std::fs::read_to_string("docs/operations.md").unwrap();
    let example = std::fs::read_to_string("examples/swiftftp.conf").unwrap();
    let mut help = Cli::command();
    let mut wrong = Vec::new();
    for (key, default) in code_defaults() {
        match table_default(&table, key) {
            Some(cell) if cell.starts_with(&format!("`{default}`")) => {}
            other => wrong.push(format!(
                "docs/operations.md: {key} default {other:?}, the code: {default}"
            )),
        }
        if !example
            .lines()
            .any(|l| l.trim_end() == format!("# {key} = {default}"))
        {
            wrong.push(format!(
                "examples/swiftftp.conf: no line `# {key} = {default}`"
            ));
        }
        let arg = help.get_arguments().find(|a| a.get_long() == Some(key));
        if let Some(arg) = arg
            && arg.get_action().takes_values()
        {
            let text = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let said = format!("[default: {default}");
            let follows = text
                .find(&said)
                .and_then(|at| text[at + said.len()..].chars().next());
            if !matches!(follows, Some(']' | ';' | ',')) {
                wrong.push(format!(
                    "--{key} help: no `[default: {default}]` in {text:?}"
                ));
            }
        }
    }
    // Built for its side effect: clap checks the command's consistency here.
    help.build();
    assert!(wrong.is_empty(), "defaults disagree:\n{}", wrong.join("\n"));
}

/// Every key the file takes has its row in the options table and its line in the example configuration.
#[test]
fn every_key_is_in_the_options_table_and_the_example_config() {
    let table = std::fs::read_to_string("docs/operations.md").unwrap();
    let example = std::fs::read_to_string("examples/swiftftp.conf").unwrap();
    let mut missing = Vec::new();
    for key in KNOWN_KEYS {
        if table_default(&table, key).is_none() {
            missing.push(format!("docs/operations.md: no row for `{key}`"));
        }
        let set = format!("{key} = ");
        if !example
            .lines()
            .any(|l| l.strip_prefix("# ").unwrap_or(l).starts_with(&set))
        {
            missing.push(format!("examples/swiftftp.conf: no `{key} = ...` line"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// `--print-man-page` and `--print-completions` come from the same clap definition as `--help`: every option
/// `--help` shows is in the man page and in each shell's completions, and the two printing flags stay hidden.
#[test]
fn the_man_page_and_completions_list_every_option() {
    let bin = env!("CARGO_BIN_EXE_swiftftp");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let man = run(&["--print-man-page"]);
    assert!(
        man.starts_with(".ie") || man.starts_with(".TH"),
        "{}",
        &man[..80.min(man.len())]
    );
    assert!(man.contains(".TH swiftftp 1"), "no title line");
    let help = run(&["--help"]);
    assert!(
        !help.contains("--print-"),
        "the printing flags are listed in --help"
    );
    let longs: Vec<String> = Cli::command()
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    assert!(longs.len() > 40, "{longs:?}");
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["--print-completions", shell]);
        for long in &longs {
            let fish_form = format!("-l {}", &long[2..]);
            assert!(
                script.contains(long.as_str()) || script.contains(&fish_form),
                "{shell} completions miss {long}"
            );
        }
    }
    // roff escapes every dash of an option name.
    for long in &longs {
        assert!(
            man.contains(&long.replace('-', "\\-")),
            "the man page misses {long}"
        );
        assert!(help.contains(long.as_str()), "--help misses {long}");
    }
}

/// The keys that were file-only are read from their `SWIFTFTP_*` variables too (SWIFTFTP_PASSIVE_PORTS was
/// silently ignored): a bad value there stops the start with an error naming the option.
#[test]
fn file_only_keys_are_read_from_the_environment() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_swiftftp"))
        .args([
            "--foreground",
            "-p",
            "0",
            "-a",
            "http://127.0.0.1:1/auth/v1.0",
        ])
        .args(["--config", "tests/fixtures/empty.conf"])
        .env("SWIFTFTP_PASSIVE_PORTS", "9:1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--passive-ports"), "{err}");
}
