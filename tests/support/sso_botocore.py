"""botocore as a consumer of the SSO token cache (~/.aws/sso/cache).

Resolves the credentials of the profile named on the command line the way
the AWS CLI does: its SSO provider reads the token the sso-session's cache
file holds, refreshes it with the refresh token when it expires within 15
minutes (and writes the new one back), and calls GetRoleCredentials. Then
GetCallerIdentity with those credentials. Endpoints come from the
environment (AWS_ENDPOINT_URL_SSO_OIDC, AWS_ENDPOINT_URL_SSO,
AWS_ENDPOINT_URL_STS). Prints one JSON object: access_key, method, arn,
account, or error.
"""

import json
import sys

import botocore.session

profile = sys.argv[1]
out = {"botocore_version": botocore.__version__}
try:
    session = botocore.session.Session(profile=profile)
    credentials = session.get_credentials()
    frozen = credentials.get_frozen_credentials()
    out["access_key"] = frozen.access_key
    out["method"] = credentials.method
    sts = session.create_client("sts", region_name="us-east-1")
    identity = sts.get_caller_identity()
    out["arn"] = identity["Arn"]
    out["account"] = identity["Account"]
except Exception as error:  # reported to the test, which fails with it
    out["error"] = "%s: %s" % (type(error).__name__, error)
print(json.dumps(out))
