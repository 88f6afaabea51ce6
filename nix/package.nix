# The aws-session-daemon package: `pkgs.callPackage ./package.nix { }`.
# Needs a nixpkgs whose Rust is at least Cargo.toml's rust-version (1.85,
# edition 2024): nixos-25.05 or later.
{
  lib,
  stdenv,
  rustPlatform,
  pkg-config,
  pcsclite,
  installShellFiles,
}:
let
  cargoToml = lib.importTOML ../Cargo.toml;
  # The repository minus what does not affect the build: build output, and
  # these Nix files (so that editing the module does not rebuild the binary).
  # lib.cleanSource already drops .git, editor backups and `result` links.
  src = lib.cleanSourceWith {
    src = lib.cleanSource ../.;
    filter =
      path: type:
      let
        relative = lib.removePrefix (toString ../. + "/") (toString path);
      in
      !(builtins.elem relative [
        "target"
        "fuzz/target"
        "nix"
      ]);
  };
in
rustPlatform.buildRustPackage {
  pname = "aws-session-daemon";
  inherit (cargoToml.package) version;
  inherit src;

  cargoLock.lockFile = ../Cargo.lock;

  # pcsc-sys finds libpcsclite with pkg-config. The client library talks to
  # the system's pcscd over /run/pcscd/pcscd.comm; pcscd itself is not a
  # dependency of the package (NixOS: services.pcscd.enable = true).
  nativeBuildInputs = [
    pkg-config
    installShellFiles
  ];
  buildInputs = [ pcsclite ];

  # build.rs runs `git rev-parse` for --version; git is absent in the build
  # sandbox, so the version is the bare package version. That is intended.

  # The test suite needs a running pcscd with the vpcd virtual reader, and
  # moto as a fake STS endpoint: none of them exist in the build sandbox.
  # Run `bash scripts/test.sh` from a checkout instead.
  doCheck = false;

  # Completions and the man page come from the binary itself, so they always
  # match its flags. Skipped when cross-compiling (the binary cannot run).
  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    installShellCompletion --cmd aws-session-daemon \
      --bash <($out/bin/aws-session-daemon completions bash) \
      --zsh <($out/bin/aws-session-daemon completions zsh) \
      --fish <($out/bin/aws-session-daemon completions fish)
    $out/bin/aws-session-daemon man > aws-session-daemon.1
    installManPage aws-session-daemon.1
  '';

  meta = {
    inherit (cargoToml.package) description;
    longDescription = ''
      A daemon that keeps temporary AWS credentials (MFA sessions from
      GetSessionToken, role sessions from AssumeRole) fresh in
      ~/.aws/credentials, reading the TOTP code from a YubiKey's OATH applet
      over PC/SC. A drop-in replacement for the Python aws-session-daemon.
    '';
    license = lib.licenses.mit;
    mainProgram = "aws-session-daemon";
    platforms = lib.platforms.linux;
  };
}
