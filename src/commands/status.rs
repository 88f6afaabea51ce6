//! `status`: per section, expiry and time left (from the credentials file),
//! last refresh, last error and next attempt (from the daemon's state file
//! in the runtime directory).

use std::io::Write;

use serde::Serialize;
use time::OffsetDateTime;

use crate::cli::{Cli, StatusArgs};
use crate::config::process_env;
use crate::daemon::state::{self, SectionStatus};
use crate::session_cache::runtime_dir;
use crate::text::printable;
use crate::timestamp::with_relative;

#[derive(Serialize)]
struct Row {
    section: String,
    profile: String,
    state: &'static str,
    /// Where the session goes: `file` or `process`.
    output: crate::config::Output,
    /// Where the long-term keys come from: `config`, `file` or `keyring`.
    long_term_keys: &'static str,
    #[serde(with = "crate::timestamp::option")]
    expires: Option<OffsetDateTime>,
    seconds_left: Option<i64>,
    /// An IAM Identity Center section's SSO session, account, role and
    /// token (a sign-in waiting shows its URL and user code).
    #[serde(skip_serializing_if = "Option::is_none")]
    sso: Option<SsoRow>,
    #[serde(flatten)]
    daemon: SectionStatus,
}

#[derive(Serialize)]
struct SsoRow {
    sso_session: String,
    account_id: String,
    role_name: String,
    #[serde(flatten)]
    token: crate::daemon::decide::SsoToken,
}

pub fn run(cli: &Cli, args: &StatusArgs) -> anyhow::Result<i32> {
    let observation = super::observe(cli)?;
    let plan = observation.plan();
    let now = plan.now;
    let daemon_state = match runtime_dir(&process_env).map(|dir| state::read_checked(&dir)) {
        Some(Ok(state)) => state,
        Some(Err(e)) => {
            eprintln!(
                "warning: ignoring the daemon's state file: {}",
                printable(&e.to_string())
            );
            state::StateFile::default()
        }
        None => state::StateFile::default(),
    };
    let rows: Vec<Row> = plan
        .sections
        .iter()
        .map(|s| {
            let expires = s.state.expires();
            let mut daemon = daemon_state
                .sections
                .get(&s.section)
                .cloned()
                .unwrap_or_default();
            // The instant the daemon's loop wakes for this section: the
            // plan's, from the same inputs the daemon plans with.
            daemon.next_attempt = plan.next_pass_of(s).map(|(at, _)| at);
            let sso = observation
                .config
                .section(&s.section)
                .and_then(|section| section.settings.as_ref().ok())
                .and_then(|settings| settings.sso())
                .and_then(|sso| {
                    Some(SsoRow {
                        sso_session: sso.session_name().to_string(),
                        account_id: sso.account_id.clone(),
                        role_name: sso.role_name.clone(),
                        token: plan.sso_session(sso.session_name())?.token.clone(),
                    })
                });
            Row {
                section: s.section.clone(),
                profile: s.profile.clone(),
                state: s.state.name(),
                output: s.output,
                long_term_keys: s.long_term_keys,
                expires,
                seconds_left: expires.map(|e| (e - now).whole_seconds()),
                sso,
                daemon,
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        print_table(&rows, now, &mut out)?;
        print_endpoint(&mut out)?;
    }
    Ok(if plan.all_fresh() { 0 } else { 1 })
}

fn print_table(rows: &[Row], now: OffsetDateTime, out: &mut dyn Write) -> anyhow::Result<()> {
    let when = |t: Option<OffsetDateTime>| t.map_or("-".to_string(), |t| with_relative(t, now));
    for row in rows {
        writeln!(
            out,
            "[{}] -> profile [{}]: {}",
            printable(&row.section),
            printable(&row.profile),
            row.state
        )?;
        let output = match row.output {
            crate::config::Output::File => "the credentials file",
            crate::config::Output::Process => "the runtime cache (credential-process)",
        };
        writeln!(out, "  session in:    {output}")?;
        match &row.sso {
            Some(sso) => {
                writeln!(
                    out,
                    "  from:          IAM Identity Center, SSO session {}: account {}, role {}",
                    printable(&sso.sso_session),
                    printable(&sso.account_id),
                    printable(&sso.role_name)
                )?;
                writeln!(out, "  token:         {}", sso.token.describe(now))?;
            }
            None => writeln!(out, "  keys from:     {}", row.long_term_keys)?,
        }
        writeln!(out, "  expires:       {}", when(row.expires))?;
        writeln!(out, "  last refresh:  {}", when(row.daemon.last_refresh))?;
        let awaits_sign_in = row.state != "fresh"
            && row.sso.as_ref().is_some_and(|sso| {
                matches!(sso.token, crate::daemon::decide::SsoToken::SignInPending(_))
            });
        if awaits_sign_in {
            writeln!(out, "  next attempt:  as soon as the sign-in is approved")?;
        } else {
            writeln!(out, "  next attempt:  {}", when(row.daemon.next_attempt))?;
        }
        if let Some(error) = &row.daemon.last_error {
            writeln!(
                out,
                "  last error:    {} ({})",
                printable(error.lines().next().unwrap_or("")),
                when(row.daemon.last_error_at)
            )?;
        }
    }
    if rows.iter().all(|r| r.daemon.pid.is_none()) {
        writeln!(
            out,
            "\n(no daemon has recorded a pass yet: is it running? `systemctl --user status aws-session-daemon`)"
        )?;
    }
    Ok(())
}

/// The running daemon's credentials endpoint, from its record in the
/// runtime directory (none while no daemon serves one).
fn print_endpoint(out: &mut dyn Write) -> anyhow::Result<()> {
    let Some(dir) = runtime_dir(&process_env) else {
        return Ok(());
    };
    let record = match crate::endpoint::Record::read(&dir) {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(()),
        Err(e) => {
            writeln!(out, "\ncredentials endpoint: {}", printable(&e.to_string()))?;
            return Ok(());
        }
    };
    writeln!(out, "\ncredentials endpoint (pid {}):", record.pid)?;
    writeln!(out, "  URL:           {}SECTION", printable(&record.url))?;
    writeln!(
        out,
        "  token file:    {}",
        printable(&record.token_file.display().to_string())
    )?;
    if let Some(dir) = &record.section_token_dir {
        writeln!(
            out,
            "  section tokens: {}/SECTION",
            printable(&dir.display().to_string())
        )?;
    }
    if let Some(socket) = &record.unix_socket {
        writeln!(
            out,
            "  socket:        {}",
            printable(&socket.display().to_string())
        )?;
    }
    let names: Vec<_> = record.sections.iter().map(|s| printable(s)).collect();
    writeln!(out, "  serves:        {}", names.join(", "))?;
    Ok(())
}
