//! Loading, expanding and validating `config.toml`.
//!
//! The file is parsed with `toml_edit`, which keeps spans, so that every
//! error names the file, line and column of the offending value. Expansion
//! turns groups into flat sections ([`expand`]); validation turns each
//! section's raw values into typed [`Settings`] ([`settings`]). A section
//! with a bad value is reported as invalid on its own; the others still work.

mod error;
mod expand;
mod keys;
mod settings;
mod sso;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use expand::{RawSection, RawSsoSession};
pub use keys::{DEFAULT_BACKUPS, KEYS, KeyKind, KeySpec, SSO_SESSION_KEYS, holds_secret};
pub use settings::{
    CodeSource, EndpointSettings, LongTermKeys, MfaSource, Output, PasswordSpec, RoleSettings,
    SSO_ROLE_LIFETIME, Settings, Source, SsoSource,
};

/// Config files larger than this are refused before parsing: a real config
/// is a few kilobytes, and a huge file is almost surely the wrong path.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// A config value before typing.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    String(String),
    Integer(i64),
    Bool(bool),
    StringList(Vec<String>),
    /// Any value under a secret key (`secret_access_key`, whatever its
    /// type): `Debug`, `display` and `config show` never show it, and a
    /// value of the wrong type keeps only its type's name, for the error.
    Secret(SecretText),
    /// A TOML type that no key accepts (float, date-time, table in a value
    /// position); carries a description for the error message.
    Unsupported(&'static str),
}

impl RawValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            RawValue::String(_) => "a string",
            RawValue::Integer(_) => "an integer",
            RawValue::Bool(_) => "a boolean",
            RawValue::StringList(_) => "an array of strings",
            RawValue::Secret(secret) => secret.found,
            RawValue::Unsupported(what) => what,
        }
    }

    /// The value as `config get` prints it.
    pub fn display(&self) -> String {
        match self {
            RawValue::String(s) => s.clone(),
            RawValue::Integer(i) => i.to_string(),
            RawValue::Bool(b) => b.to_string(),
            RawValue::StringList(list) => list.join(","),
            RawValue::Secret(_) => "********".to_string(),
            RawValue::Unsupported(what) => format!("<{what}>"),
        }
    }

    /// Wraps the value of a secret key, whatever its type, so that it
    /// cannot leak through `Debug`, `config show` or an error message (a
    /// secret written as `["..."]` is still a secret); other values pass
    /// through.
    pub fn for_key(key: &str, value: RawValue) -> RawValue {
        if !keys::holds_secret(key) {
            return value;
        }
        let found = value.type_name();
        let text = match value {
            RawValue::String(s) => Some(secrecy::SecretString::from(s)),
            RawValue::Secret(secret) => return RawValue::Secret(secret),
            // Dropped here (the allocator zeroes what it frees).
            _ => None,
        };
        RawValue::Secret(SecretText { text, found })
    }
}

/// The value of a secret key: the string, or, for a value of another type,
/// only the name of that type. Compared by value (for tests), never printed.
#[derive(Clone)]
pub struct SecretText {
    /// The secret, when it was a string.
    pub text: Option<secrecy::SecretString>,
    /// The TOML type it was written as ("a string", "an array of strings").
    pub found: &'static str,
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretText({}: ********)", self.found)
    }
}

impl PartialEq for SecretText {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        self.found == other.found
            && self.text.as_ref().map(|t| t.expose_secret())
                == other.text.as_ref().map(|t| t.expose_secret())
    }
}

/// Where a value came from: a span in the config file, or a command-line flag.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File(Option<Range<usize>>),
    Flag,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sourced {
    pub value: RawValue,
    pub origin: Origin,
}

impl Sourced {
    pub fn file(value: RawValue, span: Option<Range<usize>>) -> Self {
        Sourced {
            value,
            origin: Origin::File(span),
        }
    }

    pub fn flag(value: RawValue) -> Self {
        Sourced {
            value,
            origin: Origin::Flag,
        }
    }

    pub fn span(&self) -> Option<Range<usize>> {
        match &self.origin {
            Origin::File(span) => span.clone(),
            Origin::Flag => None,
        }
    }
}

/// One expanded section: its raw values (for `config get/find`) and its
/// validated settings or the reasons it is invalid.
#[derive(Debug)]
pub struct Section {
    pub name: String,
    pub path: String,
    pub values: BTreeMap<String, Sourced>,
    pub settings: Result<Settings, Vec<ConfigError>>,
}

/// The loaded configuration.
#[derive(Debug)]
pub struct Config {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    pub sections: Vec<Section>,
    /// Problems worth a log line that do not stop anything (e.g. a secret in
    /// a group-readable file, the legacy path being used).
    pub warnings: Vec<String>,
}

impl Config {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Sections whose settings are valid.
    pub fn valid_sections(&self) -> impl Iterator<Item = (&Section, &Settings)> {
        self.sections
            .iter()
            .filter_map(|s| s.settings.as_ref().ok().map(|settings| (s, settings)))
    }

    /// Most AssumeRole calls at once: the largest any section allows.
    pub fn sts_concurrency(&self) -> usize {
        self.valid_sections()
            .map(|(_, s)| s.sts_concurrency)
            .max()
            .unwrap_or(32)
    }

    /// The credentials endpoint, when it is on: daemon-wide, so every
    /// section must agree (checked when the config is loaded).
    pub fn endpoint(&self) -> Option<&EndpointSettings> {
        self.valid_sections().find_map(|(_, s)| s.endpoint.as_ref())
    }

    /// How many backups the credentials file keeps: the largest any section asks for.
    pub fn backups(&self) -> usize {
        self.valid_sections()
            .map(|(_, s)| s.backups)
            .max()
            .unwrap_or(keys::DEFAULT_BACKUPS)
    }
}

/// Environment lookup, passed in so that loading is testable without
/// touching the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What the command line says about the config.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// `--config`: an explicit path must exist.
    pub path: Option<PathBuf>,
    /// `--config-section`: restrict to these sections.
    pub selected: Vec<String>,
    /// Per-section override flags, as config keys.
    pub overrides: Vec<(&'static str, RawValue)>,
}

/// Which file to read and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigLocation {
    pub path: PathBuf,
    /// Given with `--config`: missing is an error.
    pub explicit: bool,
    /// The original's `~/.config/aws-credential-process/config.toml`.
    pub legacy: bool,
}

/// `--config`, else `$XDG_CONFIG_HOME/aws-session-daemon/config.toml`, else
/// the original's `aws-credential-process/config.toml` when only that exists.
pub fn locate(explicit: Option<&Path>, env: EnvLookup) -> Option<ConfigLocation> {
    if let Some(path) = explicit {
        return Some(ConfigLocation {
            path: path.to_path_buf(),
            explicit: true,
            legacy: false,
        });
    }
    let config_home = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".config")))?;
    let ours = config_home.join("aws-session-daemon/config.toml");
    if ours.exists() {
        return Some(ConfigLocation {
            path: ours,
            explicit: false,
            legacy: false,
        });
    }
    let legacy = config_home.join("aws-credential-process/config.toml");
    if legacy.exists() {
        return Some(ConfigLocation {
            path: legacy,
            explicit: false,
            legacy: true,
        });
    }
    Some(ConfigLocation {
        path: ours,
        explicit: false,
        legacy: false,
    })
}

/// Reads, expands and validates the config.
pub fn load(options: &LoadOptions, env: EnvLookup) -> Result<Config, ConfigError> {
    let location = locate(options.path.as_deref(), env);
    let mut warnings = Vec::new();
    let mut file = None;
    let mut raw_sections = Vec::new();
    let mut sso_sessions = Vec::new();
    if let Some(location) = location
        && let Some(text) = read_config_text(&location)?
    {
        if location.legacy {
            warnings.push(format!(
                    "using the original's config file {} (move it to aws-session-daemon/config.toml to silence this)",
                    location.path.display()
                ));
        }
        let expanded = parse_config(&text).map_err(|e| e.locate(&location.path, &text))?;
        raw_sections = expanded.sections;
        sso_sessions = expanded.sso_sessions;
        if has_secret(&raw_sections)
            && let Some(warning) = permission_warning(&location.path)
        {
            warnings.push(warning);
        }
        file = Some((location.path, text));
    }

    if raw_sections.is_empty() {
        if options.overrides.is_empty() {
            let hint = match &file {
                Some((path, _)) => format!("add a section to {}", path.display()),
                None => "create ~/.config/aws-session-daemon/config.toml (see examples/config.toml) or pass --mfa-serial-number, --mfa-oath-slot and --profile-name".to_string(),
            };
            return Err(ConfigError::plain("no sections are configured", hint));
        }
        raw_sections.push(section_from_flags(&options.overrides));
    }

    let raw_sections = select(raw_sections, &options.selected)?;
    let raw_sections = apply_overrides(
        raw_sections,
        &options.overrides,
        !options.selected.is_empty(),
    )?;

    let (path, text) = match &file {
        Some((path, text)) => (Some(path.as_path()), text.as_str()),
        None => (None, ""),
    };
    let sso_sessions = sso::resolve(&raw_sections, &sso_sessions, env);
    let sections = raw_sections
        .into_iter()
        .map(|raw| {
            let settings = settings::validate(&raw, path, env, &sso_sessions).map_err(|errors| {
                errors
                    .into_iter()
                    .map(|e| match path {
                        Some(p) => e.locate(p, text),
                        None => e,
                    })
                    .collect()
            });
            Section {
                name: raw.name,
                path: raw.path,
                values: raw.values,
                settings,
            }
        })
        .collect::<Vec<_>>();
    warnings.extend(plain_http_warnings(&sections));
    check_one_endpoint(&sections)?;
    Ok(Config {
        file: file.map(|(path, _)| path),
        sections,
        warnings,
    })
}

/// The credentials endpoint serves every section from one daemon: two
/// sections asking for different ones is a mistake, reported with both.
fn check_one_endpoint(sections: &[Section]) -> Result<(), ConfigError> {
    let mut first: Option<(&str, &EndpointSettings)> = None;
    for section in sections {
        let Some(endpoint) = section
            .settings
            .as_ref()
            .ok()
            .and_then(|s| s.endpoint.as_ref())
        else {
            continue;
        };
        match first {
            None => first = Some((&section.name, endpoint)),
            Some((name, seen)) if seen != endpoint => {
                return Err(ConfigError::plain(
                    format!(
                        "sections [{}] and [{}] ask for different credentials endpoints ({} and {}); one daemon serves one",
                        crate::text::printable(name),
                        crate::text::printable(&section.name),
                        seen.address,
                        endpoint.address
                    ),
                    "set endpoint (and endpoint_section_tokens, endpoint_socket) once, at the top of the config",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// An STS endpoint over plain HTTP to another host carries the signed
/// requests and the session credentials in clear text: worth a warning
/// (on 127.0.0.1, for tests and local emulators, it is not).
fn plain_http_warnings(sections: &[Section]) -> Vec<String> {
    let mut endpoints: Vec<(&str, Vec<&str>)> = Vec::new();
    for section in sections {
        let Ok(settings) = &section.settings else {
            continue;
        };
        let Some(url) = &settings.sts_endpoint else {
            continue;
        };
        let Some(rest) = url.strip_prefix("http://") else {
            continue;
        };
        let authority = rest.split('/').next().unwrap_or("");
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => authority
                .rsplit_once(':')
                .map_or(authority, |(host, _)| host),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            continue;
        }
        match endpoints.iter_mut().find(|(u, _)| *u == url.as_str()) {
            Some((_, names)) => names.push(&section.name),
            None => endpoints.push((url, vec![&section.name])),
        }
    }
    endpoints
        .into_iter()
        .map(|(url, names)| {
            format!(
                "the STS endpoint {url} (sections {}) is plain HTTP to another host: requests signed with your keys and the session credentials STS returns would cross the network unencrypted; use https:// (check sts_endpoint, AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL)",
                names.join(", ")
            )
        })
        .collect()
}

/// Parses TOML text and expands it into sections; errors carry spans, not
/// yet lines.
pub fn parse_and_expand(text: &str) -> Result<Vec<RawSection>, ConfigError> {
    parse_config(text).map(|expanded| expanded.sections)
}

/// Parses TOML text into its sections and the SSO sessions it defines.
fn parse_config(text: &str) -> Result<expand::Expanded, ConfigError> {
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        ConfigError::at(
            e.span(),
            format!("TOML syntax error: {}", e.message().trim_end()),
            "fix the syntax at that position (strings need quotes, tables are written [name])",
        )
    })?;
    expand::expand(doc.as_table())
}

fn read_config_text(location: &ConfigLocation) -> Result<Option<String>, ConfigError> {
    let path = &location.path;
    // Regular files only (a FIFO would hang the reader, /dev/zero fill its
    // memory), opened without blocking, at most 4 MiB read.
    let rules = crate::private_file::ReadRules {
        limit: MAX_CONFIG_BYTES,
        follow: true,
        owned: false,
    };
    let read = crate::private_file::read(path, rules).map_err(|e| {
        use crate::private_file::PrivateFileError as E;
        match e {
            E::NotAFile {
                what: "a directory",
                ..
            } => ConfigError::plain(
                format!("config path {} is a directory", path.display()),
                "point --config at the config.toml file inside it",
            ),
            E::NotAFile { what, .. } => ConfigError::plain(
                format!(
                    "config path {} is {what}, not a regular file",
                    path.display()
                ),
                "point --config at the config.toml file",
            ),
            E::TooLarge { size, .. } => ConfigError::plain(
                format!(
                    "config file {} is {:.1} MB or more; a config file is at most 4 MiB",
                    path.display(),
                    size as f64 / 1e6
                ),
                "check that --config points at config.toml",
            ),
            other => ConfigError::plain(
                format!("cannot read config file {}: {other}", path.display()),
                "check the file's permissions",
            ),
        }
    })?;
    let bytes = match read {
        Some(file) => file.bytes.to_vec(),
        None if !location.explicit => return Ok(None),
        None => {
            return Err(ConfigError::plain(
                format!(
                    "cannot read config file {}: it does not exist",
                    path.display()
                ),
                "check the --config path",
            ));
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(
            text.strip_prefix('\u{feff}')
                .map(str::to_string)
                .unwrap_or(text),
        )),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            Err(ConfigError::plain(
                format!(
                    "config file {} line {line}: not UTF-8 text (is it a binary file?)",
                    path.display()
                ),
                "save the config as UTF-8 TOML",
            ))
        }
    }
}

fn has_secret(sections: &[RawSection]) -> bool {
    sections
        .iter()
        .any(|s| s.values.iter().any(|(key, _)| keys::holds_secret(key)))
}

fn permission_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "config file {} holds a secret (secret_access_key or another secret key) and is readable by other users (mode {:o}); run: chmod 600 {} (or move the keys to a credentials_section)",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

/// With no config file, the flags alone define one section, named after
/// the profile it writes.
fn section_from_flags(overrides: &[(&'static str, RawValue)]) -> RawSection {
    let name = overrides
        .iter()
        .find_map(|(key, value)| match (key, value) {
            (&"profile_name", RawValue::String(s)) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "default-session".to_string());
    RawSection {
        path: format!("(command line) {name}"),
        name,
        span: None,
        values: BTreeMap::new(),
    }
}

fn select(sections: Vec<RawSection>, selected: &[String]) -> Result<Vec<RawSection>, ConfigError> {
    if selected.is_empty() {
        return Ok(sections);
    }
    for name in selected {
        if !sections.iter().any(|s| &s.name == name) {
            let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
            let hint = match keys::closest(name, names.iter().copied()) {
                Some(close) => format!(
                    "did you mean --config-section={close}? Known sections: {}",
                    names.join(", ")
                ),
                None => format!("known sections: {}", names.join(", ")),
            };
            return Err(ConfigError::plain(
                format!("no config section named {name:?}"),
                hint,
            ));
        }
    }
    Ok(sections
        .into_iter()
        .filter(|s| selected.contains(&s.name))
        .collect())
}

fn apply_overrides(
    mut sections: Vec<RawSection>,
    overrides: &[(&'static str, RawValue)],
    explicitly_selected: bool,
) -> Result<Vec<RawSection>, ConfigError> {
    let sets_profile = overrides.iter().any(|(k, _)| *k == "profile_name");
    if sets_profile && sections.len() > 1 {
        return Err(ConfigError::plain(
            format!(
                "--profile-name would give {} sections the same profile",
                sections.len()
            ),
            if explicitly_selected {
                "select a single section with --config-section".to_string()
            } else {
                "add --config-section=NAME to choose the section it applies to".to_string()
            },
        ));
    }
    for section in &mut sections {
        for (key, value) in overrides {
            section.values.insert(
                key.to_string(),
                Sourced::flag(RawValue::for_key(key, value.clone())),
            );
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests;
