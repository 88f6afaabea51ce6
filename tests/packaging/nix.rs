//! The Nix package, home-manager module and flake, evaluated by
//! nix-instantiate without nixpkgs or the network.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::{
    BIN, MAIN_UNIT, ROOT, Unit, joined, parse_unit, path, read, require, run, service_value, text,
};

pub(crate) fn nix_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(path("nix"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    files.sort();
    files
}

/// On a machine where Nix never ran, the first evaluation creates
/// /nix/var/nix (its profiles and gcroots links); two tests doing that at
/// once collide ("creating symlink ... File exists", seen on a fresh
/// Debian 12). So one evaluation runs first, alone.
fn nix_state_made() {
    static MADE: std::sync::Once = std::sync::Once::new();
    MADE.call_once(|| {
        let output = run(Command::new("nix-instantiate").args(["--eval", "-E", "1"]));
        assert!(
            output.status.success(),
            "nix-instantiate --eval -E 1 failed:\n{}",
            text(&output.stderr)
        );
    });
}

/// `nix-instantiate --eval --strict --json` of a function of `root` (this
/// checkout); pure: no nixpkgs, no network.
fn nix_eval(expression: &str) -> serde_json::Value {
    require("nix-instantiate", "apt-get install -y nix-bin");
    nix_state_made();
    let output = run(Command::new("nix-instantiate")
        .args([
            "--eval", "--strict", "--json", "--argstr", "root", ROOT, "-E",
        ])
        .arg(expression));
    assert!(
        output.status.success(),
        "nix-instantiate --eval failed:\n{}\n--- expression ---\n{expression}",
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn nix_files_parse() {
    require("nix-instantiate", "apt-get install -y nix-bin");
    let files = nix_files();
    for expected in ["package.nix", "home-manager.nix", "flake.nix", "lib.nix"] {
        assert!(
            files.iter().any(|f| f.ends_with(expected)),
            "nix/{expected} is missing"
        );
    }
    nix_state_made();
    for file in files {
        let output = run(Command::new("nix-instantiate").arg("--parse").arg(&file));
        assert!(
            output.status.success(),
            "{}: {}",
            file.display(),
            text(&output.stderr)
        );
    }
}

#[test]
fn nix_secret_key_check_finds_keys_at_any_depth() {
    let result = nix_eval(
        r#"{ root }:
        let h = import (root + "/nix/lib.nix"); in {
          clean = h.secretKeyPaths {
            mfa_serial_number = "arn:aws:iam::123456789012:mfa/me";
            credentials_section = "default";
            org = { assume_role_arn = "arn:aws:iam::{section}:role/Admin"; "111111111111" = { }; };
            list = [ { a = 1; } 2 ];
          };
          nested = h.secretKeyPaths {
            org = {
              dev = { "111111111111" = { secret_access_key = "x"; }; };
              arrays = [ { } { "222222222222" = [ { secret_access_key = "y"; } ]; } ];
            };
          };
          top = h.secretKeyPaths { secret_access_key = "z"; access_key_id = "AKIA"; };
          spellings = h.secretKeyPaths {
            a = { aws_secret_access_key = "x"; };
            b = { Session-Token = "t"; my_password = "p"; };
            c = { oath_password_file = "/home/me/pw"; oath_password_command = "pass show x"; };
          };
          pathValues = h.findPaths { a = { oath_password_file = ./.; }; b = "/home/me/pw"; c = [ { d = ./.; } ]; };
          pathMessage = h.pathValueMessage "opt" { a = ./.; };
          message = h.secretKeyMessage "services.aws-session-daemon.settings" { a.secret_access_key = "x"; };
          noMessage = h.secretKeyMessage "x" { a.b = 1; };
          args = h.secretArgs [ "--secret-access-key=x" "--secret-access-key" "--access-key-id=y" "--config-section=s" ];
          escaped = map h.escapeSystemdExecArg [ "--config-section=a b" "say \"hi\"" "back\\slash" "$HOME" "%h/.aws" ];
        }"#,
    );
    assert_eq!(result["clean"], serde_json::json!([]));
    assert_eq!(
        result["nested"],
        serde_json::json!([
            [
                "org",
                "arrays",
                "1",
                "222222222222",
                "0",
                "secret_access_key"
            ],
            ["org", "dev", "111111111111", "secret_access_key"],
        ])
    );
    assert_eq!(result["top"], serde_json::json!([["secret_access_key"]]));
    assert_eq!(
        result["spellings"],
        serde_json::json!([
            ["a", "aws_secret_access_key"],
            ["b", "Session-Token"],
            ["b", "my_password"],
        ]),
        "every spelling of a secret; not the keys that name a password's source"
    );
    assert_eq!(
        result["pathValues"],
        serde_json::json!([["a", "oath_password_file"], ["c", "0", "d"]])
    );
    let message = result["pathMessage"].as_str().unwrap();
    assert!(message.contains("world-readable Nix store"), "{message}");
    let message = result["message"].as_str().unwrap();
    assert!(
        message.contains("a.secret_access_key") && message.contains("credentials_section"),
        "{message}"
    );
    assert_eq!(result["noMessage"], "");
    assert_eq!(
        result["args"],
        serde_json::json!(["--secret-access-key=x", "--secret-access-key"])
    );
    assert_eq!(
        result["escaped"],
        serde_json::json!([
            "\"--config-section=a b\"",
            "\"say \\\"hi\\\"\"",
            "\"back\\\\slash\"",
            "\"$$HOME\"",
            "\"%h/.aws\"",
        ])
    );
}

#[test]
fn nix_package_reads_version_and_filters_source() {
    // package.nix called with just enough of nixpkgs' interface stubbed out
    // (buildRustPackage returns its arguments), to check what it passes.
    let package = nix_eval(
        r#"{ root }:
        let
          lib = {
            importTOML = p: builtins.fromTOML (builtins.readFile p);
            cleanSource = p: p;
            cleanSourceWith = a: a;
            removePrefix = pre: s:
              let n = builtins.stringLength pre; in
              if builtins.substring 0 n s == pre then builtins.substring n (builtins.stringLength s) s else s;
            optionalString = c: s: if c then s else "";
            licenses.mit = "mit";
            platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
          };
          pkg = import (root + "/nix/package.nix") {
            inherit lib;
            stdenv = { buildPlatform.canExecute = _: true; hostPlatform = { }; };
            rustPlatform.buildRustPackage = args: args;
            pkg-config = "pkg-config";
            pcsclite = "pcsclite";
            installShellFiles = "installShellFiles";
          };
          keep = p: pkg.src.filter (root + "/" + p) "directory";
        in {
          inherit (pkg) pname version doCheck postInstall meta nativeBuildInputs buildInputs;
          kept = builtins.filter keep [ "src" "tests" "examples" "target" "nix" "fuzz/target" "src/nix" ];
        }"#,
    );
    assert_eq!(package["pname"], "aws-session-daemon");
    assert_eq!(package["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(package["doCheck"], false);
    assert_eq!(package["meta"]["mainProgram"], "aws-session-daemon");
    assert_eq!(package["meta"]["license"], "mit");
    assert_eq!(
        package["meta"]["description"],
        env!("CARGO_PKG_DESCRIPTION")
    );
    assert_eq!(package["buildInputs"], serde_json::json!(["pcsclite"]));
    assert_eq!(
        package["nativeBuildInputs"],
        serde_json::json!(["pkg-config", "installShellFiles"])
    );
    assert_eq!(
        package["kept"],
        serde_json::json!(["src", "tests", "examples", "src/nix"])
    );
    let post_install = package["postInstall"].as_str().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            post_install.contains(&format!(
                "--{shell} <($out/bin/aws-session-daemon completions {shell})"
            )),
            "{post_install}"
        );
    }
    assert!(post_install.contains("installManPage aws-session-daemon.1"));

    // The commands postInstall runs work on the built binary.
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["completions", "fish"],
        &["man"],
    ] {
        let output = run(Command::new(BIN).args(args));
        assert!(
            output.status.success() && !output.stdout.is_empty(),
            "aws-session-daemon {args:?}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn nix_flake_exposes_package_and_module() {
    // The flake's outputs function applied to a stub nixpkgs (callPackage
    // records what it was called with), with `self` tied to the result.
    let flake = nix_eval(
        r#"{ root }:
        let
          flake = import (root + "/nix/flake.nix");
          systems = [ "x86_64-linux" "aarch64-linux" ];
          nixpkgs = {
            lib.genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
            legacyPackages = builtins.listToAttrs (map (system: {
              name = system;
              value = {
                stdenv.hostPlatform.system = system;
                callPackage = file: args: { package = baseNameOf (toString file); inherit system args; };
              };
            }) systems);
          };
          self = flake.outputs { inherit self nixpkgs; };
        in {
          inputs = builtins.attrNames flake.inputs;
          outputs = builtins.attrNames self;
          packages = builtins.mapAttrs (_: builtins.attrNames) self.packages;
          default = self.packages.x86_64-linux.default;
          aarch64 = self.packages.aarch64-linux.default.system;
          module = baseNameOf (toString self.homeManagerModules.default);
          overlay = (self.overlays.default nixpkgs.legacyPackages.x86_64-linux { }).aws-session-daemon.package;
        }"#,
    );
    assert_eq!(flake["inputs"], serde_json::json!(["nixpkgs"]));
    for output in ["packages", "homeManagerModules", "overlays", "checks"] {
        assert!(
            flake["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == output),
            "flake output {output} missing: {}",
            flake["outputs"]
        );
    }
    assert_eq!(
        flake["packages"]["x86_64-linux"],
        serde_json::json!(["aws-session-daemon", "default"])
    );
    assert_eq!(
        flake["default"],
        serde_json::json!({ "package": "package.nix", "system": "x86_64-linux", "args": {} })
    );
    assert_eq!(flake["aarch64"], "aarch64-linux");
    assert_eq!(flake["module"], "home-manager.nix");
    assert_eq!(flake["overlay"], "package.nix");
}

/// The home-manager module evaluated with stubs for the few nixpkgs and
/// home-manager functions it calls, and `cfg` as the option values.
fn eval_home_manager_module(cfg: &str) -> serde_json::Value {
    eval_home_manager_module_with(cfg, "{ }")
}

/// The same, with `other` as the rest of the home-manager configuration
/// (other modules' options, such as `programs.awscli`).
fn eval_home_manager_module_with(cfg: &str, other: &str) -> serde_json::Value {
    let expression = r#"{ root }:
        let
          lib = {
            mkEnableOption = description: { _type = "option"; inherit description; };
            mkOption = o: o // { _type = "option"; };
            literalExpression = text: text;
            types = {
              package = "package"; path = "path"; str = "str"; bool = "bool";
              enum = values: "enum"; listOf = t: "listOf"; nullOr = t: "nullOr"; either = a: b: "either";
            };
            optional = c: v: if c then [ v ] else [ ];
            optionals = c: v: if c then v else [ ];
            mkIf = condition: content: { _type = "if"; inherit condition content; };
            concatStringsSep = builtins.concatStringsSep;
            getExe = p: "${p}/bin/aws-session-daemon";
          };
          pkgs = {
            formats.toml = _: {
              type = "toml";
              generate = name: value: "/nix/store/00000000000000000000000000000000-${name}";
            };
            callPackage = _: _: { outPath = "/nix/store/00000000000000000000000000000000-default"; };
            coreutils = { outPath = "/nix/store/00000000000000000000000000000000-coreutils"; };
          };
          package = { outPath = "/nix/store/00000000000000000000000000000000-aws-session-daemon"; };
          module = import (root + "/nix/home-manager.nix") {
            inherit lib pkgs;
            config = {
              services.aws-session-daemon = {
                enable = true;
                inherit package;
                endpoint = { address = null; sectionTokens = false; unixSocket = false; };
              } // (@CFG@);
            } // (@OTHER@);
          };
        in {
          inherit (module) config;
          options = builtins.attrNames module.options.services.aws-session-daemon;
          credentialsFileApplied = module.options.services.aws-session-daemon.credentialsFile.apply "/home/me/creds";
        }"#;
    nix_eval(&expression.replace("@CFG@", cfg).replace("@OTHER@", other))
}

/// The messages of the module's assertions that fail.
fn failed_assertions(result: &serde_json::Value) -> Vec<String> {
    result["config"]["content"]["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["assertion"] == false)
        .map(|a| a["message"].as_str().unwrap().to_string())
        .collect()
}

const PLAIN: &str = r#"{ settings = { mfa_serial_number = "arn:aws:iam::123456789012:mfa/me"; s = { }; }; credentialsFile = null; logLevel = "info"; extraArgs = [ ]; longTermKeys = null; output = null; }"#;

#[test]
fn home_manager_module_refuses_home_managers_own_aws_credentials() {
    let awscli = r#"{ programs.awscli = { enable = true; credentials.default = { aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"; }; }; }"#;
    let failed = failed_assertions(&eval_home_manager_module_with(PLAIN, awscli));
    assert_eq!(failed.len(), 1, "{failed:?}");
    for needle in [
        // What it is, why it cannot be edited, the two ways out.
        "programs.awscli.credentials is set, which makes ~/.aws/credentials a link into the Nix store",
        "The store is read-only",
        "leave programs.awscli.credentials unset",
        "point services.aws-session-daemon.credentialsFile",
    ] {
        assert!(
            failed[0].contains(needle),
            "{needle:?} missing: {}",
            failed[0]
        );
    }
    // The daemon keeping another, writable file is fine; so is the AWS
    // module without credentials (its settings make ~/.aws/config).
    let elsewhere = PLAIN.replace(
        "credentialsFile = null",
        r#"credentialsFile = "%h/.aws/work""#,
    );
    assert_eq!(
        failed_assertions(&eval_home_manager_module_with(&elsewhere, awscli)),
        Vec::<String>::new()
    );
    let settings_only =
        r#"{ programs.awscli = { enable = true; settings.default.region = "eu-west-1"; }; }"#;
    assert_eq!(
        failed_assertions(&eval_home_manager_module_with(PLAIN, settings_only)),
        Vec::<String>::new()
    );
    assert_eq!(
        failed_assertions(&eval_home_manager_module(PLAIN)),
        Vec::<String>::new()
    );
}

#[test]
fn home_manager_module_refuses_a_password_file_in_the_store() {
    // What `oath_password_file = "${./pw}"` evaluates to: the file copied
    // into the store, named by its store path (a string).
    let store = PLAIN.replace(
        "s = { };",
        r#"s = { }; org = { oath_password_file = "/nix/store/00000000000000000000000000000000-pw"; x = { }; };"#,
    );
    let failed = failed_assertions(&eval_home_manager_module(&store));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("org.oath_password_file")
            && failed[0].contains("readable by every user"),
        "{}",
        failed[0]
    );
    let outside = PLAIN.replace(
        "s = { };",
        r#"s = { oath_password_file = "/home/me/.config/pw"; };"#,
    );
    assert_eq!(
        failed_assertions(&eval_home_manager_module(&outside)),
        Vec::<String>::new()
    );
}

#[test]
fn home_manager_module_refuses_line_breaks_in_arguments() {
    let args = PLAIN.replace(
        "extraArgs = [ ]",
        r#"extraArgs = [ "--config-section=a
ExecStartPre=/bin/sh -c evil" ]"#,
    );
    let failed = failed_assertions(&eval_home_manager_module(&args));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("line break"), "{}", failed[0]);
    let cr = PLAIN.replace("credentialsFile = null", r#"credentialsFile = "%h/a\rb""#);
    assert_eq!(failed_assertions(&eval_home_manager_module(&cr)).len(), 1);
}

/// A home-manager unit attrset as a Unit, lists one value per line.
fn unit_from_json(value: &serde_json::Value) -> Unit {
    let mut unit = Unit::new();
    for (section, keys) in value.as_object().unwrap() {
        for (key, value) in keys.as_object().unwrap() {
            let values = match value {
                serde_json::Value::Array(items) => items.iter().map(json_scalar).collect(),
                scalar => vec![json_scalar(scalar)],
            };
            unit.entry(section.clone())
                .or_default()
                .insert(key.clone(), values);
        }
    }
    unit
}

fn json_scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
        other => other.to_string(),
    }
}

#[test]
fn home_manager_module_matches_the_unit_file() {
    let result = eval_home_manager_module(
        r#"{
          settings = {
            mfa_serial_number = "arn:aws:iam::123456789012:mfa/me";
            org = { assume_role_arn = "arn:aws:iam::{section}:role/Admin"; "111111111111" = { }; };
          };
          credentialsFile = null;
          logLevel = "info";
          extraArgs = [ ];
          longTermKeys = null;
          output = null;
        }"#,
    );
    let options = &result["options"];
    for option in [
        "enable",
        "package",
        "settings",
        "credentialsFile",
        "logLevel",
        "extraArgs",
        "longTermKeys",
        "output",
        "endpoint",
    ] {
        assert!(
            options.as_array().unwrap().iter().any(|o| o == option),
            "option {option} missing: {options}"
        );
    }
    assert_eq!(result["credentialsFileApplied"], "/home/me/creds");

    let config = &result["config"];
    assert_eq!(config["_type"], "if");
    assert_eq!(config["condition"], true);
    let config = &config["content"];
    for assertion in config["assertions"].as_array().unwrap() {
        assert_eq!(assertion["assertion"], true, "{assertion}");
    }
    assert_eq!(
        config["home"]["packages"][0],
        "/nix/store/00000000000000000000000000000000-aws-session-daemon"
    );
    let config_file = &config["xdg"]["configFile"]["aws-session-daemon/config.toml"];
    assert_eq!(config_file["condition"], true);
    let generated = "/nix/store/00000000000000000000000000000000-aws-session-daemon-config.toml";
    assert_eq!(config_file["content"]["source"], generated);

    let hm = unit_from_json(&config["systemd"]["user"]["services"]["aws-session-daemon"]);
    assert_eq!(hm["Unit"]["X-Restart-Triggers"], [generated]);
    assert_eq!(
        service_value(&hm, "ExecStart").as_deref(),
        Some(
            "/nix/store/00000000000000000000000000000000-aws-session-daemon/bin/aws-session-daemon \"--log-level=info\""
        )
    );
    assert_eq!(
        service_value(&hm, "ExecReload").as_deref(),
        Some("/nix/store/00000000000000000000000000000000-coreutils/bin/kill -HUP $MAINPID")
    );

    // Every directive of the shipped unit, with the same value, and no other:
    // only the paths of the binary and of kill, and the log level (a flag
    // here, the environment there), may differ.
    let file = parse_unit(&read(MAIN_UNIT));
    let comparable = |unit: &Unit| -> BTreeMap<(String, String), String> {
        unit.iter()
            .flat_map(|(section, keys)| {
                keys.iter()
                    .map(move |(key, values)| ((section.clone(), key.clone()), joined(values)))
            })
            .filter(|((_, key), _)| {
                ![
                    "ExecStart",
                    "ExecReload",
                    "Environment",
                    "X-Restart-Triggers",
                ]
                .contains(&key.as_str())
            })
            .collect()
    };
    assert_eq!(comparable(&hm), comparable(&file));
}

#[test]
fn home_manager_module_passes_options_and_rejects_secrets() {
    let result = eval_home_manager_module(
        r#"{
          settings = { org = { "111111111111" = { secret_access_key = "x"; }; }; };
          credentialsFile = "%h/work/aws/credentials";
          logLevel = "debug";
          extraArgs = [ "--config-section=111111111111" "--secret-access-key=x" ];
          longTermKeys = "keyring";
          output = "process";
        }"#,
    );
    let config = &result["config"]["content"];
    let assertions: Vec<&serde_json::Value> = config["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["assertion"] == false)
        .collect();
    assert_eq!(assertions.len(), 2);
    for assertion in &assertions {
        assert_eq!(assertion["assertion"], false, "{assertion}");
        let message = assertion["message"].as_str().unwrap();
        assert!(message.contains("credentials_section"), "{message}");
    }
    assert!(
        assertions[0]["message"]
            .as_str()
            .unwrap()
            .contains("org.111111111111.secret_access_key")
    );
    let hm = unit_from_json(&config["systemd"]["user"]["services"]["aws-session-daemon"]);
    assert_eq!(
        service_value(&hm, "ExecStart").as_deref(),
        Some(
            "/nix/store/00000000000000000000000000000000-aws-session-daemon/bin/aws-session-daemon \
             \"--credentials-file=%h/work/aws/credentials\" \"--log-level=debug\" \
             \"--config-section=111111111111\" \"--secret-access-key=x\""
        )
    );
    assert_eq!(
        service_value(&hm, "ReadWritePaths").as_deref(),
        Some("-%h/.aws -%h/work/aws -%t/aws-session-daemon")
    );

    // With no settings, a hand-written config.toml is left alone.
    let result = eval_home_manager_module(
        r#"{ settings = { }; credentialsFile = null; logLevel = "info"; extraArgs = [ ]; longTermKeys = null; output = null; }"#,
    );
    let config = &result["config"]["content"];
    assert_eq!(
        config["xdg"]["configFile"]["aws-session-daemon/config.toml"]["condition"],
        false
    );
    assert_eq!(
        config["systemd"]["user"]["services"]["aws-session-daemon"]["Unit"]["X-Restart-Triggers"],
        serde_json::json!([])
    );
}
