"""What botocore (the AWS CLI, boto3) reads from credentials files.

Used by tests/credentials_consumers.rs. Reads a JSON list on stdin:
    [{"path": "/tmp/x/credentials", "profiles": ["prod", ...]}, ...]
and prints a JSON list, one object per file:
    {"sections": {section: {key: value}} or null,
     "error": "..." or null,
     "cli_error": "..." or null,
     "credentials": {profile: {"access_key", "secret_key", "token"} or null}}

"sections" comes from botocore.configloader.raw_config_parse, the loader the
AWS CLI uses for the credentials file (with parse_subsections=False, so that
nested values come back as the raw text botocore's parser saw). "cli_error"
is set when the loader as the CLI calls it (parse_subsections=True) fails:
an indented block under an empty value must hold `key = value` lines. [DEFAULT]
keys show up in every section, as configparser merges them. "credentials"
comes from botocore.credentials.SharedCredentialProvider, the provider that
reads the file for the CLI (aws_security_token before aws_session_token).
"""

import json
import sys

try:
    import botocore
    import botocore.configloader
    import botocore.credentials
    import botocore.exceptions
except ImportError as e:
    print(f"botocore is not importable ({e}): run bash scripts/install-deps.sh", file=sys.stderr)
    sys.exit(3)


def read(path, profiles):
    out = {"sections": None, "error": None, "cli_error": None, "credentials": {}}
    try:
        out["sections"] = botocore.configloader.raw_config_parse(
            path, parse_subsections=False
        )
    except botocore.exceptions.BotoCoreError as e:
        # The message names the file only, never a value.
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    try:
        botocore.configloader.raw_config_parse(path)
    except botocore.exceptions.BotoCoreError as e:
        out["cli_error"] = f"{type(e).__name__}: {e}"
        return out
    for profile in profiles:
        creds = botocore.credentials.SharedCredentialProvider(
            creds_filename=path, profile_name=profile
        ).load()
        out["credentials"][profile] = (
            None
            if creds is None
            else {
                "access_key": creds.access_key,
                "secret_key": creds.secret_key,
                "token": creds.token,
            }
        )
    return out


def main():
    requests = json.load(sys.stdin)
    json.dump(
        {
            "botocore_version": botocore.__version__,
            "files": [read(r["path"], r["profiles"]) for r in requests],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
