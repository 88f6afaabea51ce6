//! The README and the manual under `docs/`: the config reference covers
//! every key, every relative link (and anchor) between the pages resolves,
//! every shell block says how it is tested, the blocks marked `run` run,
//! and every `aws-session-daemon` command they show is one the program
//! accepts.
//!
//! A shell block (```` ```sh ````) is preceded by one of
//! - `<!-- docs-test: run -->`: this test runs it (`cargo run --` stands
//!   for the built binary) in the repository, and it must exit 0;
//! - `<!-- docs-test: cli -->`: its `aws-session-daemon` lines are parsed by
//!   the program (with `--help` added, so nothing runs);
//! - `<!-- docs-test: not here (why, and what covers it) -->`: it needs
//!   what a test machine has not (root's package manager, a systemd user
//!   manager, nixpkgs); its `aws-session-daemon` lines are parsed all the same.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_aws-session-daemon");

/// README.md and every page of the manual.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 10, "the manual has its pages: {docs:?}");
    pages.extend(docs);
    pages
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.strip_prefix(ROOT).unwrap().display().to_string()
}

/// A fenced block: its info string, the line before its opening fence
/// (skipping blank lines), its text, and the line it starts on.
struct Block {
    info: String,
    marker: String,
    text: String,
    line: usize,
}

/// The fenced blocks of a page, and its text outside them.
fn blocks(text: &str) -> (Vec<Block>, String) {
    let mut blocks = Vec::new();
    let mut prose = String::new();
    let mut open: Option<(String, usize, String, String)> = None;
    let mut last_prose_line = String::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            Some((fence, _, _, body)) => {
                if trimmed.starts_with(fence.as_str()) && trimmed.trim() == fence.as_str() {
                    let (_, start, info, body) = open.take().unwrap();
                    let (info, marker) = info.split_once('\u{0}').unwrap();
                    blocks.push(Block {
                        info: info.to_string(),
                        marker: marker.to_string(),
                        text: body,
                        line: start,
                    });
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None => {
                if let Some(rest) = trimmed.strip_prefix("```") {
                    let info = format!("{}\u{0}{}", rest.trim(), last_prose_line.trim());
                    open = Some(("```".into(), index + 1, info, String::new()));
                } else {
                    prose.push_str(line);
                    prose.push('\n');
                    if !line.trim().is_empty() {
                        last_prose_line = line.to_string();
                    }
                }
            }
        }
    }
    assert!(open.is_none(), "a code block is not closed");
    (blocks, prose)
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(prose: &str) -> BTreeSet<String> {
    prose
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// The targets of the inline links `[text](target)` in the prose.
fn links(prose: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = prose;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        found.push(after[..end].to_string());
        rest = &after[end..];
    }
    found
}

#[test]
fn config_reference_documents_every_config_key() {
    let page = read(&Path::new(ROOT).join("docs/configuration.md"));
    let keys = aws_session_daemon::config::KEYS.iter();
    for key in keys.chain(aws_session_daemon::config::SSO_SESSION_KEYS) {
        assert!(
            page.contains(&format!("| `{}` |", key.name)),
            "docs/configuration.md lacks a row for `{}`",
            key.name
        );
    }
}

#[test]
fn readme_is_short_and_leads_into_every_page() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines; the manual is docs/"
    );
    for page in pages().iter().skip(1) {
        let link = format!("](docs/{})", page.file_name().unwrap().to_str().unwrap());
        assert!(readme.contains(&link), "README.md does not link {link}");
    }
    // The two commands CI and a newcomer run.
    for command in ["bash scripts/demo.sh", "bash scripts/test.sh"] {
        assert!(readme.contains(&format!("\n{command}\n")), "{command}");
    }
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut checked = 0;
    for page in pages() {
        let (_, prose) = blocks(&read(&page));
        for target in links(&prose) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(
                resolved.exists(),
                "{}: the link ({target}) points at {}, which does not exist",
                name(&page),
                resolved.display()
            );
            if let Some(anchor) = anchor {
                let (_, target_prose) = blocks(&read(&resolved));
                let known = anchors(&target_prose);
                assert!(
                    known.contains(anchor),
                    "{}: the link ({target}) names #{anchor}, which is no heading of {}; it has {known:?}",
                    name(&page),
                    resolved.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} links found");
}

/// The shell blocks of every page, with the page's name.
fn shell_blocks() -> Vec<(String, Block)> {
    pages()
        .iter()
        .flat_map(|page| {
            let (blocks, _) = blocks(&read(page));
            let page = name(page);
            blocks
                .into_iter()
                .filter(|b| b.info == "sh")
                .map(move |b| (page.clone(), b))
        })
        .collect()
}

/// How a block is tested, from its marker.
fn kind(page: &str, block: &Block) -> &'static str {
    let marker = block.marker.as_str();
    let inner = marker
        .strip_prefix("<!-- docs-test: ")
        .and_then(|m| m.strip_suffix("-->"))
        .unwrap_or_else(|| {
            panic!(
                "{page}:{}: a shell block without a `<!-- docs-test: ... -->` line before it (found {marker:?})",
                block.line
            )
        })
        .trim();
    match inner {
        "run" => "run",
        "cli" => "cli",
        reason if reason.starts_with("not here (") && reason.ends_with(')') => "not here",
        other => panic!("{page}:{}: unknown docs-test marker {other:?}", block.line),
    }
}

/// The block's commands: continuation lines joined, comments dropped.
fn commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(start) = line.strip_suffix('\\') {
            current.push_str(start);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let command = strip_comment(&current).trim().to_string();
        if !command.is_empty() {
            commands.push(command);
        }
        current.clear();
    }
    commands
}

fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i == 0 || line[..i].ends_with(' ') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Splits a command line the way the shell does for these simple cases
/// (words, single and double quotes).
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in {command:?}");
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn every_shell_block_says_how_it_is_tested() {
    let blocks = shell_blocks();
    assert!(blocks.len() >= 10, "only {} shell blocks", blocks.len());
    let kinds: BTreeSet<&str> = blocks.iter().map(|(p, b)| kind(p, b)).collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn every_documented_invocation_is_accepted_by_the_program() {
    let mut checked = 0;
    for (page, block) in shell_blocks() {
        kind(&page, &block);
        for command in commands(&block.text) {
            let mut words = words(&command);
            // A pipeline's first command is the program's.
            if let Some(pipe) = words
                .iter()
                .position(|w| matches!(w.as_str(), "|" | "&&" | ";"))
            {
                words.truncate(pipe);
            }
            let args = match words.first().map(String::as_str) {
                Some("aws-session-daemon") => &words[1..],
                Some("cargo") if words.get(1).map(String::as_str) == Some("run") => &words[3..],
                _ => continue,
            };
            // `--help` before a `--` (after it, it is the command's own).
            let at = args.iter().position(|w| w == "--").unwrap_or(args.len());
            let out = Command::new(BIN)
                .args(&args[..at])
                .arg("--help")
                .args(&args[at..])
                .env("HOME", "/nonexistent")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{page}:{}: `{command}` is not accepted:\n{}",
                block.line,
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} invocations found");
}

#[test]
fn the_blocks_marked_run_run() {
    let mut ran = 0;
    for (page, block) in shell_blocks() {
        if kind(&page, &block) != "run" {
            continue;
        }
        for command in commands(&block.text) {
            let words = words(&command);
            let args = match words.as_slice() {
                [cargo, run, dashes, args @ ..]
                    if cargo == "cargo" && run == "run" && dashes == "--" =>
                {
                    args
                }
                _ => panic!(
                    "{page}:{}: a `run` block holds `{command}`, which this test cannot run",
                    block.line
                ),
            };
            let out = Command::new(BIN)
                .args(args)
                .current_dir(ROOT)
                .env_remove("AWS_SHARED_CREDENTIALS_FILE")
                .env_remove("AWS_REGION")
                .env_remove("AWS_DEFAULT_REGION")
                .env_remove("AWS_ENDPOINT_URL")
                .env_remove("AWS_ENDPOINT_URL_STS")
                .output()
                .unwrap();
            assert!(
                out.status.success() && !out.stdout.is_empty(),
                "{page}:{}: `{command}` failed: {}\n{}",
                block.line,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 2, "only {ran} commands run");
}
