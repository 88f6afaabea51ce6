//! `config show`, `config get` and `config find`: the expanded config.
//!
//! `get` and `find` replace the original's `aws-session-daemon-get-config`
//! and `aws-session-daemon-find-config`. Secret keys are never printed.

use std::io::Write;

use anyhow::bail;

use crate::config::{Config, RawValue, Section};

pub fn show(config: &Config, out: &mut dyn Write) -> anyhow::Result<i32> {
    if let Some(file) = &config.file {
        writeln!(out, "# expanded from {}", file.display())?;
    }
    for section in &config.sections {
        writeln!(out, "\n[{}]  # {}", toml_key(&section.name), section.path)?;
        for (key, sourced) in &section.values {
            writeln!(out, "{key} = {}", toml_value(&sourced.value))?;
        }
        if let Err(errors) = &section.settings {
            for error in errors {
                for line in error.to_string().lines() {
                    writeln!(out, "# invalid: {line}")?;
                }
            }
        }
    }
    Ok(0)
}

/// Prints one expanded value of the single selected section.
pub fn get(config: &Config, key: &str, out: &mut dyn Write) -> anyhow::Result<i32> {
    refuse_secret(key)?;
    let section = match config.sections.as_slice() {
        [only] => only,
        many => bail!(
            "{} sections are selected; choose one with --config-section (known: {})",
            many.len(),
            names(config)
        ),
    };
    match section.values.get(key) {
        Some(sourced) => {
            writeln!(out, "{}", sourced.value.display())?;
            Ok(0)
        }
        None => {
            writeln!(std::io::stderr(), "section [{}] has no {key}", section.name)?;
            Ok(1)
        }
    }
}

/// Sections whose `key` equals `value`, or every section's `key`.
pub fn find(
    config: &Config,
    key: &str,
    value: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    refuse_secret(key)?;
    let mut found = false;
    for section in &config.sections {
        let Some(sourced) = section.values.get(key) else {
            continue;
        };
        let shown = sourced.value.display();
        match value {
            Some(wanted) if shown == wanted => {
                writeln!(out, "{}", section.name)?;
                found = true;
            }
            Some(_) => {}
            None => {
                writeln!(out, "{}\t{shown}", section.name)?;
                found = true;
            }
        }
    }
    Ok(if found { 0 } else { 1 })
}

/// The `credential_process` line of a profile: this very binary, by its
/// absolute path (the AWS CLI runs it without a shell's PATH lookup
/// guarantees, and a unit's PATH may differ).
pub fn credential_process_command(profile: &str) -> anyhow::Result<String> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| anyhow::anyhow!("cannot find this program's own path: {e}"))?;
    let exe = exe.display().to_string();
    if exe.contains(char::is_whitespace) {
        bail!(
            "this program's path {exe:?} contains a space, which credential_process cannot quote; install it elsewhere"
        );
    }
    Ok(format!("{exe} credential-process --profile {profile}"))
}

/// `config aws-config`: the `[profile NAME]` entries of the `output =
/// "process"` sections, printed, or written into ~/.aws/config.
pub fn aws_config(
    config: &Config,
    write: bool,
    force: bool,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let profiles: Vec<String> = config
        .valid_sections()
        .filter(|(_, s)| s.output == crate::config::Output::Process)
        .map(|(_, s)| s.profile_name.clone())
        .collect();
    if profiles.is_empty() {
        bail!("no section has output = \"process\"; nothing to add to ~/.aws/config");
    }
    let entries: Vec<(String, String)> = profiles
        .iter()
        .map(|p| Ok((p.clone(), credential_process_command(p)?)))
        .collect::<anyhow::Result<_>>()?;
    if write {
        let path = super::aws_config_path()?;
        let written = crate::credentials::write_credential_process_entries(
            &path,
            &entries,
            config.backups(),
            force,
        )?;
        for profile in &written.replaced {
            writeln!(
                out,
                "replaced another program's credential_process of profile {profile}"
            )?;
        }
        writeln!(
            out,
            "{} {} profile(s) in {}",
            if written.outcome == crate::credentials::WriteOutcome::Written {
                "wrote"
            } else {
                "already up to date:"
            },
            entries.len(),
            path.display()
        )?;
        return Ok(0);
    }
    for (profile, command) in &entries {
        writeln!(
            out,
            "[{}]\ncredential_process = {command}\n",
            crate::credentials::new_section_name(profile)
        )?;
    }
    Ok(0)
}

fn refuse_secret(key: &str) -> anyhow::Result<()> {
    if crate::config::holds_secret(key) {
        bail!("{key} is a secret and is never printed");
    }
    Ok(())
}

fn names(config: &Config) -> String {
    config
        .sections
        .iter()
        .map(|s: &Section| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn toml_value(value: &RawValue) -> String {
    match value {
        RawValue::String(s) => toml_edit::Value::from(s.as_str())
            .to_string()
            .trim()
            .to_string(),
        RawValue::Integer(i) => i.to_string(),
        RawValue::Bool(b) => b.to_string(),
        RawValue::StringList(list) => {
            let array: toml_edit::Array = list.iter().map(String::as_str).collect();
            array.to_string().trim().to_string()
        }
        RawValue::Secret(_) => "\"********\"".to_string(),
        RawValue::Unsupported(what) => format!("# <{what}>"),
    }
}
