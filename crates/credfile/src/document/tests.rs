use super::*;

fn set(section: &str, key: &str, value: &str) -> Edit {
    Edit::set(section, key, SecretString::from(value))
}

fn edited(text: &str, edits: &[Edit]) -> String {
    let mut doc = Document::parse(text);
    for edit in edits {
        doc.apply(edit).unwrap_or_else(|e| panic!("{edit:?}: {e}"));
    }
    doc.render()
}

fn refused(text: &str, edit: &Edit) -> CredentialsError {
    let mut doc = Document::parse(text);
    let err = doc.apply(edit).expect_err("the edit must be refused");
    assert_eq!(
        doc.render(),
        text,
        "a refused edit leaves the document as it was"
    );
    err
}

#[test]
fn render_gives_back_the_exact_bytes() {
    for text in [
        "",
        "\n",
        "[a]\r\nx = 1\r\n",
        "\u{feff}[a]\nx=1",
        "junk\n[a]\n  x : 1\n\ty\n;c\n\r\r\n",
        "[ a ]\n[a]\n[a]\nx = 1\nx = 2\n",
    ] {
        assert_eq!(Document::parse(text).render(), text);
    }
}

#[test]
fn get_reads_like_botocore() {
    let doc = Document::parse(
        "[default]\nAWS_Access_Key_ID=AKIA1\n[Prod]\naws_session_token : tok # not a comment\n\
         aws_session_token_x = other\nmulti =\n  a = 1\n  b = 2\n",
    );
    assert_eq!(
        doc.get("default", "aws_access_key_id").unwrap(),
        Some("AKIA1")
    );
    assert_eq!(
        doc.get("default", "AWS_ACCESS_KEY_ID").unwrap(),
        Some("AKIA1")
    );
    assert_eq!(
        doc.get("prod", "aws_session_token").unwrap(),
        None,
        "sections are case-sensitive"
    );
    assert_eq!(
        doc.get("Prod", "aws_session_token").unwrap(),
        Some("tok # not a comment")
    );
    assert_eq!(doc.get("Prod", "multi").unwrap(), Some("\na = 1\nb = 2"));
    assert_eq!(doc.get("missing", "x").unwrap(), None);
    assert_eq!(doc.section_names(), ["default", "Prod"]);
    assert!(doc.has_section("Prod") && !doc.has_section("prod"));
    assert_eq!(
        doc.keys("Prod"),
        ["aws_session_token", "aws_session_token_x", "multi"]
    );
}

#[test]
fn duplicates_are_errors_for_get_and_check() {
    let doc = Document::parse("[a]\nx = 1\n\n[b]\ny = 1\nY = 2\n[a]\nz = 1\n");
    let err = doc.get("a", "x").unwrap_err();
    assert!(err.line() == Some(7) && err.kind() == &ErrorKind::DuplicateSection { first_line: 1 });
    assert!(!err.is_transient());
    let err = doc.get("b", "y").unwrap_err();
    assert!(
        err.line() == Some(6)
            && matches!(err.kind(), ErrorKind::DuplicateKey { first_line: 5, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("line 6: key `y` appears again in section [b] (first at line 5)")
    );
    assert!(doc.check_section("b").is_err());
    assert!(doc.check_section("a").is_err());
    assert!(doc.check_section("c").is_ok());
}

#[test]
fn default_may_repeat_and_is_inherited() {
    let doc = Document::parse(
        "[DEFAULT]\nregion = eu\n[p]\nx = 1\n[DEFAULT]\naws_security_token = old\n",
    );
    assert_eq!(doc.get("DEFAULT", "region").unwrap(), Some("eu"));
    assert_eq!(doc.get("p", "aws_security_token").unwrap(), None);
    assert_eq!(
        doc.get_inherited("p", "aws_security_token").unwrap(),
        Some("old")
    );
    assert_eq!(doc.get_inherited("p", "x").unwrap(), Some("1"));
    let doc = Document::parse("[DEFAULT]\nr = 1\n[DEFAULT]\nr = 2\n");
    assert!(doc.get("DEFAULT", "r").is_err());
}

#[test]
fn set_rewrites_only_the_key_line() {
    assert_eq!(
        edited(
            "# top\n[p]\nAWS_Session_Token:old\nregion=eu # keep\n",
            &[set("p", "aws_session_token", "new")]
        ),
        "# top\n[p]\naws_session_token = new\nregion=eu # keep\n"
    );
}

#[test]
fn set_with_the_same_value_changes_nothing() {
    for text in [
        "[p]\naws_session_token=tok\n",
        "[p]\nAWS_SESSION_TOKEN   =   tok\r\n",
        "\u{feff}[p]\naws_session_token = tok",
    ] {
        assert_eq!(edited(text, &[set("p", "aws_session_token", "tok")]), text);
    }
    // Not a form both readers read as `tok`: rewritten.
    assert_eq!(
        edited(
            "[p]\naws_session_token: tok\n",
            &[set("p", "aws_session_token", "tok")]
        ),
        "[p]\naws_session_token = tok\n"
    );
}

#[test]
fn whole_keys_match_not_prefixes() {
    assert_eq!(
        edited(
            "[p]\naws_session_token_expiry = keep\naws_session_tokenx=keep\n",
            &[set("p", "aws_session_token", "new")]
        ),
        "[p]\naws_session_token_expiry = keep\naws_session_tokenx=keep\naws_session_token = new\n"
    );
}

#[test]
fn set_drops_continuation_lines_of_the_old_value() {
    assert_eq!(
        edited(
            "[p]\naws_session_token = part1\n  part2\n# comment stays\n\n\tpart3\n    # indented comment goes\nregion = eu\n",
            &[set("p", "aws_session_token", "new")]
        ),
        "[p]\naws_session_token = new\n# comment stays\n\nregion = eu\n"
    );
}

#[test]
fn missing_key_goes_after_the_last_key_of_its_section() {
    assert_eq!(
        edited(
            "[p]\nregion = eu\n  cont\n\n# about q\n[q]\nx = 1\n",
            &[
                set("p", "aws_access_key_id", "AKIA"),
                set("p", "aws_secret_access_key", "s")
            ]
        ),
        "[p]\nregion = eu\n  cont\naws_access_key_id = AKIA\naws_secret_access_key = s\n\n# about q\n[q]\nx = 1\n"
    );
    // An empty section: right after the header.
    assert_eq!(
        edited("[p]\n; note\n\n[q]\n", &[set("p", "k", "v")]),
        "[p]\nk = v\n; note\n\n[q]\n"
    );
}

#[test]
fn missing_section_is_appended_after_one_blank_line() {
    assert_eq!(edited("", &[set("p", "k", "v")]), "[p]\nk = v\n");
    assert_eq!(
        edited("[a]\nx = 1\n", &[set("p", "k", "v"), set("p", "l", "w")]),
        "[a]\nx = 1\n\n[p]\nk = v\nl = w\n"
    );
    assert_eq!(
        edited("[a]\nx = 1\n\n", &[set("p", "k", "v")]),
        "[a]\nx = 1\n\n[p]\nk = v\n"
    );
}

#[test]
fn line_endings_follow_the_file() {
    assert_eq!(
        edited(
            "[a]\r\nx = 1\r\n",
            &[set("a", "y", "2"), set("b", "z", "3")]
        ),
        "[a]\r\nx = 1\r\ny = 2\r\n\r\n[b]\r\nz = 3\r\n"
    );
    assert_eq!(
        edited("[a]\nx = 1", &[set("a", "y", "2")]),
        "[a]\nx = 1\ny = 2",
        "a missing final newline stays missing"
    );
    assert_eq!(
        edited("[a]\nx = 1", &[set("b", "y", "2")]),
        "[a]\nx = 1\n\n[b]\ny = 2"
    );
}

#[test]
fn a_byte_order_mark_goes_with_the_first_change() {
    let text = "\u{feff}[a]\nx = 1\n";
    let doc = Document::parse(text);
    assert!(doc.has_byte_order_mark());
    assert_eq!(doc.get("a", "x").unwrap(), Some("1"));
    assert_eq!(edited(text, &[set("a", "x", "2")]), "[a]\nx = 2\n");
}

#[test]
fn remove_deletes_the_key_and_its_value_lines() {
    assert_eq!(
        edited(
            "[p]\na = 1\naws_security_token = old\n  more\nb = 2\n",
            &[Edit::remove("p", "aws_security_token")]
        ),
        "[p]\na = 1\nb = 2\n"
    );
    let text = "[p]\na = 1\n";
    assert_eq!(
        edited(text, &[Edit::remove("p", "zz"), Edit::remove("q", "a")]),
        text
    );
}

#[test]
fn edits_never_touch_other_sections() {
    let text = "[DEFAULT]\naws_session_token = d\n[p]\nx = 1\n[other]\naws_session_token = o\n";
    assert_eq!(
        edited(text, &[set("p", "aws_session_token", "new")]),
        "[DEFAULT]\naws_session_token = d\n[p]\nx = 1\naws_session_token = new\n[other]\naws_session_token = o\n"
    );
}

#[test]
fn invalid_edits_are_refused_without_showing_the_value() {
    let secret = "wJalrXUtnFEMI/K7MDENG";
    for value in [
        format!("{secret}\nx"),
        format!("{secret}\r"),
        format!(" {secret}"),
        format!("{secret}\t"),
        format!("{secret} #c"),
        format!("{secret}\t;c"),
        format!("#{secret}"),
        format!("{secret}\u{7}"),
    ] {
        let err = refused("[p]\n", &set("p", "k", &value));
        assert!(
            matches!(err.kind(), ErrorKind::InvalidValue { .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains(secret) && !format!("{err:?}").contains(secret));
    }
    for key in ["", "Key", "a-b", "a b", "a=b", "é"] {
        let err = refused("[p]\n", &set("p", key, "v"));
        assert!(
            matches!(err.kind(), ErrorKind::InvalidKey { .. }),
            "{key}: {err:?}"
        );
    }
    for section in ["", "DEFAULT", "a]b", "a\nb", "a b", " a", "a#b", "a;b", "é"] {
        let err = refused("[p]\n", &set(section, "k", "v"));
        assert!(
            matches!(err.kind(), ErrorKind::InvalidSection { .. }),
            "{section:?}: {err:?}"
        );
        assert!(!err.is_transient());
    }
    // Values the readers agree on are fine.
    assert_eq!(
        edited("", &[set("p", "k", "a#b;c=d:e [x] \"q\" 'r' ü")]),
        "[p]\nk = a#b;c=d:e [x] \"q\" 'r' ü\n"
    );
    assert_eq!(edited("", &[set("p", "k", "")]), "[p]\nk =\n");
}

#[test]
fn a_duplicated_section_or_key_is_never_touched() {
    let err = refused("[p]\na = 1\n[p]\nb = 2\n", &set("p", "a", "x"));
    assert!(err.line() == Some(3) && err.kind() == &ErrorKind::DuplicateSection { first_line: 1 });
    let err = refused("[p]\na = 1\nb = 2\nA = 3\n", &set("p", "c", "x"));
    assert!(
        err.line() == Some(4)
            && matches!(err.kind(), ErrorKind::DuplicateKey { first_line: 2, .. })
    );
    // Other sections' duplicates are not ours to judge.
    assert_eq!(
        edited("[q]\na = 1\na = 2\n[p]\n", &[set("p", "k", "v")]),
        "[q]\na = 1\na = 2\n[p]\nk = v\n"
    );
}

#[test]
fn a_header_with_spaces_inside_is_ambiguous() {
    let err = refused("[ p ]\na = 1\n", &set("p", "a", "x"));
    assert!(
        err.line() == Some(1) && matches!(err.kind(), ErrorKind::AmbiguousSection { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("[ p ]"));
    let err = refused("[p]\na = 1\n[p\t]\n", &set("p", "b", "x"));
    assert!(err.line() == Some(3) && matches!(err.kind(), ErrorKind::AmbiguousSection { .. }));
}

#[test]
fn indented_keys_after_a_rewritten_key_are_refused() {
    let err = refused("[p]\n  a = 1\n  b = 2\n", &set("p", "a", "x"));
    assert!(
        err.line() == Some(3) && matches!(err.kind(), ErrorKind::IndentedLine { .. }),
        "{err:?}"
    );
    let err = refused("[p]\n  a = 1\n  b = 2\n", &Edit::remove("p", "a"));
    assert!(err.line() == Some(3) && matches!(err.kind(), ErrorKind::IndentedLine { .. }));
    // The last indented key can be rewritten; nothing indented follows it.
    assert_eq!(
        edited("[p]\n  a = 1\n  b = 2\n\n[q]\n", &[set("p", "b", "x")]),
        "[p]\n  a = 1\nb = x\n\n[q]\n"
    );
    // A new key would turn an indented header after it into its value.
    let err = refused("[p]\n  [q]\nk = 1\n", &set("p", "a", "x"));
    assert!(
        err.line() == Some(2) && matches!(err.kind(), ErrorKind::IndentedLine { .. }),
        "{err:?}"
    );
}

#[test]
fn files_the_readers_would_split_differently_are_refused() {
    // A bare CR ends a line for botocore only: the SDK would read the key
    // line as part of the value of `a`.
    let err = refused("[p]\na = 1\rk = old\n", &set("p", "k", "NEWSECRET"));
    assert!(
        matches!(err.kind(), ErrorKind::ReadersDisagree { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("NEWSECRET"));
}

#[test]
fn a_rejected_line_does_not_end_a_value() {
    // botocore keeps `region` open across the line without separator, so
    // the indented line after it still continues `region`.
    assert_eq!(
        edited(
            "[prod]\nregion=\njunk without separator\n  [a]\n",
            &[set("prod", "region", "")]
        ),
        "[prod]\nregion =\njunk without separator\n"
    );
}

#[test]
fn dropping_the_last_line_keeps_the_line_endings_before_it() {
    assert_eq!(
        edited(
            "[p]\naws_session_token=\n\n  =",
            &[set("p", "aws_session_token", "")]
        ),
        "[p]\naws_session_token =\n\n"
    );
    assert_eq!(
        edited("[p]\na = 1\nb = 2", &[Edit::remove("p", "b")]),
        "[p]\na = 1\n"
    );
}

/// Looking a section up used to scan every section, and the planner asks
/// about each configured section several times a pass: with many sections
/// a pass was quadratic. Sixteen times the sections must cost about sixteen
/// times the lookups' time, not 256 times (best of three; ratios only).
#[test]
fn looking_up_every_section_is_linear_in_their_number() {
    let time = |n: usize| {
        let text: String = (0..n)
            .map(|i| format!("[p{i}]\naws_session_token = t{i}\n"))
            .collect();
        // The best of five: a loaded machine (tests run in parallel) makes
        // single runs noisy; a quadratic lookup would be 256x, linear 16x.
        (0..5)
            .map(|_| {
                let doc = Document::parse(&text);
                let started = std::time::Instant::now();
                for i in 0..n {
                    let name = format!("p{i}");
                    doc.check_section(&name).unwrap();
                    let expected = format!("t{i}");
                    assert_eq!(
                        doc.get(&name, "aws_session_token").unwrap(),
                        Some(expected.as_str())
                    );
                }
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let ratio = time(16_000).as_secs_f64() / time(1_000).as_secs_f64().max(1e-6);
    assert!(
        ratio < 128.0,
        "16,000 sections took {ratio:.0}x as long as 1,000"
    );
}
