# The flake lives in nix/, so refer to it with `?dir=nix`:
#   nix build '.?dir=nix'                          (from a checkout)
#   inputs.aws-session-daemon.url = "git+https://<repository>?dir=nix";
# It must be fetched as a git (or tarball) flake, not as `path:./nix`: the
# package is built from the whole repository, one directory up.
{
  description = "aws-session-daemon: keeps AWS session credentials fresh in ~/.aws/credentials, with TOTP codes from a YubiKey";

  # Rust >= 1.85 (edition 2024) is needed.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        aws-session-daemon = pkgs.callPackage ./package.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.aws-session-daemon;
      });

      overlays.default = final: _prev: {
        aws-session-daemon = final.callPackage ./package.nix { };
      };

      # The module builds the package with the nixpkgs of the home-manager
      # configuration that imports it. If that nixpkgs is too old for the
      # crate's Rust, set services.aws-session-daemon.package =
      # inputs.aws-session-daemon.packages.${system}.default.
      homeManagerModules.default = ./home-manager.nix;
      homeManagerModules.aws-session-daemon = ./home-manager.nix;

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      });
    };
}
