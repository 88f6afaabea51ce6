//! Command-line interface.
//!
//! Every spelling the Python original accepted is kept as an alias, so that
//! existing systemd units (`aws-session-daemon --config-section=NAME`) and
//! supervisord entries work unchanged. With no subcommand the program runs
//! the daemon, as the original did.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps AWS MFA and role sessions fresh in ~/.aws/credentials, with TOTP codes
/// read from a YubiKey's OATH applet.
#[derive(Debug, Parser)]
#[command(name = "aws-session-daemon", version = crate::VERSION, about, long_about = None)]
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
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Credentials file to keep fresh [default: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials].
    #[arg(long, global = true, value_name = "PATH")]
    pub credentials_file: Option<PathBuf>,

    /// Only handle this expanded config section (repeatable).
    #[arg(
        long = "config-section",
        alias = "config_section",
        global = true,
        value_name = "NAME"
    )]
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
pub struct SectionOverrides {
    /// Role to assume with the MFA session (config: assume_role_arn).
    #[arg(long, visible_alias = "rolearn", global = true, value_name = "ARN")]
    pub assume_role_arn: Option<String>,

    /// OATH credential on the YubiKey that gives the MFA code (config: mfa_oath_slot).
    #[arg(long, visible_aliases = ["oath_slot", "oath-slot"], global = true, value_name = "NAME")]
    pub mfa_oath_slot: Option<String>,

    /// MFA device ARN, e.g. arn:aws:iam::123456789012:mfa/me (config: mfa_serial_number).
    #[arg(
        long,
        visible_alias = "serialnumber",
        global = true,
        value_name = "ARN"
    )]
    pub mfa_serial_number: Option<String>,

    /// Credentials-file section that receives the session (config: profile_name).
    #[arg(
        long,
        visible_alias = "profile_name",
        global = true,
        value_name = "NAME"
    )]
    pub profile_name: Option<String>,

    /// Long-term access key id (config: access_key_id; prefer credentials_section).
    #[arg(long, global = true, value_name = "ID")]
    pub access_key_id: Option<String>,

    /// Long-term secret key (config: secret_access_key). Visible to other users in
    /// the process list: prefer credentials_section.
    #[arg(long, global = true, value_name = "SECRET", hide_env_values = true)]
    pub secret_access_key: Option<String>,

    /// GetSessionToken duration in seconds, 900-129600; 0 = assume the role
    /// directly with the MFA code (config: mfa_session_duration).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub mfa_session_duration: Option<i64>,

    /// AssumeRole duration in seconds (config: assume_session_duration).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub assume_session_duration: Option<i64>,

    /// Credentials-file section holding the long-term keys (config: credentials_section).
    #[arg(
        long,
        alias = "credentials_section",
        global = true,
        value_name = "NAME"
    )]
    pub credentials_section: Option<String>,

    /// SourceIdentity passed to AssumeRole (config: assume_role_source_identity).
    #[arg(long, global = true, value_name = "ID")]
    pub assume_role_source_identity: Option<String>,

    /// RoleSessionName passed to AssumeRole (config: assume_role_role_session_name).
    #[arg(long, global = true, value_name = "NAME")]
    pub assume_role_role_session_name: Option<String>,

    /// Managed policy ARN to scope the role session (repeatable; config: assume_role_policy_arns).
    #[arg(
        long = "assume-role-policy-arns",
        alias = "assume-role-policy-arn",
        global = true,
        value_name = "ARN"
    )]
    pub assume_role_policy_arns: Vec<String>,

    /// Inline session policy, JSON or @file (config: assume_role_policy).
    #[arg(long, global = true, value_name = "JSON|@FILE")]
    pub assume_role_policy: Option<String>,

    /// ExternalId passed to AssumeRole (config: assume_role_external_id).
    #[arg(long, global = true, value_name = "ID")]
    pub assume_role_external_id: Option<String>,

    /// AWS region for STS (config: region).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// STS endpoint URL (config: sts_endpoint).
    #[arg(long, global = true, value_name = "URL")]
    pub sts_endpoint: Option<String>,

    /// Command that prints an MFA code, instead of the YubiKey (config: mfa_process).
    #[arg(long, global = true, value_name = "COMMAND")]
    pub mfa_process: Option<String>,

    /// Substring of the reader name of the YubiKey to use (config: yubikey_reader).
    #[arg(long, global = true, value_name = "TEXT")]
    pub yubikey_reader: Option<String>,

    /// Command printing the OATH applet password (config: oath_password_command).
    #[arg(long, global = true, value_name = "COMMAND")]
    pub oath_password_command: Option<String>,

    /// File holding the OATH applet password (config: oath_password_file).
    #[arg(long, global = true, value_name = "PATH")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn original_spellings_are_accepted() {
        let cli = Cli::try_parse_from([
            "aws-session-daemon",
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
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "aws-session-daemon",
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
}
