//! Expansion of the hierarchical config into flat sections.
//!
//! Rules (they fix the original's defects, see docs/original-behaviour.md):
//! - top-level keys that are not tables are defaults for every section;
//! - a table (or array-of-tables element) without sub-tables is a section,
//!   named by its key; arrays of strings are values, not sub-tables;
//! - a table with sub-tables is a group: its own keys are inherited by its
//!   children, to any depth, children overriding; a group is never a section;
//! - `{section}` in a string becomes the leaf's name; no other brace is touched;
//! - two leaves with the same name are an error naming both paths.

use std::collections::BTreeMap;
use std::ops::Range;

use toml_edit::{Item, Table, Value};

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

/// The sections found so far, and the values they hold.
struct Expansion {
    sections: Vec<RawSection>,
    values: usize,
    too_large: bool,
}

pub(super) fn expand(root: &Table) -> Result<Vec<RawSection>, ConfigError> {
    let mut out = Expansion {
        sections: Vec::new(),
        values: 0,
        too_large: false,
    };
    let mut defaults = BTreeMap::new();
    collect_own_values(root, &mut defaults);
    for (key, item) in root.iter() {
        visit_child(key, item, root, "", &defaults, &mut out);
    }
    if out.too_large {
        return Err(ConfigError::plain(
            format!(
                "the config expands to more than {MAX_EXPANDED_VALUES} values (every section copies the keys it inherits: sections × keys)"
            ),
            "split it into fewer sections or fewer inherited keys; a config of hundreds of accounts stays far below this",
        ));
    }
    let mut sections = out.sections;
    check_unique_names(&sections)?;
    for section in &mut sections {
        for sourced in section.values.values_mut() {
            sourced.value = substitute_section(&sourced.value, &section.name);
        }
    }
    Ok(sections)
}

fn visit_child(
    key: &str,
    item: &Item,
    parent: &Table,
    parent_path: &str,
    inherited: &BTreeMap<String, Sourced>,
    out: &mut Expansion,
) {
    let path = join_path(parent_path, key);
    let key_span = parent.key(key).and_then(|k| k.span());
    match item {
        Item::Table(table) => visit_table(
            key,
            table.clone(),
            &path,
            table.span().or(key_span),
            inherited,
            out,
        ),
        Item::Value(Value::InlineTable(inline)) => {
            let table = inline.clone().into_table();
            visit_table(
                key,
                table,
                &path,
                inline.span().or(key_span),
                inherited,
                out,
            )
        }
        Item::ArrayOfTables(array) => {
            for (index, table) in array.iter().enumerate() {
                let element_path = format!("{path}[{index}]");
                visit_table(
                    key,
                    table.clone(),
                    &element_path,
                    table.span(),
                    inherited,
                    out,
                );
            }
        }
        Item::Value(Value::Array(array)) if array.iter().any(|v| v.is_inline_table()) => {
            for (index, value) in array.iter().enumerate() {
                if let Value::InlineTable(inline) = value {
                    let element_path = format!("{path}[{index}]");
                    let table = inline.clone().into_table();
                    visit_table(key, table, &element_path, inline.span(), inherited, out);
                }
            }
        }
        _ => {}
    }
}

fn visit_table(
    name: &str,
    table: Table,
    path: &str,
    span: Option<Range<usize>>,
    inherited: &BTreeMap<String, Sourced>,
    out: &mut Expansion,
) {
    if out.too_large || out.values + inherited.len() + table.len() > MAX_EXPANDED_VALUES {
        out.too_large = true;
        return;
    }
    let mut values = inherited.clone();
    collect_own_values(&table, &mut values);
    let children: Vec<(&str, &Item)> = table.iter().filter(|(_, item)| is_subtable(item)).collect();
    if children.is_empty() {
        out.values += values.len();
        out.sections.push(RawSection {
            name: name.to_string(),
            path: path.to_string(),
            span,
            values,
        });
        return;
    }
    for (key, item) in children {
        visit_child(key, item, &table, path, &values, out);
    }
}

/// Sub-tables make a table a group; arrays of inline tables count too.
fn is_subtable(item: &Item) -> bool {
    match item {
        Item::Table(_) | Item::ArrayOfTables(_) => true,
        Item::Value(Value::InlineTable(_)) => true,
        Item::Value(Value::Array(array)) => array.iter().any(|v| v.is_inline_table()),
        _ => false,
    }
}

fn collect_own_values(table: &Table, values: &mut BTreeMap<String, Sourced>) {
    for (key, item) in table.iter() {
        if is_subtable(item) {
            continue;
        }
        let Item::Value(value) = item else { continue };
        let raw = RawValue::for_key(key, raw_value(value));
        values.insert(key.to_string(), Sourced::file(raw, value.span()));
    }
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
        format!("{key:?}")
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
                    "section name {:?} is defined twice: at {} and at {}",
                    section.name, first.path, section.path
                ),
                "section names become profile names and must be unique; rename or remove one of them",
            ));
        }
    }
    Ok(())
}

/// Replaces the literal `{section}` and nothing else, so that JSON policies
/// and other braces survive (the original used `str.format` and crashed).
fn substitute_section(value: &RawValue, section: &str) -> RawValue {
    const PLACEHOLDER: &str = "{section}";
    match value {
        RawValue::String(s) => RawValue::String(s.replace(PLACEHOLDER, section)),
        RawValue::StringList(list) => RawValue::StringList(
            list.iter()
                .map(|s| s.replace(PLACEHOLDER, section))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(toml: &str) -> Vec<RawSection> {
        let doc = toml_edit::Document::parse(toml).unwrap();
        expand(doc.as_table()).unwrap()
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
