//! Random credentials files for the property and consumer tests: every kind
//! of line botocore and the SDKs distinguish, LF, CRLF or mixed line endings,
//! with or without a final newline or a byte order mark.

use proptest::prelude::*;
use proptest::sample::select;

pub fn line() -> impl Strategy<Value = String> {
    let section = select(vec!["a", "b", "prod", "DEFAULT", "p-1", " a ", "A"]);
    let key = select(vec![
        "x",
        "k",
        "aws_session_token",
        "AWS_Session_Token",
        "aws_security_token",
        "aws_session_token_x",
        "region",
    ]);
    let separator = select(vec!["=", " = ", ":", " : ", "\t=\t", "= ", " =", ": "]);
    let indent = select(vec!["  ", "\t", "    ", " "]);
    // `\0` stands for a line break inside one generated element.
    let continued = (
        select(vec![
            "aws_session_token",
            "AWS_Session_Token",
            "region",
            "x",
        ]),
        separator.clone(),
        "[a-zA-Z0-9/+=]{0,6}",
        prop::collection::vec(
            (
                indent.clone(),
                "[a-z=:# ]{1,8}",
                select(vec!["", "", "\0", "\0#c", "\0  #c"]),
            ),
            1..3,
        ),
    )
        .prop_map(|(k, s, v, more)| {
            let mut line = format!("{k}{s}{v}");
            for (indent, text, between) in more {
                line.push_str(&format!("{between}\0{indent}{text}"));
            }
            line
        });
    prop_oneof![
        5 => continued,
        3 => section.clone().prop_map(|s| format!("[{s}]")),
        1 => section.clone().prop_map(|s| format!("[{s}] # note")),
        7 => (key, separator, "[a-zA-Z0-9/+=#; ]{0,10}")
            .prop_map(|(k, s, v)| format!("{k}{s}{v}")),
        2 => (select(vec!["", "  ", "\t"]), select(vec!["#", ";"]), "[a-z =]{0,8}")
            .prop_map(|(i, c, t)| format!("{i}{c}{t}")),
        2 => select(vec!["", "", "  ", "\t"]).prop_map(String::from),
        3 => (indent.clone(), "[a-z=: ]{1,8}").prop_map(|(i, t)| format!("{i}{t}")),
        1 => Just("junk without separator".to_string()),
        1 => (indent, section).prop_map(|(i, s)| format!("{i}[{s}]")),
    ]
}

/// Line endings: all LF, all CRLF, or (rarely) mixed line by line.
pub fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((line(), any::<bool>()), 0..24),
        select(vec!["\n", "\r\n", "\n", "\r\n", "mixed"]),
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(lines, style, final_newline, bom)| {
            let count = lines.len();
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            for (index, (line, crlf)) in lines.into_iter().enumerate() {
                let newline = match style {
                    "mixed" if crlf => "\r\n",
                    "mixed" => "\n",
                    style => style,
                };
                text.push_str(&line.replace('\0', newline));
                if index + 1 < count || final_newline {
                    text.push_str(newline);
                }
            }
            text
        })
}

/// Random files both readers accept before the edit: unique sections and
/// keys, `=` separators, values with continuation lines, comments, blank
/// lines; LF or CRLF, rarely a byte order mark (which both readers refuse
/// until the editor drops it).
#[allow(dead_code)]
pub fn readable_document() -> impl Strategy<Value = String> {
    let key = select(vec![
        "aws_access_key_id",
        "AWS_Secret_Access_Key",
        "aws_session_token",
        "aws_security_token",
        "x_security_token_expires",
        "region",
        "output",
        "mfa_serial",
    ]);
    let separator = select(vec!["=", " = ", "\t=\t", "= ", " ="]);
    let entry = prop_oneof![
        6 => (key.clone(), separator.clone(), "[a-zA-Z0-9/+=.:-]{0,12}")
            .prop_map(|(k, s, v)| (Some(k.to_lowercase()), format!("{k}{s}{v}"))),
        2 => (key, separator, "[a-z0-9]{0,4}", select(vec!["  ", "\t", "    "]), "[a-z0-9=./]{1,8}")
            .prop_map(|(k, s, v, i, t)| (Some(k.to_lowercase()), format!("{k}{s}{v}\0{i}{t}"))),
        2 => (select(vec!["#", ";", "# ", "; "]), "[a-z =:]{0,10}")
            .prop_map(|(c, t)| (None, format!("{c}{t}"))),
        2 => Just((None, String::new())),
    ];
    let section = (
        select(vec![
            "prod", "fresh", "a", "b", "default", "DEFAULT", "team-1", "x.y", "p@1",
        ]),
        prop::collection::vec(entry, 0..6),
    );
    (
        prop::collection::vec(section, 0..5),
        select(vec!["\n", "\r\n"]),
        any::<bool>(),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(sections, newline, final_newline, bom)| {
            let mut seen_sections = std::collections::HashSet::new();
            let mut lines = Vec::new();
            for (name, entries) in sections {
                if !seen_sections.insert(name) {
                    continue;
                }
                lines.push(format!("[{name}]"));
                let mut seen_keys = std::collections::HashSet::new();
                for (key, text) in entries {
                    if key.is_none_or(|k| seen_keys.insert(k)) {
                        lines.push(text);
                    }
                }
            }
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            text.push_str(&lines.join("\0").replace('\0', newline));
            if final_newline && !lines.is_empty() {
                text.push_str(newline);
            }
            text
        })
}
