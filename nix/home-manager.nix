# home-manager module: services.aws-session-daemon.
#
# Writes ~/.config/aws-session-daemon/config.toml from `settings` and runs the
# daemon as a systemd user service, sandboxed like
# examples/systemd/aws-session-daemon.service (tests/packaging.rs checks that
# both carry the same directives).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.aws-session-daemon;
  awscli = (config.programs or { }).awscli or { };
  helpers = import ./lib.nix;
  tomlFormat = pkgs.formats.toml { };
  # longTermKeys, output and the endpoint become top-level keys of the config.
  settings =
    cfg.settings
    // (if cfg.longTermKeys != null then { long_term_keys = cfg.longTermKeys; } else { })
    // (if cfg.output != null then { output = cfg.output; } else { })
    // (
      if cfg.endpoint.address != null then
        {
          endpoint = cfg.endpoint.address;
          endpoint_section_tokens = cfg.endpoint.sectionTokens;
          endpoint_socket = cfg.endpoint.unixSocket;
        }
      else
        { }
    );
  configFile = tomlFormat.generate "aws-session-daemon-config.toml" settings;

  args =
    lib.optionals (cfg.credentialsFile != null) [ "--credentials-file=${cfg.credentialsFile}" ]
    ++ [ "--log-level=${cfg.logLevel}" ]
    ++ cfg.extraArgs;

  # The directory that holds the credentials file must be writable: the
  # daemon writes a temporary file, backups and a lock file beside it.
  credentialsDirs =
    [ "-%h/.aws" ]
    ++ lib.optional (cfg.credentialsFile != null) "-${dirOf cfg.credentialsFile}";
in
{
  options.services.aws-session-daemon = {
    enable = lib.mkEnableOption "aws-session-daemon, which keeps AWS session credentials in ~/.aws/credentials fresh";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The aws-session-daemon package to run.";
    };

    settings = lib.mkOption {
      inherit (tomlFormat) type;
      default = { };
      example = lib.literalExpression ''
        {
          mfa_serial_number = "arn:aws:iam::123456789012:mfa/me";
          mfa_oath_slot = "Amazon Web Services:me@123456789012";
          org = {
            assume_role_arn = "arn:aws:iam::{section}:role/Admin";
            "111111111111" = { };
            "222222222222" = { profile_name = "prod"; };
          };
        }
      '';
      description = ''
        Contents of ~/.config/aws-session-daemon/config.toml (see
        docs/configuration.md). Top-level values are defaults for every section, a
        table without sub-tables is a section, a table with sub-tables is a
        group. Nothing is written when this is empty, so that a hand-written
        config file stays in place. Never put secret_access_key here: the Nix
        store is world-readable.
      '';
    };

    longTermKeys = lib.mkOption {
      type = lib.types.nullOr (
        lib.types.enum [
          "file"
          "keyring"
        ]
      );
      default = null;
      example = "keyring";
      description = ''
        Where the IAM user's long-term keys are, for every section:
        "file" (the credentials file) or "keyring" (the desktop keyring through
        the Secret Service; store them with `aws-session-daemon keyring import
        --credentials-section default --remove-from-file`). Null leaves it to
        settings (default "file").
      '';
    };

    output = lib.mkOption {
      type = lib.types.nullOr (
        lib.types.enum [
          "file"
          "process"
        ]
      );
      default = null;
      example = "process";
      description = ''
        Where every section's session goes: "file" (~/.aws/credentials) or
        "process" (the runtime cache only, served to the AWS CLI and SDKs by
        `credential_process`; add the profiles with `aws-session-daemon config
        aws-config --write`). Null leaves it to settings (default "file").
      '';
    };

    endpoint = {
      address = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "127.0.0.1:9911";
        description = ''
          Serve every section's session on a local credentials endpoint (the
          container-credentials protocol of the AWS SDKs and the AWS CLI) at
          this loopback address; port 0 picks a free port. Null (the
          default) serves none. `aws-session-daemon status` shows the URL
          and the token file; docs/endpoint.md explains containers, VMs and
          `exec --server`.
        '';
      };
      sectionTokens = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Also write a token per section, which opens that section's URL only.";
      };
      unixSocket = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Also serve the endpoint on the Unix socket endpoint.sock in the runtime directory.";
      };
    };

    credentialsFile = lib.mkOption {
      type = with lib.types; nullOr (either path str);
      default = null;
      # toString keeps a path literal out of the Nix store: the daemon must
      # write to the real file.
      apply = v: if v == null then null else toString v;
      example = "%h/.aws/credentials-work";
      description = ''
        Credentials file to keep fresh (--credentials-file); null means
        $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials. An absolute
        path, or one starting with the systemd specifier %h (home directory).
        Its directory is made writable in the service's sandbox.
      '';
    };

    logLevel = lib.mkOption {
      type = lib.types.enum [
        "error"
        "warn"
        "info"
        "debug"
        "trace"
      ];
      default = "info";
      description = "Log level (--log-level). Secrets are never logged, at any level.";
    };

    extraArgs = lib.mkOption {
      type = with lib.types; listOf str;
      default = [ ];
      example = [
        "--config-section=111111111111"
        "--config-section=222222222222"
      ];
      description = ''
        Further command-line arguments. They are visible to every user (unit
        file, process list), so never a secret.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = helpers.secretKeyPaths cfg.settings == [ ];
        message = helpers.secretKeyMessage "services.aws-session-daemon.settings" cfg.settings;
      }
      {
        assertion = helpers.findPaths cfg.settings == [ ];
        message = helpers.pathValueMessage "services.aws-session-daemon.settings" cfg.settings;
      }
      {
        assertion = helpers.storePasswordFiles cfg.settings == [ ];
        message =
          helpers.storePasswordFileMessage "services.aws-session-daemon.settings"
            (helpers.storePasswordFiles cfg.settings);
      }
      {
        assertion = helpers.multiLineArgs args == [ ];
        message =
          "services.aws-session-daemon: an argument holds a line break ("
          + builtins.concatStringsSep ", " (map builtins.toJSON (helpers.multiLineArgs args))
          + "). systemd's ExecStart= is one line: a line break would end it and begin a directive"
          + " of its own. Give each value without line breaks.";
      }
      {
        # home-manager's own AWS module, when it writes the credentials file
        # the daemon would keep fresh.
        assertion = !(awscli.enable or false && (awscli.credentials or { }) != { } && cfg.credentialsFile == null);
        message = helpers.awscliCredentialsMessage;
      }
      {
        assertion = helpers.secretArgs cfg.extraArgs == [ ];
        message =
          "services.aws-session-daemon.extraArgs: --secret-access-key would put the secret key in the"
          + " world-readable unit file and the process list. Keep the long-term keys in"
          + " ~/.aws/credentials and name their section with credentials_section.";
      }
    ];

    home.packages = [ cfg.package ];

    xdg.configFile."aws-session-daemon/config.toml" = lib.mkIf (settings != { }) {
      source = configFile;
    };

    systemd.user.services.aws-session-daemon = {
      Unit = {
        Description = "Keep AWS session credentials in ~/.aws/credentials fresh";
        # pcscd is a system unit, which a user unit can neither order after nor
        # pull in: enable it system-wide (NixOS: services.pcscd.enable = true).
        After = [ "dbus.socket" ];
        StartLimitIntervalSec = "10min";
        StartLimitBurst = 5;
        # home-manager restarts the service when the generated config changes
        # (the daemon would also notice the new file by itself); the MFA
        # session survives the restart in the runtime directory.
        X-Restart-Triggers = lib.optional (settings != { }) "${configFile}";
      };

      Service = {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = lib.concatStringsSep " " (
          [ (lib.getExe cfg.package) ] ++ map helpers.escapeSystemdExecArg args
        );
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        Restart = "on-failure";
        RestartSec = "10s";
        TimeoutStartSec = "2min";
        TimeoutStopSec = "15s";
        # The loop pings at each pass and while idle; see the example unit.
        WatchdogSec = "15min";
        UMask = "0077";
        LimitCORE = "0";
        MemoryMax = "256M";
        TasksMax = 64;

        RuntimeDirectory = "aws-session-daemon";
        RuntimeDirectoryMode = "0700";
        RuntimeDirectoryPreserve = "yes";

        # The sandbox; see examples/systemd/aws-session-daemon.service for why
        # each line is there.
        PrivateUsers = true;
        NoNewPrivileges = true;
        PrivateTmp = true;
        ProtectSystem = "strict";
        ProtectHome = "read-only";
        ReadWritePaths = credentialsDirs ++ [ "-%t/aws-session-daemon" ];
        ProtectKernelModules = true;
        ProtectHostname = true;
        PrivateDevices = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        KeyringMode = "private";
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
        ];
        RestrictNamespaces = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged @resources"
        ];
        SystemCallErrorNumber = "EPERM";
      };

      Install.WantedBy = [ "default.target" ];
    };
  };
}
