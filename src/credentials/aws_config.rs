//! `credential_process` entries in the AWS config file (`~/.aws/config`),
//! written where botocore and the AWS SDKs look for them.
//!
//! botocore (`configloader.build_profile_map`) reads a section whose name
//! starts with `profile` as the profile named by the second word of the
//! name split like a shell would (`shlex.split`: `[profile  p]` and
//! `[profile "p"]` are both profile `p`), reads `[default]` as profile
//! `default`, and when several sections name one profile keeps the last
//! one whole: a `[profile default]` written after the user's `[default]`
//! hides its region and output. So an entry goes into the section botocore
//! already reads as the profile, or a new `[profile NAME]` (`[default]`
//! for `default`) when there is none.

use std::path::Path;

use anyhow::bail;
use secrecy::SecretString;

use super::{CredentialsFile, Document, Edit, WriteOutcome};

const CREDENTIAL_PROCESS: &str = "credential_process";

/// What [`write_credential_process_entries`] did.
#[derive(Debug)]
pub struct AwsConfigWrite {
    pub outcome: WriteOutcome,
    /// Profiles whose `credential_process` was another program's and was
    /// replaced (with `force`).
    pub replaced: Vec<String>,
}

/// Sets `credential_process = COMMAND` in the section botocore reads as
/// profile PROFILE in the AWS config file at `path`, for each `(PROFILE,
/// COMMAND)`: the same locked, byte-preserving write as the credentials
/// file's (other profiles, their keys, comments and order stay as they are,
/// and the file keeps its mode). Refuses profile names the readers would
/// not read alike, headers the SDKs would not read as the profile, and
/// (unless `force`) a `credential_process` another program wrote.
pub fn write_credential_process_entries(
    path: &Path,
    entries: &[(String, String)],
    backups: usize,
    force: bool,
) -> anyhow::Result<AwsConfigWrite> {
    for (profile, _) in entries {
        check_profile_name(profile)?;
    }
    let file = CredentialsFile::aws_config(path.to_path_buf(), backups);
    let snapshot = file.read_snapshot()?;
    let doc = snapshot.document();
    let mut edits = Vec::new();
    let mut replaced = Vec::new();
    let mut foreign = Vec::new();
    for (profile, command) in entries {
        let section = section_for(doc, profile, path)?;
        if let Ok(Some(existing)) = doc.get(&section, CREDENTIAL_PROCESS)
            && existing != command
            && !is_ours(existing)
        {
            if force {
                replaced.push(profile.clone());
            } else {
                foreign.push(format!("[{section}]"));
            }
        }
        edits.push(Edit::set(
            section,
            CREDENTIAL_PROCESS,
            SecretString::from(command.clone()),
        ));
    }
    if !foreign.is_empty() {
        bail!(
            "{}: {} already {} a credential_process of another program; nothing was written. Run \
             `config aws-config --write --force` to replace it, or remove it first",
            path.display(),
            foreign.join(", "),
            if foreign.len() == 1 { "has" } else { "have" }
        );
    }
    let written = file.update_from(&snapshot, &edits)?;
    Ok(AwsConfigWrite {
        outcome: written.outcome,
        replaced,
    })
}

/// The header a profile gets when the file has none for it.
pub fn new_section_name(profile: &str) -> String {
    if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    }
}

/// Profile names both readers read alike in a `[profile NAME]` header:
/// the SDKs ignore a header with other characters, and botocore splits a
/// name with spaces or quotes like a shell.
fn check_profile_name(profile: &str) -> anyhow::Result<()> {
    let valid = !profile.is_empty()
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c));
    if !valid {
        bail!(
            "profile name {profile:?} cannot be written to the AWS config file: the AWS CLI and \
             the AWS SDKs read a [profile NAME] header with spaces, quotes or other characters \
             differently; use a profile name of letters, digits and _ - / . % @ : +"
        );
    }
    Ok(())
}

/// The section to write `profile`'s entry into: the last one botocore
/// reads as the profile (the one it uses), if the SDKs read it as the
/// profile too; a new one otherwise.
fn section_for(doc: &Document, profile: &str, path: &Path) -> anyhow::Result<String> {
    let Some(raw) = doc
        .section_names()
        .into_iter()
        .rfind(|raw| botocore_profile(raw).as_deref() == Some(profile))
    else {
        return Ok(new_section_name(profile));
    };
    if sdk_profile(raw) != Some(profile) {
        bail!(
            "{}: the header [{raw}] is profile {profile} for the AWS CLI but not for the AWS \
             SDKs; write it as [{}] and run this again",
            path.display(),
            new_section_name(profile)
        );
    }
    Ok(raw.to_string())
}

/// The profile botocore reads a raw config-file section name as.
fn botocore_profile(raw: &str) -> Option<String> {
    if raw == "default" {
        return Some(raw.to_string());
    }
    if !raw.starts_with("profile") {
        return None;
    }
    match shell_words(raw)?.as_slice() {
        [_, name] => Some(name.clone()),
        _ => None,
    }
}

/// The profile the AWS SDKs read a raw config-file section name as:
/// `profile`, whitespace, an identifier; or `default`.
fn sdk_profile(raw: &str) -> Option<&str> {
    let name = raw.trim_matches([' ', '\t']);
    if name == "default" {
        return Some(name);
    }
    let rest = name.strip_prefix("profile")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_matches([' ', '\t']);
    rest.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
        .then_some(rest)
        .filter(|r| !r.is_empty())
}

/// Python's `shlex.split` (POSIX mode): words separated by whitespace,
/// `'…'` literal, `"…"` with `\` escaping `\ " $ `` and newline, `\`
/// escaping any character outside quotes. `None` where shlex raises
/// (an unclosed quote, a trailing `\`).
fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                words.extend(word.take());
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('\\' | '"' | '$' | '`' | '\n') => w.push(c),
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// Whether a `credential_process` command is this program's: its
/// `credential-process --profile` subcommand.
fn is_ours(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or_default();
    Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("aws-session-daemon"))
        && words.next() == Some("credential-process")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_as_botocore_reads_them() {
        assert_eq!(botocore_profile("default").as_deref(), Some("default"));
        assert_eq!(botocore_profile("profile p").as_deref(), Some("p"));
        assert_eq!(botocore_profile("profile  p").as_deref(), Some("p"));
        assert_eq!(botocore_profile("profile \"p\"").as_deref(), Some("p"));
        assert_eq!(botocore_profile("profile 'a b'").as_deref(), Some("a b"));
        assert_eq!(botocore_profile("profile a b"), None);
        assert_eq!(botocore_profile("profile \"p"), None);
        assert_eq!(botocore_profile("preview"), None);
        assert_eq!(sdk_profile("profile  p"), Some("p"));
        assert_eq!(sdk_profile("profile \"p\""), None);
        assert_eq!(sdk_profile("profilep"), None);
    }

    #[test]
    fn commands_of_this_program_are_told_from_others() {
        assert!(is_ours(
            "/usr/bin/aws-session-daemon credential-process --profile p"
        ));
        assert!(!is_ours("aws-vault exec p --json"));
        assert!(!is_ours("/usr/bin/aws-session-daemon run"));
    }
}
