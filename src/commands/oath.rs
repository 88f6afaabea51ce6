//! `oath list` and `oath code NAME`: diagnostics for checking a YubiKey
//! setup (reader, applet, credential names) against the AWS console.
//!
//! `oath code` is the one place where a code is printed: to stdout, alone on
//! its line, so that it can be compared or piped; everything else goes to
//! stderr.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Context;

use super::table::Table;
use crate::oath::{self, OathOptions, ReaderListing};
use crate::secret::ExposeSecret;

/// Prints every matching reader and its OATH credentials (name, type,
/// algorithm, digits, period, touch), never codes.
pub fn list(opts: &OathOptions, json: bool) -> anyhow::Result<()> {
    let listings = oath::list(opts).context("listing the OATH credentials")?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &listings)?;
        writeln!(out)?;
    } else {
        out.write_all(render_table(&listings).as_bytes())?;
    }
    Ok(())
}

/// Prints the current TOTP code of `name` to stdout; the reader, step and
/// remaining validity go to stderr.
pub fn code(opts: &OathOptions, name: &str) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let code = oath::calculate(opts, name, now, &|prompt: &oath::TouchPrompt| {
        eprintln!("Touch your YubiKey ({prompt})");
        oath::notify_touch(prompt);
    })
    .with_context(|| format!("calculating a code for {name:?}"))?;
    let unix = crate::timestamp::unix_seconds(now);
    let left = code
        .step
        .saturating_add(1)
        .saturating_mul(code.period)
        .saturating_sub(unix);
    println!("{}", code.value.expose_secret());
    eprintln!(
        "from {:?}, time step {} ({} s period), valid for {} more s",
        code.reader, code.step, code.period, left
    );
    Ok(())
}

/// The human-readable form of `oath list`.
pub fn render_table(listings: &[ReaderListing]) -> String {
    let mut out = String::new();
    if listings.is_empty() {
        out.push_str("No smart card readers.\n");
    }
    for l in listings {
        out.push_str(&format!("Reader {:?}", l.reader));
        let mut notes = Vec::new();
        if let Some(v) = &l.version {
            notes.push(format!("OATH applet {v}"));
        }
        if l.password_protected {
            notes.push("password protected".to_string());
        }
        if !notes.is_empty() {
            out.push_str(&format!(" ({})", notes.join(", ")));
        }
        if let Some(problem) = &l.problem {
            out.push_str(&format!(": {problem}\n"));
            continue;
        }
        out.push('\n');
        if l.credentials.is_empty() {
            out.push_str("  no OATH credentials\n");
            continue;
        }
        let mut table =
            Table::new(["NAME", "TYPE", "ALGORITHM", "DIGITS", "PERIOD", "TOUCH"]).indent("  ");
        for c in &l.credentials {
            table.row([
                c.name.clone(),
                c.kind.to_string(),
                c.algorithm.to_string(),
                c.digits
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "?".into()),
                c.period
                    .map(|p| format!("{p}s"))
                    .unwrap_or_else(|| "-".into()),
                if c.touch { "yes" } else { "no" }.to_string(),
            ]);
        }
        out.push_str(&table.render());
    }
    out
}

/// `oath list` / `oath code`, with the YubiKey flags (or the config's values
/// when the selected sections agree on them).
pub fn run(cli: &crate::cli::Cli, command: &crate::cli::OathCommand) -> anyhow::Result<i32> {
    let options = options_from(cli);
    match command {
        crate::cli::OathCommand::List { json } => list(&options, *json)?,
        crate::cli::OathCommand::Code { name } => code(&options, name)?,
    }
    Ok(0)
}

fn options_from(cli: &crate::cli::Cli) -> OathOptions {
    let o = &cli.overrides;
    let password = match (&o.oath_password_command, &o.oath_password_file) {
        (Some(command), _) => Some(crate::oath::PasswordSource::Command(command.clone())),
        (None, Some(file)) => Some(crate::oath::PasswordSource::File(file.into())),
        (None, None) => None,
    };
    let mut options = OathOptions {
        reader_filter: o.yubikey_reader.clone(),
        password,
        ..OathOptions::default()
    };
    // Without flags, take the reader and password from the config, if it
    // loads and names them.
    if (options.reader_filter.is_none() || options.password.is_none())
        && let Ok(config) =
            crate::config::load(&super::load_options(cli), &crate::config::process_env)
    {
        for (_, settings) in config.valid_sections() {
            if let Some(crate::config::CodeSource::Oath {
                reader,
                password,
                timeout,
                ..
            }) = settings.mfa().map(|m| &m.code_source)
            {
                options.password_timeout = *timeout;
                if options.reader_filter.is_none() {
                    options.reader_filter = reader.clone();
                }
                if options.password.is_none() {
                    options.password = password
                        .as_ref()
                        .map(crate::daemon::adapters::password_source);
                }
            }
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oath::{CredentialInfo, HashAlgorithm, OathType};

    #[test]
    fn table_shows_readers_credentials_and_problems() {
        let listings = vec![
            ReaderListing {
                reader: "Yubico YubiKey OTP+FIDO+CCID 00 00".into(),
                version: Some("5.4.3".into()),
                password_protected: true,
                credentials: vec![
                    CredentialInfo {
                        name: "Amazon Web Services:user@123457890123".into(),
                        kind: OathType::Totp,
                        algorithm: HashAlgorithm::Sha1,
                        digits: Some(6),
                        period: Some(30),
                        touch: false,
                    },
                    CredentialInfo {
                        name: "Counter:bob".into(),
                        kind: OathType::Hotp,
                        algorithm: HashAlgorithm::Sha256,
                        digits: Some(8),
                        period: None,
                        touch: true,
                    },
                ],
                problem: None,
            },
            ReaderListing {
                reader: "Virtual PCD 00 01".into(),
                version: None,
                password_protected: false,
                credentials: vec![],
                problem: Some("no smart card in \"Virtual PCD 00 01\": insert the YubiKey".into()),
            },
        ];
        let expected = "\
Reader \"Yubico YubiKey OTP+FIDO+CCID 00 00\" (OATH applet 5.4.3, password protected)
  NAME                                   TYPE  ALGORITHM  DIGITS  PERIOD  TOUCH
  Amazon Web Services:user@123457890123  TOTP  SHA1       6       30s     no
  Counter:bob                            HOTP  SHA256     8       -       yes
Reader \"Virtual PCD 00 01\": no smart card in \"Virtual PCD 00 01\": insert the YubiKey
";
        assert_eq!(render_table(&listings), expected);
    }
}
