//! The service files: systemd units, the supervisord config, the Nix package,
//! home-manager module and flake.
//!
//! Each check runs the real tool on the file as shipped (systemd-analyze,
//! supervisord, nix-instantiate), with the built binary standing where the
//! files expect it. A missing tool is a failure that names the package to
//! install, never a silent skip. Nothing here needs the network.
//!
//! One test binary, a module per kind of file; the helpers they share are
//! here.

mod nix;
mod readme;
mod secrets;
mod supervisord;
mod systemd;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_aws-session-daemon");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const MAIN_UNIT: &str = "examples/systemd/aws-session-daemon.service";
const TEMPLATE_UNIT: &str = "examples/systemd/aws-session-daemon@.service";
const SUPERVISORD_CONF: &str = "examples/supervisord.conf";
const EXAMPLE_CONFIG: &str = "examples/config.toml";
const NO_USERNS_DROP_IN: &str = "examples/systemd/no-user-namespaces.conf";

/// The sandbox every unit must keep, as (key, value) after joining repeated
/// lines. Removing or weakening one of them must be a deliberate change here.
fn path(relative: &str) -> PathBuf {
    Path::new(ROOT).join(relative)
}

fn read(relative: &str) -> String {
    fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// Fails the test with the install command when `tool` is not on PATH.
fn require(tool: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed; these checks need it: {install} \
         (scripts/install-deps.sh does)"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A unit file as section -> key -> values (one per line, in order).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(source: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for line in source.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a key=value line: {line}"));
        unit.entry(section.clone())
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    unit
}

/// The values of a key as one space-separated string, so that
/// `A=x y` and `A=x` + `A=y` compare equal; booleans spelled one way.
fn joined(values: &[String]) -> String {
    values
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|w| match w {
            "true" => "yes",
            "false" => "no",
            w => w,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn service_value(unit: &Unit, key: &str) -> Option<String> {
    unit.get("Service")
        .and_then(|s| s.get(key))
        .map(|v| joined(v))
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}
