//! Expansion of the hierarchical config into flat sections.
//!
//! Rules (they fix the original's defects, see docs/original-behaviour.md):
//! - top-level keys that are not tables are defaults for every section;
//! - a table (or array-of-tables element) without sub-tables is a section,
//!   named by its key; arrays of strings are values, not sub-tables;
//! - a table with sub-tables is a group: its own keys are inherited by its
//!   children, to any depth, children overriding; a group is never a section;
//! - a leaf whose `sso_account_id` or `sso_role_name` (own or inherited)
//!   is a list is a **template**: one section per account and role (the
//!   cross product), named by `section_name` (default
//!   `{sso_account_id}-{sso_role_name}`);
//! - `section_name` names a leaf's section instead of its key;
//! - `{sso_account_id}` and `{sso_role_name}` in a string become the
//!   section's account and role, then `{section}` its name; no other brace
//!   is touched;
//! - the top-level table `sso-session` is reserved: `[sso-session.NAME]`
//!   defines an SSO session (the AWS config's `[sso-session NAME]`), never a
//!   section or a group;
//! - two leaves with the same name are an error naming both paths.

use std::collections::BTreeMap;
use std::ops::Range;

use toml_edit::{InlineTable, Item, Table, Value};

use super::{ConfigError, RawValue, Sourced};

/// A leaf of the config tree with every value it inherits, before typing.
#[derive(Debug, Clone)]
pub struct RawSection {
    pub name: String,
    /// Dotted path in the file, e.g. `org[0].098765432101`, for messages.
    pub path: String,
    /// Span of the section's header (or key) in the file, for messages.
    pub span: Option<Range<usize>>,
    pub values: BTreeMap<String, Sourced>,
}

/// Every section gets a copy of the values it inherits: a small file can
/// ask for a huge number of them (20,000 defaults × 20,000 sections is 400
/// million values from 378 KB). More than this is refused before it is
/// built. A value costs about 180 bytes here, so the cap keeps a refused
/// config under 64 MB of memory (measured by the benchmark's hostile-input
/// table); real configs of many accounts are far below it (200 sections of
/// 20 keys are 4,000; 4,000 sections of 50 keys reach it).
pub const MAX_EXPANDED_VALUES: usize = 200_000;

/// The count of values does not bound their size: one inherited 3.9 MB
/// `assume_role_external_id` copied into 1,000 sections is 3.9 GB (the
/// audit of issue 22 measured 9.5 s and 3.8 GB for `plan`, a kill-restart
/// loop under the unit's `MemoryMax=256M`). So the text of the expanded
/// values (keys, values, section names, after `{section}` is replaced) is
/// counted too, before it is copied, and refused beyond 16 MiB. The longest
/// value AWS accepts is 2,048 characters (a role ARN, a session policy):
/// 200 sections of 20 keys of real values stay under 2 MiB.
pub const MAX_EXPANDED_BYTES: usize = 16 * 1024 * 1024;

/// An SSO session defined in the config file (`[sso-session.NAME]`),
/// before validation.
#[derive(Debug, Clone)]
pub struct RawSsoSession {
    pub name: String,
    /// Span of its table, for messages.
    pub span: Option<Range<usize>>,
    pub values: BTreeMap<String, Sourced>,
}

/// What the file defines: the sections, and the SSO sessions they may name.
#[derive(Debug, Default)]
pub struct Expanded {
    pub sections: Vec<RawSection>,
    pub sso_sessions: Vec<RawSsoSession>,
}

/// The reserved top-level table of SSO sessions.
pub const SSO_SESSION_TABLE: &str = "sso-session";

/// The sections found so far, and what they hold.
struct Expansion {
    sections: Vec<RawSection>,
    values: usize,
    bytes: usize,
    too_large: bool,
    /// A template that makes no section (an empty list).
    error: Option<ConfigError>,
}

/// A table of the file, however it was written (`[a]`, `a = {...}`, an
/// element of `[[a]]`). Walked by reference: nothing of the file is copied
/// until a section is built.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
}

/// What a key of a table holds: a value, or tables below it.
enum Entry<'a> {
    Value(&'a Value),
    /// One table, or the elements of an array of tables (indexed in paths).
    Tables(Vec<Node<'a>>, bool),
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Table(table) => table.span(),
            Node::Inline(inline) => inline.span(),
        }
    }

    fn key_span(self, key: &str) -> Option<Range<usize>> {
        match self {
            Node::Table(table) => table.key(key).and_then(|k| k.span()),
            Node::Inline(inline) => inline.key(key).and_then(|k| k.span()),
        }
    }

    fn entries(self) -> Vec<(&'a str, Entry<'a>)> {
        match self {
            Node::Table(table) => table
                .iter()
                .filter_map(|(key, item)| {
                    let entry = match item {
                        Item::Table(table) => Entry::Tables(vec![Node::Table(table)], false),
                        Item::ArrayOfTables(array) => {
                            Entry::Tables(array.iter().map(Node::Table).collect(), true)
                        }
                        Item::Value(value) => value_entry(value),
                        Item::None => return None,
                    };
                    Some((key, entry))
                })
                .collect(),
            Node::Inline(inline) => inline
                .iter()
                .map(|(key, value)| (key, value_entry(value)))
                .collect(),
        }
    }
}

/// Inline tables, and arrays holding inline tables, are tables; arrays of
/// strings are values.
fn value_entry(value: &Value) -> Entry<'_> {
    match value {
        Value::InlineTable(inline) => Entry::Tables(vec![Node::Inline(inline)], false),
        Value::Array(array) if array.iter().any(Value::is_inline_table) => Entry::Tables(
            array
                .iter()
                .filter_map(Value::as_inline_table)
                .map(Node::Inline)
                .collect(),
            true,
        ),
        value => Entry::Value(value),
    }
}

/// The values a group defines itself, and the group above it: a section's
/// values are the chain's, the nearest winning. Inherited values are only
/// copied into the sections, once each.
struct Scope<'a> {
    parent: Option<&'a Scope<'a>>,
    values: BTreeMap<String, Sourced>,
}

pub(super) fn expand(root: &Table) -> Result<Expanded, ConfigError> {
    let mut out = Expansion {
        sections: Vec::new(),
        values: 0,
        bytes: 0,
        too_large: false,
        error: None,
    };
    let root = Node::Table(root);
    let scope = Scope {
        parent: None,
        values: own_values(root),
    };
    let sso_sessions = sso_sessions(root)?;
    visit_children(root, "", &scope, &mut out);
    if let Some(error) = out.error {
        return Err(error);
    }
    if out.too_large {
        return Err(ConfigError::plain(
            format!(
                "the config expands to more than {MAX_EXPANDED_VALUES} values or {} MiB of text (every section copies the keys it inherits: sections × keys, and the length of each value)",
                MAX_EXPANDED_BYTES >> 20
            ),
            "split it into fewer sections or fewer inherited keys, and shorten long values (no value AWS accepts is longer than 2,048 characters); a config of hundreds of accounts stays far below this",
        ));
    }
    check_unique_names(&out.sections)?;
    Ok(Expanded {
        sections: out.sections,
        sso_sessions,
    })
}

/// The `[sso-session.NAME]` tables: each a table of values, named by its key.
fn sso_sessions(root: Node) -> Result<Vec<RawSsoSession>, ConfigError> {
    let fix = "write each SSO session as a table of its own: [sso-session.NAME] with sso_start_url, sso_region (and sso_registration_scopes)";
    let mut sessions = Vec::new();
    for (key, entry) in root.entries() {
        if key != SSO_SESSION_TABLE {
            continue;
        }
        let span = root.key_span(key);
        let (tables, indexed) = match entry {
            Entry::Tables(tables, indexed) => (tables, indexed),
            Entry::Value(value) => {
                return Err(ConfigError::at(
                    value.span().or(span),
                    "sso-session is reserved for SSO sessions and cannot be a key",
                    fix,
                ));
            }
        };
        if indexed {
            return Err(ConfigError::at(
                span,
                "[[sso-session]] is not how SSO sessions are written",
                fix,
            ));
        }
        for table in tables {
            for (name, entry) in table.entries() {
                match entry {
                    Entry::Tables(children, false)
                        if children.len() == 1
                            && children[0]
                                .entries()
                                .iter()
                                .all(|(_, e)| matches!(e, Entry::Value(_))) =>
                    {
                        let session = children[0];
                        sessions.push(RawSsoSession {
                            name: name.to_string(),
                            span: session.span().or(table.key_span(name)),
                            values: own_values(session),
                        });
                    }
                    Entry::Value(value) => {
                        return Err(ConfigError::at(
                            value.span().or(table.key_span(name)),
                            format!(
                                "{} is directly in [sso-session], which holds only named SSO sessions",
                                crate::text::quoted(name)
                            ),
                            format!("name the session: [sso-session.NAME] with {name} = ..."),
                        ));
                    }
                    Entry::Tables(..) => {
                        return Err(ConfigError::at(
                            table.key_span(name),
                            format!(
                                "[sso-session.{name}] holds tables; an SSO session holds only values"
                            ),
                            fix,
                        ));
                    }
                }
            }
        }
    }
    Ok(sessions)
}

fn visit_children(node: Node, path: &str, scope: &Scope, out: &mut Expansion) {
    for (key, entry) in node.entries() {
        let Entry::Tables(tables, indexed) = entry else {
            continue;
        };
        if path.is_empty() && key == SSO_SESSION_TABLE {
            continue;
        }
        let key_path = join_path(path, key);
        for (index, table) in tables.into_iter().enumerate() {
            let (element_path, span) = if indexed {
                (format!("{key_path}[{index}]"), table.span())
            } else {
                (key_path.clone(), table.span().or(node.key_span(key)))
            };
            visit_table(key, table, &element_path, span, scope, out);
        }
    }
}

fn visit_table(
    name: &str,
    table: Node,
    path: &str,
    span: Option<Range<usize>>,
    inherited: &Scope,
    out: &mut Expansion,
) {
    if out.too_large {
        return;
    }
    let scope = Scope {
        parent: Some(inherited),
        values: own_values(table),
    };
    let is_group = table
        .entries()
        .iter()
        .any(|(_, entry)| matches!(entry, Entry::Tables(..)));
    if is_group {
        visit_children(table, path, &scope, out);
    } else {
        add_section(name, path, span, &scope, out);
    }
}

/// The account and role keys a template lists, and the key naming sections.
const ACCOUNT_KEY: &str = "sso_account_id";
const ROLE_KEY: &str = "sso_role_name";
const NAME_KEY: &str = "section_name";
/// How a template names its sections when `section_name` does not say.
const TEMPLATE_NAME: &str = "{sso_account_id}-{sso_role_name}";

/// Builds the section of a leaf (or, for a template, one per account and
/// role) from its scope chain, after counting what each would hold
/// against the caps.
fn add_section(
    name: &str,
    path: &str,
    span: Option<Range<usize>>,
    scope: &Scope,
    out: &mut Expansion,
) {
    // The nearest definition of each key.
    let mut effective: BTreeMap<&str, &Sourced> = BTreeMap::new();
    let mut level = Some(scope);
    while let Some(current) = level {
        for (key, value) in &current.values {
            effective.entry(key.as_str()).or_insert(value);
        }
        level = current.parent;
    }
    let listed = |key: &str| match effective.get(key).map(|s| &s.value) {
        Some(RawValue::StringList(list)) => Some(list.as_slice()),
        _ => None,
    };
    let text = |key: &str| match effective.get(key).map(|s| &s.value) {
        Some(RawValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let (accounts, roles) = (listed(ACCOUNT_KEY), listed(ROLE_KEY));
    if accounts.is_none() && roles.is_none() {
        let placeholders = Placeholders {
            account: text(ACCOUNT_KEY),
            role: text(ROLE_KEY),
            section: "",
        };
        let section_name = text(NAME_KEY)
            .map(|pattern| placeholders.substitute(pattern))
            .unwrap_or_else(|| name.to_string());
        build_section(
            &section_name,
            path,
            span,
            &effective,
            &placeholders,
            None,
            out,
        );
        return;
    }
    // A template: the cross product of its accounts and roles.
    for (key, list) in [(ACCOUNT_KEY, accounts), (ROLE_KEY, roles)] {
        if list.is_some_and(<[String]>::is_empty) {
            out.error = Some(ConfigError::at(
                effective[key].span().or(span.clone()),
                format!("{key} = [] in {path} lists nothing, so the template makes no section"),
                format!("list at least one value, or remove {key}"),
            ));
            return;
        }
    }
    let one = |key| text(key).map(|value| vec![value.to_string()]);
    let accounts = accounts
        .map(<[String]>::to_vec)
        .or_else(|| one(ACCOUNT_KEY));
    let roles = roles.map(<[String]>::to_vec).or_else(|| one(ROLE_KEY));
    // A template without the other key (or with one of another type)
    // makes sections all the same: validation says what is missing.
    let accounts = accounts.unwrap_or_else(|| vec![String::new()]);
    let roles = roles.unwrap_or_else(|| vec![String::new()]);
    let pattern = text(NAME_KEY).unwrap_or(TEMPLATE_NAME);
    for account in &accounts {
        for role in &roles {
            if out.too_large {
                return;
            }
            let placeholders = Placeholders {
                account: Some(account),
                role: Some(role),
                section: "",
            };
            let section_name = placeholders.substitute(pattern);
            let element_path = format!("{path}({account}/{role})");
            let chosen = [(ACCOUNT_KEY, account.as_str()), (ROLE_KEY, role.as_str())];
            build_section(
                &section_name,
                &element_path,
                span.clone(),
                &effective,
                &placeholders,
                Some(&chosen),
                out,
            );
        }
    }
}

/// What the placeholders of a section's strings become.
struct Placeholders<'a> {
    account: Option<&'a str>,
    role: Option<&'a str>,
    section: &'a str,
}

impl Placeholders<'_> {
    fn pairs(&self) -> [(&'static str, Option<&str>); 3] {
        [
            (ACCOUNT_PLACEHOLDER, self.account),
            (ROLE_PLACEHOLDER, self.role),
            (
                PLACEHOLDER,
                (!self.section.is_empty()).then_some(self.section),
            ),
        ]
    }

    /// `text` with each placeholder replaced, in one pass: what a value
    /// brings in is never scanned again (a role name holding `{section}`
    /// stays as written), so the length is known before it is built.
    fn substitute(&self, text: &str) -> String {
        let pairs = self.pairs();
        let mut out = String::with_capacity(self.substituted_len(text));
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            rest = &rest[open..];
            match pairs.iter().find_map(|(placeholder, value)| {
                Some((*placeholder, (*value)?)).filter(|(p, _)| rest.starts_with(p))
            }) {
                Some((placeholder, value)) => {
                    out.push_str(value);
                    rest = &rest[placeholder.len()..];
                }
                None => {
                    out.push('{');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The length of `text` once substituted, without building it.
    fn substituted_len(&self, text: &str) -> usize {
        self.pairs()
            .iter()
            .filter_map(|(placeholder, value)| Some((*placeholder, (*value)?)))
            .fold(text.len(), |len, (placeholder, value)| {
                let count = text.matches(placeholder).count();
                len - count * placeholder.len() + count * value.len()
            })
    }
}

/// Counts one section against the caps, then builds it: `chosen` replaces
/// the listed values of a template's keys.
fn build_section(
    name: &str,
    path: &str,
    span: Option<Range<usize>>,
    effective: &BTreeMap<&str, &Sourced>,
    placeholders: &Placeholders,
    chosen: Option<&[(&str, &str)]>,
    out: &mut Expansion,
) {
    let placeholders = Placeholders {
        section: name,
        ..*placeholders
    };
    let bytes = name.len()
        + path.len()
        + effective
            .iter()
            .map(|(key, sourced)| key.len() + value_len(&sourced.value, &placeholders))
            .sum::<usize>();
    out.values += effective.len();
    out.bytes += bytes;
    if out.values > MAX_EXPANDED_VALUES || out.bytes > MAX_EXPANDED_BYTES {
        out.too_large = true;
        return;
    }
    let values = effective
        .iter()
        .map(|(key, sourced)| {
            let value = match chosen.and_then(|c| c.iter().find(|(k, _)| k == key)) {
                Some((_, value)) => RawValue::String(value.to_string()),
                None => substitute(&sourced.value, &placeholders),
            };
            (
                key.to_string(),
                Sourced {
                    value,
                    origin: sourced.origin.clone(),
                },
            )
        })
        .collect();
    out.sections.push(RawSection {
        name: name.to_string(),
        path: path.to_string(),
        span,
        values,
    });
}

fn own_values(table: Node) -> BTreeMap<String, Sourced> {
    let mut values = BTreeMap::new();
    for (key, entry) in table.entries() {
        let Entry::Value(value) = entry else { continue };
        let raw = RawValue::for_key(key, raw_value(value));
        values.insert(key.to_string(), Sourced::file(raw, value.span()));
    }
    values
}

/// Types no key accepts are kept as `Unsupported`, so that validation reports
/// them per section with the key's name and location.
fn raw_value(value: &Value) -> RawValue {
    match value {
        Value::String(s) => RawValue::String(s.value().clone()),
        Value::Integer(i) => RawValue::Integer(*i.value()),
        Value::Boolean(b) => RawValue::Bool(*b.value()),
        Value::Float(_) => RawValue::Unsupported("a float"),
        Value::Datetime(_) => RawValue::Unsupported("a date-time"),
        Value::Array(array) => {
            let mut strings = Vec::with_capacity(array.len());
            for element in array.iter() {
                match element {
                    Value::String(s) => strings.push(s.value().clone()),
                    _ => return RawValue::Unsupported("an array of non-strings"),
                }
            }
            RawValue::StringList(strings)
        }
        Value::InlineTable(_) => RawValue::Unsupported("a table"),
    }
}

fn join_path(parent: &str, key: &str) -> String {
    let key = if key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        crate::text::quoted(key)
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

fn check_unique_names(sections: &[RawSection]) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&str, &RawSection> = BTreeMap::new();
    for section in sections {
        if let Some(first) = seen.insert(&section.name, section) {
            return Err(ConfigError::at(
                section.span.clone(),
                format!(
                    "section name {} is defined twice: at {} and at {}",
                    crate::text::quoted(&section.name),
                    first.path,
                    section.path
                ),
                "section names become profile names and must be unique; rename or remove one of them",
            ));
        }
    }
    Ok(())
}

const PLACEHOLDER: &str = "{section}";
const ACCOUNT_PLACEHOLDER: &str = "{sso_account_id}";
const ROLE_PLACEHOLDER: &str = "{sso_role_name}";

/// The length of a value once its placeholders are replaced (the text of
/// a secret counts as written; no placeholder is replaced in it).
fn value_len(value: &RawValue, placeholders: &Placeholders) -> usize {
    match value {
        RawValue::String(s) => placeholders.substituted_len(s),
        RawValue::StringList(list) => list.iter().map(|s| placeholders.substituted_len(s)).sum(),
        RawValue::Secret(secret) => {
            use secrecy::ExposeSecret;
            secret.text.as_ref().map_or(0, |t| t.expose_secret().len())
        }
        RawValue::Integer(_) | RawValue::Bool(_) | RawValue::Unsupported(_) => 8,
    }
}

/// Replaces the literal placeholders and nothing else, so that JSON
/// policies and other braces survive (the original used `str.format` and
/// crashed).
fn substitute(value: &RawValue, placeholders: &Placeholders) -> RawValue {
    match value {
        RawValue::String(s) => RawValue::String(placeholders.substitute(s)),
        RawValue::StringList(list) => {
            RawValue::StringList(list.iter().map(|s| placeholders.substitute(s)).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(toml: &str) -> Vec<RawSection> {
        let doc = toml_edit::Document::parse(toml).unwrap();
        expand(doc.as_table()).unwrap().sections
    }

    fn text<'a>(section: &'a RawSection, key: &str) -> &'a str {
        match &section.values[key].value {
            RawValue::String(s) => s,
            other => panic!("{key} is {other:?}"),
        }
    }

    #[test]
    fn plain_tables_are_sections() {
        let s = sections(
            "region = \"eu-west-1\"\n[123457890123]\nprofile_name = \"a\"\n[098765432101]\n",
        );
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["123457890123", "098765432101"]);
        assert_eq!(text(&s[1], "region"), "eu-west-1");
    }

    #[test]
    fn array_of_tables_groups_inherit_and_are_not_sections() {
        let s = sections(
            r#"
[[org]]
assume_role_arn = "arn:aws:iam::{section}:role/Other/Role"
credentials_section = "123457890123"

[[org.098765432101]]
[[org.567890123456]]
credentials_section = "override"
"#,
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "098765432101");
        assert_eq!(s[0].path, "org[0].098765432101[0]");
        assert_eq!(
            text(&s[0], "assume_role_arn"),
            "arn:aws:iam::098765432101:role/Other/Role"
        );
        assert_eq!(text(&s[0], "credentials_section"), "123457890123");
        assert_eq!(text(&s[1], "credentials_section"), "override");
    }

    #[test]
    fn plain_nested_tables_work_to_any_depth() {
        let s = sections(
            "[org]\nregion = \"a\"\n[org.team]\nmfa_process = \"x\"\n[org.team.leaf]\nregion = \"b\"\n[org.other]\n",
        );
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["leaf", "other"]);
        assert_eq!(text(&s[0], "region"), "b");
        assert_eq!(text(&s[0], "mfa_process"), "x");
        assert_eq!(text(&s[1], "region"), "a");
        assert!(!s[1].values.contains_key("mfa_process"));
    }

    #[test]
    fn string_arrays_are_values_not_subtables() {
        let s = sections("[a]\nassume_role_policy_arns = [\"arn:aws:iam::{section}:policy/x\"]\n");
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].values["assume_role_policy_arns"].value,
            RawValue::StringList(vec!["arn:aws:iam::a:policy/x".into()])
        );
    }

    #[test]
    fn only_the_section_placeholder_is_replaced() {
        let s = sections("[a]\nassume_role_policy = '{\"Version\": \"{section}\", \"x\": {}}'\n");
        assert_eq!(
            text(&s[0], "assume_role_policy"),
            "{\"Version\": \"a\", \"x\": {}}"
        );
    }

    #[test]
    fn duplicate_leaf_names_are_an_error_naming_both_paths() {
        let doc = toml_edit::Document::parse("[a.x]\n[b.x]\n").unwrap();
        let err = expand(doc.as_table()).err().unwrap();
        let message = err.to_string();
        assert!(
            message.contains("a.x") && message.contains("b.x"),
            "{message}"
        );
    }

    #[test]
    fn unsupported_types_are_kept_for_validation() {
        let s = sections("[a]\nbackups = 1.5\n");
        assert_eq!(
            s[0].values["backups"].value,
            RawValue::Unsupported("a float")
        );
    }
}
