//! One exchange with one card's OATH applet: SELECT, VALIDATE when the
//! applet has a password, then CALCULATE or LIST. Independent of PC/SC so
//! that it runs against the in-memory applet in unit tests; the transport
//! wraps each call in one PC/SC transaction.

use crate::error::{AppletError, Error, ErrorKind};
use crate::protocol::{self, AllState, Card, OathType, SelectInfo};
use crate::{Code, CredentialInfo, PasswordCache, ReaderListing, TouchPrompt};

/// SELECT, then VALIDATE if the applet asks for a password.
fn open(
    card: &mut dyn Card,
    reader: &str,
    password: &mut PasswordCache<'_>,
    host_challenge: [u8; 8],
) -> Result<SelectInfo, Error> {
    let info = protocol::select(card).map_err(|e| Error::from_applet(reader, e))?;
    if info.needs_password() {
        let password = password
            .get()
            .map_err(|e| Error::new(Some(reader), ErrorKind::Password(e)))?;
        let Some(password) = password else {
            return Err(Error::new(Some(reader), ErrorKind::PasswordRequired));
        };
        let key = protocol::derive_key(password, &info.salt);
        protocol::validate(card, &*key, &info, &host_challenge)
            .map_err(|e| Error::from_applet(reader, e))?;
    }
    Ok(info)
}

fn random_challenge() -> [u8; 8] {
    // The host challenge only proves that the card knows the key too; it
    // needs to be unpredictable to the card, not cryptographically strong.
    let mut c = [0u8; 8];
    fastrand::fill(&mut c);
    c
}

/// Calculates the TOTP code of `name` at `unix` seconds on this card.
///
/// CALCULATE ALL comes first because it is the only way to learn whether
/// the credential needs a touch (tag 7C) before the key starts waiting for
/// one; for a 30 s credential without touch its answer is already the code.
pub(crate) fn calculate_on(
    card: &mut dyn Card,
    reader: &str,
    name: &str,
    unix: u64,
    password: &mut PasswordCache<'_>,
    on_touch: &dyn Fn(&TouchPrompt),
) -> Result<Code, Error> {
    let applet = |e| Error::from_applet(reader, e);
    let period = protocol::parse_name(name)
        .map_err(|reason| {
            Error::new(
                None,
                ErrorKind::InvalidName {
                    name: name.to_string(),
                    reason,
                },
            )
        })?
        .period;
    open(card, reader, password, random_challenge())?;
    let (default_step, default_challenge) =
        protocol::totp_challenge(unix, protocol::DEFAULT_PERIOD);
    let all = protocol::calculate_all(card, &default_challenge).map_err(applet)?;
    let Some((_, state)) = all.iter().find(|(n, _)| n == name) else {
        return Err(applet(AppletError::NoSuchCredential {
            name: name.to_string(),
            available: all.into_iter().map(|(n, _)| n).collect(),
        }));
    };
    let (step, challenge) = protocol::totp_challenge(unix, period);
    let truncated = match state {
        AllState::Hotp { .. } => {
            return Err(applet(AppletError::NotTotp {
                name: name.to_string(),
            }));
        }
        AllState::Code(t) if period == protocol::DEFAULT_PERIOD => {
            debug_assert_eq!(step, default_step);
            t.clone()
        }
        AllState::Code(_) => protocol::calculate(card, name, &challenge, false).map_err(applet)?,
        AllState::Touch { .. } => {
            on_touch(&TouchPrompt {
                credential: name.to_string(),
                reader: reader.to_string(),
            });
            protocol::calculate(card, name, &challenge, true).map_err(applet)?
        }
    };
    Ok(Code {
        value: truncated.code(),
        digits: truncated.digits,
        step,
        period,
        reader: reader.to_string(),
    })
}

/// Lists the credentials of this card: LIST for types and hashes, and
/// CALCULATE ALL for digits and touch (no code leaves this function).
pub(crate) fn list_on(
    card: &mut dyn Card,
    reader: &str,
    unix: u64,
    password: &mut PasswordCache<'_>,
) -> Result<ReaderListing, Error> {
    let applet = |e| Error::from_applet(reader, e);
    let info = open(card, reader, password, random_challenge())?;
    let entries = protocol::list(card).map_err(applet)?;
    let (_, challenge) = protocol::totp_challenge(unix, protocol::DEFAULT_PERIOD);
    let all = protocol::calculate_all(card, &challenge).map_err(applet)?;
    let credentials = entries
        .into_iter()
        .map(|e| {
            let state = all.iter().find(|(n, _)| *n == e.name).map(|(_, s)| s);
            let (digits, touch) = match state {
                Some(AllState::Code(t)) => (Some(t.digits), false),
                Some(AllState::Touch { digits }) => (Some(*digits), true),
                Some(AllState::Hotp { digits }) => (Some(*digits), false),
                None => (None, false),
            };
            let period = match e.kind {
                OathType::Totp => protocol::parse_name(&e.name).ok().map(|n| n.period),
                OathType::Hotp => None,
            };
            CredentialInfo {
                name: e.name,
                kind: e.kind,
                algorithm: e.algorithm,
                digits,
                period,
                touch,
            }
        })
        .collect();
    Ok(ReaderListing {
        reader: reader.to_string(),
        version: Some(info.version_string()),
        password_protected: info.needs_password(),
        credentials,
        problem: None,
    })
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
