# Helpers for the home-manager module, in plain Nix (builtins only, no nixpkgs),
# so that tests/packaging.rs can evaluate them offline with
# `nix-instantiate --eval --strict`.
let
  # Every place where an attribute called `name` occurs in `value`, at any
  # depth, through attribute sets and lists (TOML tables and arrays of tables).
  # Each place is the list of attribute names (or list indices, as strings)
  # leading to it, e.g. [ "org" "111111111111" "secret_access_key" ].
  findKey =
    name: value:
    let
      go =
        path: v:
        if builtins.isAttrs v then
          # A package is not TOML; do not walk into its (large) attribute set.
          if v ? type && v.type == "derivation" then
            [ ]
          else
            builtins.concatMap (
              k: (if k == name then [ (path ++ [ k ]) ] else [ ]) ++ go (path ++ [ k ]) v.${k}
            ) (builtins.attrNames v)
        else if builtins.isList v then
          builtins.concatLists (
            builtins.genList (i: go (path ++ [ (toString i) ]) (builtins.elemAt v i)) (builtins.length v)
          )
        else
          [ ];
    in
    go [ ] value;

  showPath = path: builtins.concatStringsSep "." path;

  # Replace every occurrence of each `from` string by the `to` string.
  replace = builtins.replaceStrings;
in
{
  inherit findKey showPath;

  # Places in the settings where a long-term secret key was written. The
  # settings end up in the Nix store, which every user can read.
  secretKeyPaths = settings: findKey "secret_access_key" settings;

  # The assertion message for those places (empty when there are none).
  secretKeyMessage =
    optionPath: settings:
    let
      found = findKey "secret_access_key" settings;
    in
    if found == [ ] then
      ""
    else
      "${optionPath}: secret_access_key is set at "
      + builtins.concatStringsSep ", " (map showPath found)
      + ". The settings are written to the Nix store, which every user on the machine can read."
      + " Keep the long-term keys in ~/.aws/credentials instead, and name their section with"
      + " credentials_section (default: \"default\").";

  # Command-line arguments that would put a secret on the command line (and in
  # the world-readable unit file).
  secretArgs = args: builtins.filter (a: builtins.match "--secret[-_]access[-_]key(=.*)?" a != null) args;

  # One argument for a systemd Exec*= line: double-quoted, with backslashes and
  # double quotes escaped and `$` doubled so that systemd does not expand
  # environment variables. `%` is left alone on purpose, so that specifiers such
  # as %h (home directory) work; write %% for a literal percent sign.
  escapeSystemdExecArg =
    arg: "\"" + replace [ "\\" "\"" "$" ] [ "\\\\" "\\\"" "$$" ] (toString arg) + "\"";
}
