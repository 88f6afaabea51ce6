//! Command-line interface.
//!
//! Every spelling the Python original accepted is kept as an alias, so that
//! existing systemd units (`aws-session-daemon --config-section=NAME`) and
//! supervisord entries work unchanged. With no subcommand the program runs
//! the daemon, as the original did.
//!
//! The options that name files and sections ([`GlobalArgs`] but the log
//! level) and the original's per-section flags ([`SectionOverrides`]) are
//! defined once, on the top level, where the bare `aws-session-daemon
//! --rolearn ...` of the original needs them. [`command`] copies each onto
//! the subcommands that use it ([`options_of`]), so that a command's help
//! lists only what it takes, and [`parse_from`] gathers them from either
//! place into the one [`Cli`] the commands read.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// The heading of the original's per-section flags in `--help`.
const OVERRIDES_HEADING: &str = "Section overrides (the original's flags)";

/// Keeps AWS MFA and role sessions fresh in ~/.aws/credentials, with TOTP codes
/// read from a YubiKey's OATH applet.
#[derive(Debug, Parser)]
#[command(name = "aws-session-daemon", version = crate::VERSION, about, long_about = None)]
#[command(
    after_help = "The original's per-section flags (--rolearn, --serialnumber, ...): see --help."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub overrides: SectionOverrides,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: keep every selected section fresh until stopped (the default).
    Run,
    /// Show what is fresh, what needs refreshing and the work that would take,
    /// without touching the YubiKey or the network.
    Plan(PlanArgs),
    /// Do one reconcile pass, then exit: 0 when every section is fresh.
    Apply,
    /// Show each section's expiry, last refresh, last error and next attempt.
    Status(StatusArgs),
    /// Inspect the expanded configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Talk to the YubiKey's OATH applet directly (setup checks).
    #[command(subcommand)]
    Oath(OathCommand),
    /// Print an `output = "process"` profile's session as `credential_process`
    /// JSON (for ~/.aws/config); refreshes it first when it is not fresh.
    CredentialProcess(CredentialProcessArgs),
    /// Run a command with a section's credentials, as environment variables
    /// or (--server) from a local credentials endpoint that keeps them fresh.
    Exec(ExecArgs),
    /// Print a section's credentials for `eval` in a shell, or as
    /// credential_process JSON; refreshes them first when they are not fresh.
    Export(ExportArgs),
    /// Keep the long-term keys and the OATH applet password in the desktop's
    /// Secret Service (GNOME Keyring, KeePassXC, KWallet) instead of a file.
    #[command(subcommand)]
    Keyring(KeyringCommand),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the man page (roff) to standard output.
    Man,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Print the plan as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when nothing is pending, 2 when changes are pending, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct CredentialProcessArgs {
    /// The profile (a section's profile_name with output = "process").
    #[arg(long)]
    pub profile: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The config section (or its profile_name).
    pub section: String,
    /// Give the command the credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI
    /// and a token file) instead of the keys: the running daemon's when it
    /// serves the section, else one served for the command's lifetime.
    #[arg(long)]
    pub server: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The config section (or its profile_name).
    pub section: String,
    /// env: `export` lines for bash and zsh (`eval "$(...)"`); fish: `set -gx`
    /// lines (`... | source`); json: credential_process JSON.
    #[arg(long, value_enum, default_value = "env")]
    pub format: ExportFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Env,
    Fish,
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every expanded section with its effective settings (secrets masked).
    Show,
    /// Print one expanded value (the original's aws-session-daemon-get-config).
    Get {
        /// The key to print, e.g. assume_role_arn.
        #[arg(long)]
        key: String,
    },
    /// List the sections whose KEY equals VALUE, or every section's KEY
    /// (the original's aws-session-daemon-find-config).
    Find {
        #[arg(long)]
        key: String,
        #[arg(long)]
        value: Option<String>,
    },
    /// Print the ~/.aws/config entries (`[profile NAME]` with
    /// `credential_process`) for every section with output = "process".
    AwsConfig {
        /// Write them into ~/.aws/config (or $AWS_CONFIG_FILE) instead, with
        /// the same locked, byte-preserving editor as the credentials file.
        #[arg(long)]
        write: bool,
        /// With --write: replace a credential_process another program
        /// wrote (without it, such a profile is refused).
        #[arg(long, requires = "write")]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OathCommand {
    /// List readers and the OATH credentials on each key (names, never codes).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the current code of one OATH credential, to compare with the AWS console.
    Code {
        /// The credential's name, e.g. "Amazon Web Services:user@123456789012".
        name: String,
    },
}

/// Secrets are read from a prompt (without echo) or from standard input,
/// never from the command line, where other users could see them. The
/// section is the global `--credentials-section NAME`.
#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Store the long-term keys of --credentials-section NAME: the access key
    /// id and then the secret access key, from a prompt or as two lines on
    /// standard input.
    Set,
    /// Copy the long-term keys of --credentials-section NAME from the
    /// credentials file into the keyring and check that they read back equal.
    Import {
        /// Then remove the keys from the section in the credentials file
        /// (a locked write with a backup) and from its backups.
        #[arg(long)]
        remove_from_file: bool,
    },
    /// List the sections with stored keys (access key ids masked; never a secret).
    List,
    /// Delete the long-term keys of --credentials-section NAME from the keyring.
    Delete,
    /// Store the OATH applet password (oath_password_keyring = true), from a
    /// prompt or one line on standard input.
    SetOathPassword,
    /// Delete the stored OATH applet password.
    DeleteOathPassword,
}

/// Flags that apply to every subcommand.
#[derive(Debug, Args, Default)]
pub struct GlobalArgs {
    /// Config file [default: $XDG_CONFIG_HOME/aws-session-daemon/config.toml].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Credentials file to keep fresh [default: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials].
    #[arg(long, value_name = "PATH")]
    pub credentials_file: Option<PathBuf>,

    /// Only handle this expanded config section (repeatable).
    #[arg(long = "config-section", alias = "config_section", value_name = "NAME")]
    pub config_sections: Vec<String>,

    /// Log level: error, warn, info, debug or trace (default info; warn for
    /// credential-process, whose standard error the AWS CLI shows; error for
    /// exec and export, whose output is the command's or the shell's). Secrets
    /// are never logged, at any level.
    #[arg(long, global = true, env = "AWS_SESSION_DAEMON_LOG")]
    pub log_level: Option<String>,
}

impl Cli {
    /// The log level in force: the flag or environment, else the command's default.
    pub fn log_level(&self) -> &str {
        match (&self.global.log_level, &self.command) {
            (Some(level), _) => level,
            (None, Some(Command::CredentialProcess(_))) => "warn",
            // The error line says why; the command's own output is not
            // to be mixed with a pass's warnings.
            (None, Some(Command::Exec(_) | Command::Export(_))) => "error",
            (None, _) => "info",
        }
    }
}

/// Per-section settings given on the command line; they override the config
/// file for the selected sections, or define a section on their own when
/// there is no config file. Names match the config keys.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = OVERRIDES_HEADING)]
pub struct SectionOverrides {
    /// Role to assume with the MFA session (config: assume_role_arn).
    #[arg(long, visible_alias = "rolearn", value_name = "ARN")]
    pub assume_role_arn: Option<String>,

    /// OATH credential on the YubiKey that gives the MFA code (config: mfa_oath_slot).
    #[arg(long, visible_aliases = ["oath_slot", "oath-slot"], value_name = "NAME")]
    pub mfa_oath_slot: Option<String>,

    /// MFA device ARN, e.g. arn:aws:iam::123456789012:mfa/me (config: mfa_serial_number).
    #[arg(long, visible_alias = "serialnumber", value_name = "ARN")]
    pub mfa_serial_number: Option<String>,

    /// Credentials-file section that receives the session (config: profile_name).
    #[arg(long, visible_alias = "profile_name", value_name = "NAME")]
    pub profile_name: Option<String>,

    /// Long-term access key id (config: access_key_id; prefer credentials_section).
    #[arg(long, value_name = "ID")]
    pub access_key_id: Option<String>,

    /// Long-term secret key (config: secret_access_key). Visible to other users in
    /// the process list: prefer credentials_section.
    #[arg(long, value_name = "SECRET", hide_env_values = true)]
    pub secret_access_key: Option<String>,

    /// GetSessionToken duration in seconds, 900-129600; 0 = assume the role
    /// directly with the MFA code (config: mfa_session_duration).
    #[arg(long, value_name = "SECONDS")]
    pub mfa_session_duration: Option<i64>,

    /// AssumeRole duration in seconds (config: assume_session_duration).
    #[arg(long, value_name = "SECONDS")]
    pub assume_session_duration: Option<i64>,

    /// Credentials-file section holding the long-term keys (config: credentials_section).
    #[arg(long, alias = "credentials_section", value_name = "NAME")]
    pub credentials_section: Option<String>,

    /// SourceIdentity passed to AssumeRole (config: assume_role_source_identity).
    #[arg(long, value_name = "ID")]
    pub assume_role_source_identity: Option<String>,

    /// RoleSessionName passed to AssumeRole (config: assume_role_role_session_name).
    #[arg(long, value_name = "NAME")]
    pub assume_role_role_session_name: Option<String>,

    /// Managed policy ARN to scope the role session (repeatable; config: assume_role_policy_arns).
    #[arg(
        long = "assume-role-policy-arns",
        alias = "assume-role-policy-arn",
        value_name = "ARN"
    )]
    pub assume_role_policy_arns: Vec<String>,

    /// Inline session policy, JSON or @file (config: assume_role_policy).
    #[arg(long, value_name = "JSON|@FILE")]
    pub assume_role_policy: Option<String>,

    /// ExternalId passed to AssumeRole (config: assume_role_external_id).
    #[arg(long, value_name = "ID")]
    pub assume_role_external_id: Option<String>,

    /// AWS region for STS (config: region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// STS endpoint URL (config: sts_endpoint).
    #[arg(long, value_name = "URL")]
    pub sts_endpoint: Option<String>,

    /// Command that prints an MFA code, instead of the YubiKey (config: mfa_process).
    #[arg(long, value_name = "COMMAND")]
    pub mfa_process: Option<String>,

    /// Substring of the reader name of the YubiKey to use (config: yubikey_reader).
    #[arg(long, value_name = "TEXT")]
    pub yubikey_reader: Option<String>,

    /// Command printing the OATH applet password (config: oath_password_command).
    #[arg(long, value_name = "COMMAND")]
    pub oath_password_command: Option<String>,

    /// File holding the OATH applet password (config: oath_password_file).
    #[arg(long, value_name = "PATH")]
    pub oath_password_file: Option<String>,
}

impl SectionOverrides {
    /// The overrides as (config key, value) pairs, in the config's own terms,
    /// so that the config module validates them exactly like file values.
    pub fn to_pairs(&self) -> Vec<(&'static str, crate::config::RawValue)> {
        use crate::config::RawValue as V;
        let mut pairs = Vec::new();
        let mut text = |key: &'static str, value: &Option<String>| {
            if let Some(v) = value {
                pairs.push((key, V::String(v.clone())));
            }
        };
        text("assume_role_arn", &self.assume_role_arn);
        text("mfa_oath_slot", &self.mfa_oath_slot);
        text("mfa_serial_number", &self.mfa_serial_number);
        text("profile_name", &self.profile_name);
        text("access_key_id", &self.access_key_id);
        text("secret_access_key", &self.secret_access_key);
        text("credentials_section", &self.credentials_section);
        text(
            "assume_role_source_identity",
            &self.assume_role_source_identity,
        );
        text(
            "assume_role_role_session_name",
            &self.assume_role_role_session_name,
        );
        text("assume_role_policy", &self.assume_role_policy);
        text("assume_role_external_id", &self.assume_role_external_id);
        text("region", &self.region);
        text("sts_endpoint", &self.sts_endpoint);
        text("mfa_process", &self.mfa_process);
        text("yubikey_reader", &self.yubikey_reader);
        text("oath_password_command", &self.oath_password_command);
        text("oath_password_file", &self.oath_password_file);
        if let Some(v) = self.mfa_session_duration {
            pairs.push(("mfa_session_duration", V::Integer(v)));
        }
        if let Some(v) = self.assume_session_duration {
            pairs.push(("assume_session_duration", V::Integer(v)));
        }
        if !self.assume_role_policy_arns.is_empty() {
            pairs.push((
                "assume_role_policy_arns",
                V::StringList(self.assume_role_policy_arns.clone()),
            ));
        }
        pairs
    }
}

// The options a command takes besides its own, by argument id.
const CONFIG: &[&str] = &["config"];
const SECTIONS: &[&str] = &["config_sections"];
const CREDENTIALS_FILE: &[&str] = &["credentials_file"];
const KEY: &[&str] = &[
    "yubikey_reader",
    "oath_password_command",
    "oath_password_file",
];
const CREDENTIALS_SECTION: &[&str] = &["credentials_section"];

/// What the command at `path` (`["keyring", "import"]`) reads of the
/// top-level options: the ids it takes under its own options, and whether
/// it takes every section override (under their heading). What it does
/// not read, it refuses, so that nothing typed is silently ignored.
fn options_of(path: &[&str]) -> (Vec<&'static str>, bool) {
    let (groups, overrides): (&[&[&str]], bool) = match path {
        // Plan or refresh sections: the config, the files, the overrides.
        ["run" | "plan" | "apply" | "status" | "credential-process"] => {
            (&[CONFIG, SECTIONS, CREDENTIALS_FILE], true)
        }
        // One section, named on the command line, refreshed if need be.
        ["exec" | "export"] => (&[CONFIG, CREDENTIALS_FILE], false),
        // The expanded config, overrides applied; no credentials file.
        ["config", _] => (&[CONFIG, SECTIONS], true),
        // The key: flags first, else what the selected sections say.
        ["oath", _] => (&[CONFIG, SECTIONS, KEY], false),
        ["keyring", "set" | "delete"] => (&[CREDENTIALS_SECTION], false),
        // Reads the keys from the credentials file, backups from the config.
        ["keyring", "import"] => (&[CONFIG, CREDENTIALS_FILE, CREDENTIALS_SECTION], false),
        _ => (&[], false),
    };
    (groups.concat(), overrides)
}

/// The ids of the section overrides.
fn override_ids() -> Vec<String> {
    SectionOverrides::augment_args(clap::Command::new("overrides"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// The top-level options a subcommand may take (all but help, version and
/// the global log level).
fn shared_args(top: &clap::Command) -> Vec<Arg> {
    top.get_arguments()
        .filter(|a| a.get_long().is_some() && !a.is_global_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .cloned()
        .collect()
}

/// The clap tree: the derive's, with the shared options copied onto the
/// commands that use them; the section overrides only in `--help`.
pub(crate) fn command() -> clap::Command {
    let top = Cli::command();
    let shared = shared_args(&top);
    let overrides = override_ids();
    let hide = |a: Arg| match overrides.iter().any(|id| id == a.get_id()) {
        true => a.hide_short_help(true),
        false => a,
    };
    top.mut_args(hide)
        .mut_subcommands(|sub| equip(sub, &mut Vec::new(), &shared, &overrides))
}

fn equip(
    mut cmd: clap::Command,
    path: &mut Vec<String>,
    shared: &[Arg],
    overrides: &[String],
) -> clap::Command {
    path.push(cmd.get_name().to_string());
    if cmd.has_subcommands() {
        cmd = cmd.mut_subcommands(|sub| equip(sub, path, shared, overrides));
    } else {
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        let (ids, takes_overrides) = options_of(&names);
        let find = |id: &str| shared.iter().find(|a| a.get_id() == id).cloned();
        for id in &ids {
            let arg = find(id).unwrap_or_else(|| panic!("no option {id}"));
            cmd = cmd.arg(arg.help_heading(None::<&str>));
        }
        if takes_overrides {
            for id in overrides.iter().filter(|id| !ids.contains(&id.as_str())) {
                cmd = cmd.arg(find(id).expect("an override").hide_short_help(true));
            }
            cmd = cmd.after_help(
                "The original's per-section flags (--rolearn, --serialnumber, ...): see --help.",
            );
        }
    }
    path.pop();
    cmd
}

/// Parses the process's arguments; prints the error or help and exits on
/// failure, as clap does.
pub(crate) fn parse() -> Cli {
    parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// Parses `args` (the program's name first) into one [`Cli`]: the shared
/// options from before and after the subcommand together (after wins), and
/// an error for one given before a subcommand that does not take it.
pub(crate) fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    let mut path = Vec::new();
    let mut leaf = &matches;
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name);
        leaf = sub;
    }
    if path.is_empty() {
        return Ok(cli);
    }
    let top = Cli::command();
    let shared = shared_args(&top);
    let (mut taken, takes_overrides) = options_of(&path);
    let overrides = override_ids();
    if takes_overrides {
        taken.extend(overrides.iter().map(String::as_str));
    }
    let given = |m: &ArgMatches, arg: &Arg| {
        let id = arg.get_id().as_str();
        m.ids().any(|known| known == id)
            && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    };
    if let Some(arg) = shared
        .iter()
        .find(|a| given(&matches, a) && !taken.contains(&a.get_id().as_str()))
    {
        let long = arg.get_long().unwrap_or_default();
        return Err(cmd.error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "--{long} does not apply to `{}`; `aws-session-daemon {} --help` lists what it takes",
                path.join(" "),
                path.join(" ")
            ),
        ));
    }
    // Parse the shared options once more, from both places, on a command
    // that has only them: clap then converts and checks them as usual.
    let mut tokens = vec![OsString::from("aws-session-daemon")];
    for (m, only_taken) in [(&matches, false), (leaf, true)] {
        for arg in shared.iter().filter(|a| given(m, a)) {
            if only_taken && !taken.contains(&arg.get_id().as_str()) {
                continue;
            }
            let long = arg.get_long().expect("shared options are long");
            for value in m.get_raw(arg.get_id().as_str()).into_iter().flatten() {
                let mut token = OsString::from(format!("--{long}="));
                token.push(value);
                tokens.push(token);
            }
        }
    }
    let flat = clap::Command::new("aws-session-daemon")
        .args(
            top.get_arguments()
                .filter(|a| a.get_long().is_some())
                .cloned(),
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true)
        .try_get_matches_from(tokens)?;
    // The log level is global: clap already has it from either place.
    let log_level = cli.global.log_level.take();
    cli.global = GlobalArgs::from_arg_matches(&flat)?;
    cli.global.log_level = log_level;
    cli.overrides = SectionOverrides::from_arg_matches(&flat)?;
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        parse_from(std::iter::once("aws-session-daemon").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn original_spellings_are_accepted() {
        let cli = parse(&[
            "--rolearn",
            "arn:aws:iam::123456789012:role/R",
            "--oath_slot=Amazon Web Services:me@123456789012",
            "--serialnumber",
            "arn:aws:iam::123456789012:mfa/me",
            "--profile_name=work",
            "--mfa-session-duration",
            "0",
            "--config-section=prod",
        ])
        .unwrap();
        assert!(cli.command.is_none(), "no subcommand means run");
        assert_eq!(cli.overrides.profile_name.as_deref(), Some("work"));
        assert_eq!(cli.overrides.mfa_session_duration, Some(0));
        assert_eq!(cli.global.config_sections, ["prod"]);
        assert_eq!(cli.overrides.to_pairs().len(), 5);
    }

    #[test]
    fn options_work_after_the_subcommand() {
        let cli = parse(&[
            "plan",
            "--json",
            "--config-section",
            "a",
            "--config-section",
            "b",
            "--oath-slot",
            "x",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Plan(PlanArgs { json: true, .. }))
        ));
        assert_eq!(cli.global.config_sections, ["a", "b"]);
        assert_eq!(cli.overrides.mfa_oath_slot.as_deref(), Some("x"));
    }

    #[test]
    fn options_before_the_subcommand_join_those_after_it() {
        let cli = parse(&[
            "--config",
            "before.toml",
            "--region",
            "eu-west-1",
            "--config-section",
            "a",
            "--assume-role-policy-arns",
            "arn:aws:iam::aws:policy/A",
            "status",
            "--region",
            "us-east-2",
            "--config-section",
            "b",
            "--assume-role-policy-arns",
            "arn:aws:iam::aws:policy/B",
        ])
        .unwrap();
        assert_eq!(cli.global.config.as_deref(), Some("before.toml".as_ref()));
        assert_eq!(
            cli.overrides.region.as_deref(),
            Some("us-east-2"),
            "after wins"
        );
        assert_eq!(cli.global.config_sections, ["a", "b"]);
        assert_eq!(cli.overrides.assume_role_policy_arns.len(), 2);

        for args in [
            &["apply", "--log-level", "debug"][..],
            &["--log-level", "debug", "keyring", "list"],
            &["--log-level=debug", "--config", "c.toml", "plan"],
        ] {
            assert_eq!(parse(args).unwrap().log_level(), "debug", "{args:?}");
        }

        let cli = parse(&["--yubikey-reader", "Yubico", "oath", "list"]).unwrap();
        assert_eq!(cli.overrides.yubikey_reader.as_deref(), Some("Yubico"));
        let cli = parse(&["keyring", "set", "--credentials_section", "prod"]).unwrap();
        assert_eq!(cli.overrides.credentials_section.as_deref(), Some("prod"));
    }

    #[test]
    fn an_option_a_command_does_not_use_is_refused_wherever_it_stands() {
        for args in [
            &["--rolearn", "arn:aws:iam::1:role/R", "completions", "bash"][..],
            &["completions", "bash", "--config", "x.toml"],
            &["--region", "eu-west-1", "oath", "list"],
            &["oath", "list", "--rolearn", "arn:aws:iam::1:role/R"],
            &["keyring", "list", "--credentials-section", "prod"],
            &["keyring", "set", "--secret-access-key", "not-here"],
            &["--credentials-file", "c", "config", "show"],
            &["man", "--config-section", "a"],
        ] {
            let error = parse(args).expect_err(&format!("{args:?} is refused"));
            assert!(
                matches!(
                    error.kind(),
                    clap::error::ErrorKind::ArgumentConflict
                        | clap::error::ErrorKind::UnknownArgument
                ),
                "{args:?}: {error}"
            );
            assert!(!error.to_string().contains("not-here"), "{error}");
        }
    }

    /// The leaf commands of the tree, as paths.
    fn leaves(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            path.push(sub.get_name().to_string());
            if sub.has_subcommands() {
                leaves(sub, path, out);
            } else {
                out.push((path.join(" "), sub.clone()));
            }
            path.pop();
        }
    }

    /// Each command's `--help` lists the options it uses and no other,
    /// written out here from what each command's code reads (the second
    /// statement of the rule in `options_of`).
    #[test]
    fn each_command_lists_only_the_options_it_uses() {
        const CONFIG: &str = "--config <PATH>";
        const SECTIONS: &str = "--config-section <NAME>";
        const FILE: &str = "--credentials-file <PATH>";
        const READER: &str = "--yubikey-reader <TEXT>";
        const SECTION: &str = "--credentials-section <NAME>";
        const ROLE: &str = "--assume-role-arn <ARN>";
        const HEADING: &str = "Section overrides (the original's flags):";
        let every = [CONFIG, SECTIONS, FILE, READER, SECTION, ROLE, HEADING];
        let plans = &[CONFIG, SECTIONS, FILE, READER, SECTION, ROLE, HEADING][..];
        let expected: &[(&str, &[&str])] = &[
            ("run", plans),
            ("plan", plans),
            ("apply", plans),
            ("status", plans),
            (
                "config show",
                &[CONFIG, SECTIONS, READER, SECTION, ROLE, HEADING],
            ),
            (
                "config get",
                &[CONFIG, SECTIONS, READER, SECTION, ROLE, HEADING],
            ),
            (
                "config find",
                &[CONFIG, SECTIONS, READER, SECTION, ROLE, HEADING],
            ),
            (
                "config aws-config",
                &[CONFIG, SECTIONS, READER, SECTION, ROLE, HEADING],
            ),
            ("oath list", &[CONFIG, SECTIONS, READER]),
            ("oath code", &[CONFIG, SECTIONS, READER]),
            ("credential-process", plans),
            ("exec", &[CONFIG, FILE]),
            ("export", &[CONFIG, FILE]),
            ("keyring set", &[SECTION]),
            ("keyring import", &[CONFIG, FILE, SECTION]),
            ("keyring list", &[]),
            ("keyring delete", &[SECTION]),
            ("keyring set-oath-password", &[]),
            ("keyring delete-oath-password", &[]),
            ("completions", &[]),
            ("man", &[]),
        ];
        let mut found = Vec::new();
        leaves(&command(), &mut Vec::new(), &mut found);
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        let listed: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, listed, "every command is in this table");
        for ((name, mut cmd), (_, uses)) in found.into_iter().zip(expected) {
            let help = cmd.render_long_help().to_string();
            for option in every {
                assert_eq!(
                    help.contains(option),
                    uses.contains(&option),
                    "`{name} --help` and {option}:\n{help}"
                );
            }
            let short = cmd.render_help().to_string();
            assert!(
                !short.contains(ROLE),
                "`{name} -h` shows the overrides:\n{short}"
            );
            assert!(short.lines().count() <= 40, "`{name} -h`:\n{short}");
        }
    }

    #[test]
    fn top_level_short_help_fits_a_screen_and_long_help_has_the_overrides() {
        let mut cmd = command();
        let short = cmd.render_help().to_string();
        assert!(
            short.lines().count() <= 40,
            "{} lines:\n{short}",
            short.lines().count()
        );
        assert!(
            !short.contains("--assume-role-arn") && short.contains("--rolearn, --serialnumber"),
            "{short}"
        );
        let long = cmd.render_long_help().to_string();
        let heading = long
            .find("Section overrides (the original's flags):")
            .expect("the heading");
        for flag in [
            "--rolearn",
            "--serialnumber",
            "--oath_slot",
            "--profile_name",
        ] {
            let at = long.find(flag).unwrap_or_else(|| panic!("{flag}"));
            assert!(at > heading, "{flag} under the heading");
        }
    }
}
