"""botocore's own sso-oidc and sso clients against the IAM Identity Center
stand-in (argv[1]: its URL): the device sign-in, with the approval given
over HTTP as a browser gives it, the refresh, GetRoleCredentials, and the
error answers, each as botocore parses it. Prints one JSON object."""

import json
import re
import sys
import urllib.parse
import urllib.request

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

url = sys.argv[1]
session = botocore.session.Session()
config = Config(signature_version=UNSIGNED, retries={"max_attempts": 1})
oidc = session.create_client("sso-oidc", region_name="eu-west-1", endpoint_url=url, config=config)
sso = session.create_client("sso", region_name="eu-west-1", endpoint_url=url, config=config)
out = {}


def error_of(call):
    try:
        call()
    except ClientError as error:
        return {
            "code": error.response["Error"]["Code"],
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": error.response["Error"].get("Message", ""),
            "error": error.response.get("error"),
            "error_description": error.response.get("error_description"),
        }
    return None


client = oidc.register_client(clientName="botocore-test", clientType="public", scopes=["sso:account:access"])
out["register"] = sorted(k for k in client if k != "ResponseMetadata")
device = oidc.start_device_authorization(
    clientId=client["clientId"], clientSecret=client["clientSecret"], startUrl="https://d-1234567890.awsapps.com/start"
)
out["device"] = sorted(k for k in device if k != "ResponseMetadata")
grant = "urn:ietf:params:oauth:grant-type:device_code"


def create_token():
    return oidc.create_token(
        clientId=client["clientId"], clientSecret=client["clientSecret"], grantType=grant, deviceCode=device["deviceCode"]
    )


out["pending"] = error_of(create_token)
# The browser: open the page, find the code in it, post the form.
page = urllib.request.urlopen(device["verificationUriComplete"]).read().decode()
code = re.search(r'name="user_code" value="([^"]*)"', page).group(1)
form = urllib.parse.urlencode({"user_code": code, "decision": "approve"}).encode()
urllib.request.urlopen(urllib.parse.urljoin(url, "/device/approve"), data=form).read()
out["too_fast"] = error_of(create_token)
import time

time.sleep(device["interval"] + 5.2)
token = create_token()
out["token"] = sorted(k for k in token if k != "ResponseMetadata")
refreshed = oidc.create_token(
    clientId=client["clientId"], clientSecret=client["clientSecret"], grantType="refresh_token", refreshToken=token["refreshToken"]
)
out["refreshed"] = refreshed["accessToken"] != token["accessToken"]
out["bad_refresh"] = error_of(
    lambda: oidc.create_token(
        clientId=client["clientId"], clientSecret=client["clientSecret"], grantType="refresh_token", refreshToken="aorAAAAnot-a-token"
    )
)
out["bad_client"] = error_of(
    lambda: oidc.start_device_authorization(clientId=client["clientId"], clientSecret="wrong", startUrl="https://x/start")
)
role = sso.get_role_credentials(roleName="ReadOnly", accountId="111122223333", accessToken=refreshed["accessToken"])
out["role"] = sorted(role["roleCredentials"])
out["expiration_ms"] = role["roleCredentials"]["expiration"]
out["unauthorized"] = error_of(
    lambda: sso.get_role_credentials(roleName="ReadOnly", accountId="111122223333", accessToken="aoaAAAAnot-a-token")
)
out["forbidden"] = error_of(
    lambda: sso.get_role_credentials(roleName="Admin", accountId="111122223333", accessToken=refreshed["accessToken"])
)
print(json.dumps(out))
