//! `keyring set | import | list | delete | set-oath-password |
//! delete-oath-password`: moving the long-term keys and the OATH applet
//! password into the desktop's Secret Service.
//!
//! Secrets are read from the terminal without echo, or from standard input
//! when it is not a terminal (a password manager's pipe), never from the
//! command line, where any user sees them in the process list. Results go
//! to stdout, prompts to the terminal, warnings to stderr. Every store is
//! read back and compared before anything is removed from a file.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};

use anyhow::{Context, anyhow, bail};
use zeroize::Zeroizing;

use crate::cli::{Cli, KeyringCommand};
use crate::commands::table::Table;
use crate::config::{DEFAULT_BACKUPS, LoadOptions, process_env};
use crate::credentials::{ACCESS_KEY_ID, CredentialsFile, Edit, SECRET_ACCESS_KEY, WriteOutcome};
use crate::keyring::{Keyring, PROMPT_TIMEOUT, check_long_term_key_id};
use crate::secret::{ExposeSecret, SecretString, mask_access_key_id};
use crate::text::printable;

/// What standard input may hold: two short lines.
const MAX_INPUT: u64 = 8 * 1024;

/// One line typed at the terminal.
const MAX_LINE: usize = 4 * 1024;

/// `--access-key-id` and `--secret-access-key` are not among these
/// commands' options (see `cli::options_of`): the command line refuses them.
pub fn run(cli: &Cli, command: &KeyringCommand, out: &mut impl Write) -> anyhow::Result<i32> {
    let keyring = Keyring::from_env(&process_env)?.prompting(PROMPT_TIMEOUT);
    match command {
        KeyringCommand::Set => set(&keyring, section(cli)?, out)?,
        KeyringCommand::Import { remove_from_file } => {
            import(cli, &keyring, section(cli)?, *remove_from_file, out)?
        }
        KeyringCommand::List => list(&keyring, out)?,
        KeyringCommand::Delete => {
            let section = section(cli)?;
            keyring.delete(section)?;
            writeln!(
                out,
                "Deleted the long-term keys of [{}] from the Secret Service.",
                printable(section)
            )?;
        }
        KeyringCommand::SetOathPassword => set_oath_password(&keyring, out)?,
        KeyringCommand::DeleteOathPassword => {
            keyring.delete_oath_password()?;
            writeln!(
                out,
                "Deleted the OATH applet password from the Secret Service."
            )?;
        }
    }
    Ok(0)
}

/// The global `--credentials-section`, which these commands require.
fn section(cli: &Cli) -> anyhow::Result<&str> {
    let section = cli.overrides.credentials_section.as_deref().ok_or_else(|| {
        anyhow!(
            "name the credentials section: --credentials-section NAME (the config's credentials_section, e.g. default)"
        )
    })?;
    if section.is_empty() || section.contains(|c: char| c.is_control() || c == ']') {
        bail!(
            "--credentials-section {:?} is not a section name",
            printable(section)
        );
    }
    Ok(section)
}

fn set(keyring: &Keyring, section: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let (key_id, secret) = read_keys()?;
    keyring.store_long_term(section, &key_id, &secret)?;
    read_back(keyring, section, &key_id, &secret)?;
    writeln!(
        out,
        "Stored the long-term keys of [{}] (access key id {}) in the Secret Service; they read back equal.",
        printable(section),
        mask_access_key_id(&key_id)
    )?;
    Ok(())
}

/// Checks that the service gives back exactly what was stored: only then
/// may the file's copy go.
fn read_back(
    keyring: &Keyring,
    section: &str,
    key_id: &str,
    secret: &SecretString,
) -> anyhow::Result<()> {
    let stored_id = keyring.key_id(section)?;
    if stored_id.as_deref() != Some(key_id) {
        bail!(
            "the Secret Service gives back access key id {} for [{}] instead of {}; nothing was removed",
            stored_id
                .as_deref()
                .map_or("none".to_string(), mask_access_key_id),
            printable(section),
            mask_access_key_id(key_id)
        );
    }
    let stored = keyring.long_term_secret(section)?;
    if stored.expose_secret() != secret.expose_secret() {
        bail!(
            "the Secret Service gives back a different secret access key for [{}] than was stored; nothing was removed",
            printable(section)
        );
    }
    Ok(())
}

fn import(
    cli: &Cli,
    keyring: &Keyring,
    section: &str,
    remove_from_file: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let path = super::credentials_path(cli)?;
    let file = CredentialsFile::new(path.clone(), backups(cli));
    let (key_id, secret) = keys_in_file(&file, section)?;
    check_long_term_key_id(&key_id)
        .with_context(|| format!("[{}] in {}", printable(section), path.display()))?;
    keyring.store_long_term(section, &key_id, &secret)?;
    read_back(keyring, section, &key_id, &secret)?;
    writeln!(
        out,
        "Copied the long-term keys of [{}] (access key id {}) from {} into the Secret Service; they read back equal.",
        printable(section),
        mask_access_key_id(&key_id),
        path.display()
    )?;
    if !remove_from_file {
        writeln!(
            out,
            "The keys are still in {}. Once the sections using [{}] have long_term_keys = \"keyring\", \
             run this again with --remove-from-file.",
            path.display(),
            printable(section)
        )?;
        return Ok(());
    }

    // Never remove keys that changed since they were copied.
    let (id_now, secret_now) = keys_in_file(&file, section)?;
    if id_now != key_id || secret_now.expose_secret() != secret.expose_secret() {
        bail!(
            "the keys of [{}] in {} changed while they were copied; nothing was removed, run the import again",
            printable(section),
            path.display()
        );
    }
    // The versions of the file that held the keys are overwritten in
    // place before they go, not left in the file system's free blocks.
    let file = file.wiping_old_versions();
    let outcome = file.update(&[
        Edit::remove(section, ACCESS_KEY_ID),
        Edit::remove(section, SECRET_ACCESS_KEY),
    ])?;
    let key_id_secret = SecretString::from(key_id.as_str());
    let scrubbed = file.remove_from_backups(
        section,
        &[
            (SECRET_ACCESS_KEY, &secret),
            (ACCESS_KEY_ID, &key_id_secret),
        ],
    )?;
    if outcome == WriteOutcome::Written {
        writeln!(
            out,
            "Removed {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY} from [{}] in {} (the section's header and its other keys stay).",
            printable(section),
            path.display()
        )?;
    }
    for backup in &scrubbed.cleaned {
        writeln!(
            out,
            "Removed the keys from the backup {}.",
            backup.display()
        )?;
    }
    for backup in &scrubbed.left {
        eprintln!(
            "warning: {} still holds the secret access key of [{}] (in another form or section); delete it",
            backup.display(),
            printable(section)
        );
    }
    for other in &scrubbed.elsewhere {
        eprintln!(
            "warning: {} (not a file the daemon writes) holds the secret access key of [{}]; \
             delete it (shred -u overwrites it first)",
            other.display(),
            printable(section)
        );
    }
    Ok(())
}

/// The keys of `section` in the file: both must be there, in the section
/// itself.
fn keys_in_file(file: &CredentialsFile, section: &str) -> anyhow::Result<(String, SecretString)> {
    let doc = file.read()?;
    let missing = |key: &str| {
        anyhow!(
            "[{}] in {} has no {key}; nothing to import",
            printable(section),
            file.path().display()
        )
    };
    let key_id = doc
        .get(section, ACCESS_KEY_ID)?
        .ok_or_else(|| missing(ACCESS_KEY_ID))?;
    let secret = doc
        .get(section, SECRET_ACCESS_KEY)?
        .ok_or_else(|| missing(SECRET_ACCESS_KEY))?;
    Ok((key_id.to_string(), SecretString::from(secret)))
}

/// The number of backups the config keeps, the default without a config.
fn backups(cli: &Cli) -> usize {
    let options = LoadOptions {
        path: cli.global.config.clone(),
        selected: Vec::new(),
        overrides: Vec::new(),
    };
    crate::config::load(&options, &process_env).map_or(DEFAULT_BACKUPS, |c| c.backups())
}

fn list(keyring: &Keyring, out: &mut impl Write) -> anyhow::Result<()> {
    let listing = keyring.list()?;
    if listing.keys.is_empty() {
        writeln!(out, "No long-term keys stored in the Secret Service.")?;
    } else {
        let mut table = Table::new(["CREDENTIALS SECTION", "ACCESS KEY ID"]);
        for keys in &listing.keys {
            let id = keys
                .access_key_id
                .as_deref()
                .map_or("(none)".to_string(), mask_access_key_id);
            table.row([keys.section.as_str(), &id]);
        }
        out.write_all(table.render().as_bytes())?;
    }
    if listing.oath_password {
        writeln!(out, "The OATH applet password is stored.")?;
    }
    Ok(())
}

fn set_oath_password(keyring: &Keyring, out: &mut impl Write) -> anyhow::Result<()> {
    let password = if io::stdin().is_terminal() {
        let mut tty = Terminal::open()?;
        let first = tty.ask_secret("OATH applet password (not shown): ")?;
        let again = tty.ask_secret("Again, to check: ")?;
        if first != again {
            bail!("the two passwords differ; nothing was stored");
        }
        SecretString::from(first.as_str())
    } else {
        let input = read_stdin()?;
        let line = input.lines().next().unwrap_or_default();
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            bail!("standard input holds no password: expected it on the first line");
        }
        SecretString::from(line)
    };
    keyring.store_oath_password(&password)?;
    let stored = keyring.oath_password()?;
    if stored.expose_secret() != password.expose_secret() {
        bail!("the Secret Service gives back a different OATH applet password than was stored");
    }
    writeln!(
        out,
        "Stored the OATH applet password in the Secret Service; it reads back equal."
    )?;
    Ok(())
}

/// The access key id and the secret access key: asked at the terminal
/// (the id shown, as it is not secret and typos are easier to see; the
/// secret not), or as two lines of standard input.
fn read_keys() -> anyhow::Result<(String, SecretString)> {
    if io::stdin().is_terminal() {
        let mut tty = Terminal::open()?;
        let key_id = tty.ask("AWS access key id: ")?.trim().to_string();
        check_long_term_key_id(&key_id)?;
        let secret = tty.ask_secret("AWS secret access key (not shown): ")?;
        return Ok((key_id, SecretString::from(secret.trim())));
    }
    let input = read_stdin()?;
    let mut lines = input.lines().map(str::trim).filter(|l| !l.is_empty());
    let expected = "expected two lines: the access key id, then the secret access key";
    let (Some(key_id), Some(secret)) = (lines.next(), lines.next()) else {
        bail!("standard input is too short: {expected}");
    };
    if lines.next().is_some() {
        bail!("standard input has more than two lines: {expected}");
    }
    check_long_term_key_id(key_id)?;
    Ok((key_id.to_string(), SecretString::from(secret)))
}

fn read_stdin() -> anyhow::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(1024));
    io::stdin()
        .lock()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .context("reading standard input")?;
    if bytes.len() as u64 > MAX_INPUT {
        bail!("standard input is longer than {MAX_INPUT} bytes: expected a few short lines");
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|_| anyhow!("standard input is not UTF-8 text"))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// The controlling terminal, for prompts: the answer never passes through
/// a pipe, and the prompt shows even when stdout is redirected.
struct Terminal {
    tty: File,
}

impl Terminal {
    fn open() -> anyhow::Result<Terminal> {
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .context(
                "opening the terminal (/dev/tty) to ask; pipe the input on standard input instead",
            )?;
        Ok(Terminal { tty })
    }

    /// One line, echoed.
    fn ask(&mut self, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
        self.tty.write_all(prompt.as_bytes())?;
        let mut line = Zeroizing::new(Vec::with_capacity(MAX_LINE));
        let mut byte = [0u8; 1];
        loop {
            if self.tty.read(&mut byte)? == 0 || byte[0] == b'\n' {
                break;
            }
            if line.len() < MAX_LINE {
                line.push(byte[0]);
            }
        }
        utf8_line(line)
    }

    /// One line, not echoed. The terminal is switched to byte-at-a-time
    /// input without signals, so that Ctrl-C cancels here (and the echo
    /// comes back) instead of killing the process with echo off; Backspace
    /// and Ctrl-U edit as usual.
    ///
    /// Not `rpassword`: its Ctrl-C raises SIGINT with the terminal still
    /// raw, ending the process with exit status 130 and echo off (the
    /// shell may or may not put it back), where `keyring set` must cancel
    /// with a message and exit 1 (`tests/keyring.rs`,
    /// `at_a_terminal_the_secret_is_not_echoed`). The terminal calls are
    /// rustix's (no unsafe code of ours).
    fn ask_secret(&mut self, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
        // Echo goes off before the prompt shows, and what was typed ahead
        // (echoed) is discarded: nothing typed after the prompt is shown.
        let line = {
            let _raw = RawMode::enter(&self.tty)?;
            self.tty.write_all(prompt.as_bytes())?;
            self.read_hidden()
        };
        self.tty.write_all(b"\n")?;
        utf8_line(line?)
    }

    fn read_hidden(&mut self) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let mut line = Zeroizing::new(Vec::with_capacity(MAX_LINE));
        let mut byte = [0u8; 1];
        loop {
            if self.tty.read(&mut byte)? == 0 {
                break;
            }
            match byte[0] {
                b'\r' | b'\n' => break,
                // Ctrl-C, and Ctrl-D on an empty line.
                0x03 => bail!("cancelled; nothing was stored"),
                0x04 if line.is_empty() => bail!("cancelled; nothing was stored"),
                0x04 => break,
                // Backspace / Delete: one character (UTF-8 aware).
                0x7f | 0x08 => while line.pop().is_some_and(|b| b & 0xc0 == 0x80) {},
                // Ctrl-U: the whole line.
                0x15 => line.clear(),
                b if b < 0x20 => {}
                b if line.len() < MAX_LINE => line.push(b),
                _ => {}
            }
        }
        Ok(line)
    }
}

fn utf8_line(mut line: Zeroizing<Vec<u8>>) -> anyhow::Result<Zeroizing<String>> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text = std::str::from_utf8(&line).map_err(|_| anyhow!("the answer is not UTF-8 text"))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// The terminal without echo, line editing or signals, restored on drop
/// (also when reading fails).
struct RawMode {
    tty: File,
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enter(tty: &File) -> io::Result<RawMode> {
        use rustix::termios::{
            LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr,
        };
        let tty = tty.try_clone()?;
        let saved = tcgetattr(&tty)?;
        let mut raw = saved.clone();
        raw.local_modes -= LocalModes::ECHO
            | LocalModes::ECHONL
            | LocalModes::ICANON
            | LocalModes::ISIG
            | LocalModes::IEXTEN;
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(&tty, OptionalActions::Flush, &raw)?;
        Ok(RawMode { tty, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            &self.tty,
            rustix::termios::OptionalActions::Flush,
            &self.saved,
        );
    }
}
