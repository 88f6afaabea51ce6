# Helpers for the home-manager module, in plain Nix (builtins only, no nixpkgs),
# so that tests/packaging.rs can evaluate them offline with
# `nix-instantiate --eval --strict`.
let
  # Every place where an attribute called `name` occurs in `value`, at any
  # depth, through attribute sets and lists (TOML tables and arrays of tables).
  # Each place is the list of attribute names (or list indices, as strings)
  # leading to it, e.g. [ "org" "111111111111" "secret_access_key" ].
  findKey = name: findKeyWhere (k: k == name);

  # The same for every attribute whose name satisfies `pred`.
  findKeyWhere =
    pred: value:
    let
      go =
        path: v:
        if builtins.isAttrs v then
          # A package is not TOML; do not walk into its (large) attribute set.
          if v ? type && v.type == "derivation" then
            [ ]
          else
            builtins.concatMap (
              k: (if pred k then [ (path ++ [ k ]) ] else [ ]) ++ go (path ++ [ k ]) v.${k}
            ) (builtins.attrNames v)
        else if builtins.isList v then
          builtins.concatLists (
            builtins.genList (i: go (path ++ [ (toString i) ]) (builtins.elemAt v i)) (builtins.length v)
          )
        else
          [ ];
    in
    go [ ] value;

  # Every place whose value is a Nix path literal (`./pw`): evaluating the
  # settings copies that file into the world-readable Nix store.
  findPaths =
    value:
    let
      go =
        path: v:
        if builtins.isPath v then
          [ path ]
        else if builtins.isAttrs v then
          if v ? type && v.type == "derivation" then
            [ ]
          else
            builtins.concatMap (k: go (path ++ [ k ]) v.${k}) (builtins.attrNames v)
        else if builtins.isList v then
          builtins.concatLists (
            builtins.genList (i: go (path ++ [ (toString i) ]) (builtins.elemAt v i)) (builtins.length v)
          )
        else
          [ ];
    in
    go [ ] value;

  # A key that holds a secret under any spelling: secret_access_key,
  # aws_secret_access_key, and anything naming a secret, password or token.
  isSecretKey =
    k:
    let
      lower = builtins.replaceStrings [ "-" ] [ "_" ] (
        builtins.replaceStrings
          [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ]
          [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ]
          k
      );
    in
    # The daemon's own keys that name where a password comes from are not
    # secrets themselves.
    builtins.match "oath_password_(command|file|keyring)" lower == null
    && builtins.any (word: builtins.match ".*${word}.*" lower != null) [
      "secret"
      "password"
      "token"
      "passphrase"
    ];

  showPath = path: builtins.concatStringsSep "." path;

  # Replace every occurrence of each `from` string by the `to` string.
  replace = builtins.replaceStrings;
in
{
  inherit findKey findPaths showPath isSecretKey;

  # Places in the settings where a secret was written (secret_access_key
  # under any spelling, a password, a token). The settings end up in the Nix
  # store, which every user can read.
  secretKeyPaths = settings: findKeyWhere isSecretKey settings;

  # The assertion message for those places (empty when there are none).
  secretKeyMessage =
    optionPath: settings:
    let
      found = findKeyWhere isSecretKey settings;
    in
    if found == [ ] then
      ""
    else
      "${optionPath}: a secret is set at "
      + builtins.concatStringsSep ", " (map showPath found)
      + ". The settings are written to the Nix store, which every user on the machine can read."
      + " Keep the long-term keys in ~/.aws/credentials instead, and name their section with"
      + " credentials_section (default: \"default\"); give a password with"
      + " oath_password_command or oath_password_file.";

  # The assertion message for Nix path values (empty when there are none).
  pathValueMessage =
    optionPath: settings:
    let
      found = findPaths settings;
    in
    if found == [ ] then
      ""
    else
      "${optionPath}: a Nix path is given at "
      + builtins.concatStringsSep ", " (map showPath found)
      + ". Nix copies the file it names into the world-readable Nix store (a password file would"
      + " be readable by every user). Write the path as a string instead: \"/home/me/.config/pw\".";

  # Places where oath_password_file names a file in the Nix store: a path
  # literal, or a string such as "${./pw}" (which copies ./pw into the store and
  # evaluates to its /nix/store/... path). Every user can read the store.
  storePasswordFiles =
    settings:
    let
      valueAt =
        path: v:
        builtins.foldl' (
          acc: k: if builtins.isList acc then builtins.elemAt acc (builtins.fromJSON k) else acc.${k}
        ) v path;
      inStore =
        v:
        builtins.isPath v
        || (
          builtins.isString v
          && (builtins.hasContext v || builtins.substring 0 11 v == "/nix/store/")
        );
    in
    builtins.filter (path: inStore (valueAt path settings)) (findKey "oath_password_file" settings);

  storePasswordFileMessage =
    optionPath: places:
    "${optionPath}: oath_password_file names a file in the Nix store at "
    + builtins.concatStringsSep ", " (map showPath places)
    + " (\"\${./pw}\" copies ./pw there). The store is readable by every user on the machine, so"
    + " the password would be too. Give the path of a file outside the store, as a string"
    + " (\"/home/me/.config/aws-session-daemon/oath-password\"), or use oath_password_keyring = true.";

  # Arguments holding a line break: systemd's ExecStart= is one line, and a
  # newline would end it and start a directive of its own.
  multiLineArgs = args: builtins.filter (a: builtins.match "[^\n\r]*" a == null) args;

  # home-manager's programs.awscli.credentials makes ~/.aws/credentials a link
  # into the read-only Nix store, which the daemon cannot keep fresh.
  awscliCredentialsMessage =
    "services.aws-session-daemon: programs.awscli.credentials is set, which makes"
    + " ~/.aws/credentials a link into the Nix store. The store is read-only, so the daemon cannot"
    + " keep sessions in that file (it would refuse it). Either leave programs.awscli.credentials"
    + " unset and keep the long-term keys in a plain ~/.aws/credentials (or in the keyring:"
    + " longTermKeys = \"keyring\"), or point services.aws-session-daemon.credentialsFile (and"
    + " AWS_SHARED_CREDENTIALS_FILE for the AWS tools) at another, writable file.";

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
