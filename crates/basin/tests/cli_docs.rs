//! `docs/cli.md` is the `--help` text of every `basin` command, generated from clap. This test
//! renders it from the built binary and fails when the stored file differs; run
//! `BASIN_BLESS=1 cargo test --release -p basin --test cli_docs` to rewrite it.

mod common;

use std::path::PathBuf;

/// The environment variable that makes the test rewrite `docs/cli.md` instead of comparing.
const BLESS: &str = "BASIN_BLESS";

/// The stored reference, at the workspace root.
fn cli_md_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md")
}

/// The `--help` text of the command `basin <path…>`.
fn help_text(path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = common::basin(&args);
    assert!(
        out.status.success(),
        "basin {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands listed in a help text's `Commands:` section, without clap's `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim_end() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Appends the section of `basin <path…>` and, depth first, those of its subcommands.
fn render_command(path: &mut Vec<String>, out: &mut String) {
    let help = help_text(path);
    let name = std::iter::once("basin")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    out.push_str(&format!(
        "\n## {name}\n\n```text\n{}\n```\n",
        help.trim_end()
    ));
    for sub in subcommands(&help) {
        path.push(sub);
        render_command(path, out);
        path.pop();
    }
}

/// The whole of `docs/cli.md`.
fn render_cli_md() -> String {
    let mut out = String::from(
        "# Command-line reference\n\n\
         The `--help` text of every `basin` command, generated from the command-line parser by \
         `crates/basin/tests/cli_docs.rs`. Do not edit it by hand: \
         `BASIN_BLESS=1 cargo test --release -p basin --test cli_docs` rewrites it.\n",
    );
    render_command(&mut Vec::new(), &mut out);
    out
}

#[test]
fn subcommands_are_read_from_the_commands_section() {
    let help = "Usage: basin <COMMAND>\n\nCommands:\n  data  Inspect\n  help  Print\n\n\
                Options:\n  -h, --help  Print help\n";
    assert_eq!(subcommands(help), vec!["data".to_owned()]);
    assert!(subcommands("Usage: basin eval [OPTIONS]\n").is_empty());
}

#[test]
fn cli_md_matches_the_help_texts() {
    let rendered = render_cli_md();
    let path = cli_md_path();
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(&path, &rendered)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == rendered,
        "{} is stale: a --help text changed. Regenerate it with \
         `{BLESS}=1 cargo test --release -p basin --test cli_docs` and commit the result.",
        path.display()
    );
}
