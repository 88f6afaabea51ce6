//! What STS accepts and hands out: the lengths and characters of its
//! parameters and answers, from the AWS API references (cited at each
//! rule). One copy of each rule: the config is checked against it when it
//! is loaded (a value STS would refuse is found before a code is spent on
//! it), and every answer is checked against it before any output (file,
//! `credential-process`, endpoint) sees it.
//!
//! In AWS's patterns `\w` is Java's: `[a-zA-Z0-9_]`, ASCII only.

use std::ops::RangeInclusive;

/// A string parameter's constraints: its length in characters, and the
/// characters it may hold.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// How messages name the parameter.
    pub what: &'static str,
    pub length: RangeInclusive<usize>,
    allowed: fn(char) -> bool,
    /// The characters, as a hint says them.
    pub characters: &'static str,
}

fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `RoleSessionName`, `SourceIdentity` and IAM names: `[\w+=,.@-]`.
fn name_character(c: char) -> bool {
    word(c) || "+=,.@-".contains(c)
}

/// AssumeRole `RoleSessionName`: "Length Constraints: Minimum length of 2.
/// Maximum length of 64. Pattern: `[\w+=,.@-]*`"
/// (<https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html>).
pub(crate) const ROLE_SESSION_NAME: Rule = Rule {
    what: "a role session name",
    length: 2..=64,
    allowed: name_character,
    characters: "letters, digits and _+=,.@-",
};

/// AssumeRole `SourceIdentity`: 2 to 64 characters of `[\w+=,.@-]*` (same page).
pub(crate) const SOURCE_IDENTITY: Rule = Rule {
    what: "a source identity",
    length: 2..=64,
    allowed: name_character,
    characters: "letters, digits and _+=,.@-",
};

/// AssumeRole `ExternalId`: "Minimum length of 2. Maximum length of 1224.
/// Pattern: `[\w+=,.@:\/-]*`" (same page; the IAM quotas page says the
/// same: no spaces).
pub(crate) const EXTERNAL_ID: Rule = Rule {
    what: "an external id",
    length: 2..=1224,
    allowed: |c| word(c) || "+=,.@:/-".contains(c),
    characters: "letters, digits and _+=,.@:/- (no spaces)",
};

/// `SerialNumber` of GetSessionToken and AssumeRole: "Minimum length of 9.
/// Maximum length of 256. Pattern: `[\w+=/:,.@-]*`"
/// (<https://docs.aws.amazon.com/STS/latest/APIReference/API_GetSessionToken.html>).
pub(crate) const SERIAL_NUMBER: Rule = Rule {
    what: "an MFA serial number",
    length: 9..=256,
    allowed: |c| word(c) || "+=/:,.@-".contains(c),
    characters: "letters, digits and _+=/:,.@-",
};

/// AssumeRole `Policy`: "Minimum length of 1. Maximum length of 2048.
/// Pattern: `[\u0009\u000A\u000D\u0020-\u00FF]+`", and "the plaintext that
/// you use for both inline and managed session policies can't exceed 2,048
/// characters".
pub(crate) const SESSION_POLICY: Rule = Rule {
    what: "an inline session policy",
    length: 1..=2048,
    allowed: |c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'),
    characters: "tab, line breaks and the characters U+0020 to U+00FF",
};

/// An ARN parameter (`RoleArn`, `PolicyArns.member.N.arn`): "Minimum length
/// of 20. Maximum length of 2048." (`arnType`, same page).
pub(crate) const ARN_LENGTH: RangeInclusive<usize> = 20..=2048;

/// "You can provide up to 10 managed policy ARNs" (AssumeRole `PolicyArns`).
pub(crate) const MAX_POLICY_ARNS: usize = 10;

/// IAM `RoleName`: "Minimum length of 1. Maximum length of 64. Pattern:
/// `[\w+=,.@-]+`"
/// (<https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html>).
pub(crate) const ROLE_NAME: Rule = Rule {
    what: "an IAM role name",
    length: 1..=64,
    allowed: name_character,
    characters: "letters, digits and _+=,.@-",
};

/// IAM Identity Center permission set `Name` (what GetRoleCredentials
/// takes as `role_name`): "Minimum length of 1. Maximum length of 32.
/// Pattern: `[\w+=,.@-]+`"
/// (<https://docs.aws.amazon.com/singlesignon/latest/APIReference/API_CreatePermissionSet.html>).
pub(crate) const PERMISSION_SET_NAME: Rule = Rule {
    what: "a permission set name",
    length: 1..=32,
    allowed: name_character,
    characters: "letters, digits and _+=,.@-",
};

/// IAM `Path`: 1 to 512 characters, `/` alone or `/.../`, of "any ASCII
/// character from the ! (\u0021) through the DEL character (\u007F)"
/// (CreateRole, same page).
pub(crate) const ROLE_PATH: Rule = Rule {
    what: "an IAM path",
    length: 1..=512,
    allowed: |c| ('\u{21}'..='\u{7f}').contains(&c),
    characters: "ASCII characters from ! to ~, starting and ending with /",
};

/// GetSessionToken `DurationSeconds`: "from 900 seconds (15 minutes) to
/// 129,600 seconds (36 hours)".
pub(crate) const SESSION_TOKEN_DURATION: RangeInclusive<i64> = 900..=129_600;

/// AssumeRole `DurationSeconds`: "Minimum value of 900. Maximum value of
/// 43200."
pub(crate) const ASSUME_ROLE_DURATION: RangeInclusive<i64> = 900..=43_200;

/// "Role chaining limits your ... role session to a maximum of one hour."
pub(crate) const ROLE_CHAINING_DURATION: i64 = 3600;

/// `Credentials.AccessKeyId`: "Minimum length of 16. Maximum length of 128.
/// Pattern: `[\w]*`"
/// (<https://docs.aws.amazon.com/STS/latest/APIReference/API_Credentials.html>).
/// Long-term keys (`AKIA...`) have the same shape
/// (<https://docs.aws.amazon.com/IAM/latest/APIReference/API_AccessKey.html>).
pub(crate) const ACCESS_KEY_ID: Rule = Rule {
    what: "an access key id",
    length: 16..=128,
    allowed: word,
    characters: "letters, digits and _",
};

/// `Credentials.SecretAccessKey` and `SessionToken` have no documented
/// length or pattern ("make no assumptions about the maximum size" of the
/// token). What every output can carry is decided here: printable ASCII
/// without spaces (base64 today), so that it is one value on one line of
/// the credentials file and one JSON string, of a length no answer (capped
/// at 1 MiB) could be confused with.
pub(crate) const SECRET_ACCESS_KEY: Rule = Rule {
    what: "a secret access key",
    length: 16..=1024,
    allowed: |c| c.is_ascii_graphic(),
    characters: "printable ASCII without spaces",
};

/// See [`SECRET_ACCESS_KEY`]; tokens are 300 to a few thousand characters.
pub(crate) const SESSION_TOKEN: Rule = Rule {
    what: "a session token",
    length: 16..=65_536,
    allowed: |c| c.is_ascii_graphic(),
    characters: "printable ASCII without spaces",
};

impl Rule {
    /// `Ok`, or what is wrong with `value`, without quoting it (it may be
    /// a secret; the caller quotes what it may show).
    pub(crate) fn check(&self, value: &str) -> Result<(), String> {
        let mut length = 0;
        for c in value.chars() {
            length += 1;
            if !(self.allowed)(c) {
                return Err(format!(
                    "{} may hold only {}, not {}",
                    self.what,
                    self.characters,
                    crate::text::quoted(&c.to_string())
                ));
            }
        }
        if !self.length.contains(&length) {
            return Err(format!(
                "{} has {}-{} characters, not {length}",
                self.what,
                self.length.start(),
                self.length.end()
            ));
        }
        Ok(())
    }
}

/// The parts of an IAM ARN: `arn:PARTITION:iam::ACCOUNT:KIND/PATH/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IamArn<'a> {
    pub account: &'a str,
    /// `role`, `user`, `mfa`, `policy`.
    pub kind: &'a str,
    /// `/` or `/a/b/`.
    pub path: &'a str,
    pub name: &'a str,
}

/// Splits an IAM ARN, or says why it is none. The partition is `aws` or
/// `aws-` and lowercase words (`aws-cn`, `aws-us-gov`, `aws-iso-b`), the
/// account 12 digits (or `aws`, for AWS-managed policies).
pub(crate) fn iam_arn(arn: &str) -> Result<IamArn<'_>, String> {
    let bad = |what: &str| {
        Err(format!(
            "{what}; an IAM ARN reads arn:aws:iam::ACCOUNT:KIND/NAME"
        ))
    };
    let Some(rest) = arn.strip_prefix("arn:") else {
        return bad("it does not start with arn:");
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return bad("it has no partition");
    };
    let partition_ok = partition == "aws"
        || partition.strip_prefix("aws-").is_some_and(|words| {
            words
                .split('-')
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        });
    if !partition_ok {
        return bad("its partition is not aws, aws-cn, aws-us-gov or another aws-NAME");
    }
    let Some(rest) = rest.strip_prefix("iam::") else {
        return bad("it is not an IAM ARN (the service must be iam, the region empty)");
    };
    let Some((account, resource)) = rest.split_once(':') else {
        return bad("it has no resource after the account");
    };
    let account_ok =
        account == "aws" || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()));
    if !account_ok {
        return bad("its account is not 12 digits");
    }
    let Some((kind, path_and_name)) = resource.split_once('/') else {
        return bad("its resource has no KIND/NAME");
    };
    let (path, name) = match path_and_name.rfind('/') {
        Some(last) => (
            &resource[kind.len()..=kind.len() + 1 + last],
            &path_and_name[last + 1..],
        ),
        None => ("/", path_and_name),
    };
    Ok(IamArn {
        account,
        kind,
        path,
        name,
    })
}

/// A role ARN as IAM makes them, or what is wrong with it: the ARN's
/// length, its account, its path (IAM's `Path`) and its name (IAM's
/// `RoleName`). A name with a space, a line break or an escape character
/// is refused here instead of after a code was spent on an AssumeRole that
/// STS refuses.
pub(crate) fn role_arn(arn: &str) -> Result<IamArn<'_>, String> {
    let length = arn.chars().count();
    if !ARN_LENGTH.contains(&length) {
        return Err(format!(
            "a role ARN has {}-{} characters, not {length}",
            ARN_LENGTH.start(),
            ARN_LENGTH.end()
        ));
    }
    let parts = iam_arn(arn)?;
    if parts.kind != "role" {
        return Err(format!(
            "it names a {} (arn:...:{}/...), not a role",
            crate::text::printable(parts.kind),
            crate::text::printable(parts.kind)
        ));
    }
    if parts.account == "aws" {
        return Err("its account is not 12 digits".to_string());
    }
    ROLE_PATH.check(parts.path)?;
    ROLE_NAME.check(parts.name)?;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_count_characters_and_refuse_others() {
        assert!(ROLE_SESSION_NAME.check("aws-session-daemon").is_ok());
        assert!(ROLE_SESSION_NAME.check("a").is_err());
        assert!(ROLE_SESSION_NAME.check(&"a".repeat(65)).is_err());
        assert!(ROLE_SESSION_NAME.check("has space").is_err());
        assert!(EXTERNAL_ID.check("a:b/c").is_ok());
        assert!(EXTERNAL_ID.check(&"x".repeat(1224)).is_ok());
        let error = EXTERNAL_ID.check(&"x".repeat(3_900_000)).unwrap_err();
        assert_eq!(error, "an external id has 2-1224 characters, not 3900000");
        let error = SERIAL_NUMBER.check("GAHT\u{1b}12345678").unwrap_err();
        assert!(error.ends_with("not \"\\u{1b}\""), "{error}");
        assert!(SESSION_POLICY.check("{\n\t\"a\": \"é\"\r\n}").is_ok());
        assert!(SESSION_POLICY.check("{\"a\": \"€\"}").is_err());
        assert!(ACCESS_KEY_ID.check("ASIAIOSFODNN7EXAMPLE").is_ok());
        assert!(ACCESS_KEY_ID.check("ASIA IOSFODNN7EXAMPLE").is_err());
        assert!(
            SESSION_TOKEN
                .check("FwoGZXIvYXdzEJr//////////wEaDM+/=")
                .is_ok()
        );
        assert!(
            SESSION_TOKEN
                .check("FwoGZXIvYXdzEJr\nforged = line")
                .is_err()
        );
    }

    #[test]
    fn the_longest_session_is_get_session_token_s() {
        assert_eq!(
            crate::timestamp::LONGEST_SESSION.whole_seconds(),
            *SESSION_TOKEN_DURATION.end()
        );
    }

    #[test]
    fn role_arns_are_checked_as_iam_makes_them() {
        let arn = role_arn("arn:aws:iam::123456789012:role/Admin").unwrap();
        assert_eq!((arn.path, arn.name), ("/", "Admin"));
        let arn = role_arn("arn:aws-us-gov:iam::123456789012:role/a/b/Admin+=,.@-_").unwrap();
        assert_eq!((arn.path, arn.name), ("/a/b/", "Admin+=,.@-_"));
        for (bad, says) in [
            (
                "arn:aws:iam::123456789012:role/Admin\r\nx",
                "role name may hold only",
            ),
            ("arn:aws:iam::123456789012:role/Ad\u{1b}[31mmin", "\\u{1b}"),
            ("arn:aws:iam::123456789012:role/Ad min", "\" \""),
            ("arn:aws:iam::123456789012:role/", "role name has 1-64"),
            (
                "arn:aws:iam::123456789012:role/a b/Admin",
                "path may hold only",
            ),
            ("arn:aws:iam::123456789012:user/Admin", "not a role"),
            ("arn:aws:iam::12345678901:role/Admin", "12 digits"),
            ("arn:aws:sts::123456789012:role/Admin", "not an IAM ARN"),
            ("arn:AWS:iam::123456789012:role/Admin", "partition"),
            ("arn:aws:iam::aws:role/Admin", "12 digits"),
        ] {
            let error = role_arn(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
            assert!(!error.contains(['\r', '\n', '\u{1b}']), "{error}");
        }
        let long = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(2100));
        assert!(role_arn(&long).unwrap_err().contains("20-2048"));
        let name = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(65));
        assert!(role_arn(&name).unwrap_err().contains("1-64"));
    }
}
