//! PC/SC transport and the search over readers.
//!
//! Rules that come from living next to other PC/SC programs (gpg's
//! scdaemon, ykman, browsers) and from suspend/resume:
//! - a fresh PC/SC context per operation: a context kept across a pcscd
//!   restart or a suspend goes stale (`SCARD_E_INVALID_HANDLE`,
//!   `SCARD_E_NO_SERVICE`), and pcsc-lite serialises calls on one context,
//!   so a CALCULATE waiting ~15 s for a touch would block other threads;
//! - connect per operation in shared mode, never hold the card between
//!   operations, and disconnect with `LeaveCard` (dropping a `pcsc::Card`
//!   would reset the card under the other programs' feet);
//! - the whole SELECT / VALIDATE / CALCULATE exchange runs in one
//!   transaction, so no other program can re-select another applet or
//!   reset the card between our commands;
//! - a reset or removal caused by another program, and a sharing violation,
//!   are retried a few times before they become errors.

use std::ffi::{CStr, CString};
use std::time::Duration;

use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};
use zeroize::Zeroize;

use super::error::{CardError, OathError};
use super::password::PasswordCache;
use super::protocol::Card;
use super::session;
use super::{Code, OathOptions, ReaderListing, TouchPrompt};

/// Attempts of one exchange on one reader before a reset, removal or
/// sharing violation is reported.
const ATTEMPTS: u32 = 3;

/// A connected card inside a transaction.
struct PcscCard<'a> {
    tx: &'a pcsc::Transaction<'a>,
}

impl Card for PcscCard<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let result = self.tx.transmit(apdu, &mut buf).map(<[u8]>::to_vec);
        buf.zeroize(); // may hold a code
        Ok(result?)
    }
}

fn establish() -> Result<Context, OathError> {
    Context::establish(Scope::User).map_err(|e| OathError::from_pcsc(None, e))
}

/// Readers whose name contains `filter` (all readers without one).
fn matching_readers(ctx: &Context, filter: Option<&str>) -> Result<Vec<CString>, OathError> {
    let all = match ctx.list_readers_owned() {
        Ok(r) => r,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(OathError::from_pcsc(None, e)),
    };
    let matching: Vec<CString> = all
        .iter()
        .filter(|r| filter.is_none_or(|f| r.to_string_lossy().contains(f)))
        .cloned()
        .collect();
    if matching.is_empty() {
        return Err(OathError::NoReader {
            filter: filter.map(str::to_string),
            available: all
                .iter()
                .map(|r| r.to_string_lossy().into_owned())
                .collect(),
        });
    }
    Ok(matching)
}

/// Runs `exchange` on the card in `reader` inside one transaction, retrying
/// the whole exchange on resets, removals and sharing violations.
fn with_card<T>(
    ctx: &Context,
    reader: &CStr,
    mut exchange: impl FnMut(&mut dyn Card, &str) -> Result<T, OathError>,
) -> Result<T, OathError> {
    let name = reader.to_string_lossy().into_owned();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = once(ctx, reader, &name, &mut exchange);
        match result {
            Err(e @ (OathError::CardReset { .. } | OathError::Sharing { .. }))
                if attempt < ATTEMPTS =>
            {
                tracing::debug!(reader = %name, attempt, "retrying the card exchange: {e}");
                // Let the other program finish with the card.
                std::thread::sleep(Duration::from_millis(
                    100 * u64::from(attempt) + fastrand::u64(0..100),
                ));
            }
            result => return result,
        }
    }
}

fn once<T>(
    ctx: &Context,
    reader: &CStr,
    name: &str,
    exchange: &mut impl FnMut(&mut dyn Card, &str) -> Result<T, OathError>,
) -> Result<T, OathError> {
    let pcsc_error = |e| OathError::from_pcsc(Some(name.to_string()), e);
    let mut card = ctx
        .connect(reader, ShareMode::Shared, Protocols::ANY)
        .map_err(pcsc_error)?;
    let result = match card.transaction() {
        Ok(tx) => {
            let result = exchange(&mut PcscCard { tx: &tx }, name);
            if let Err((_, e)) = tx.end(Disposition::LeaveCard) {
                tracing::debug!(reader = %name, "ending the PC/SC transaction: {e}");
            }
            result
        }
        Err(e) => Err(pcsc_error(e)),
    };
    if let Err((card, e)) = card.disconnect(Disposition::LeaveCard) {
        // The handle is stale already; dropping it cannot disturb anyone.
        tracing::debug!(reader = %name, "disconnecting: {e}");
        drop(card);
    }
    result
}

/// Credential found but unusable here: stop searching other readers.
fn is_final(e: &OathError) -> bool {
    use super::error::AppletError as A;
    matches!(
        e,
        OathError::Applet {
            source: A::TouchTimeout { .. } | A::NotTotp { .. },
            ..
        } | OathError::Password(_)
    )
}

/// How telling an error is when several readers failed: the lowest wins.
fn rank(e: &OathError) -> u8 {
    match e {
        OathError::Applet { .. }
        | OathError::PasswordNotConfigured { .. }
        | OathError::Password(_)
        | OathError::WrongPassword { .. }
        | OathError::InvalidName { .. }
        | OathError::Clock(_) => 0,
        OathError::Sharing { .. } => 1,
        OathError::CardReset { .. } | OathError::Pcsc { .. } | OathError::NoService => 2,
        OathError::NoSuchCredential { .. } => 3,
        OathError::AppletMissing { .. } => 4,
        OathError::NoCard { .. } => 5,
        OathError::NoReader { .. } => 6,
    }
}

/// One error out of the failures on every reader, merging the lists of
/// names, readers without a card, and readers without an applet.
fn merge(failures: Vec<OathError>) -> OathError {
    let mut best: Option<OathError> = None;
    for e in failures {
        best = Some(match (best, e) {
            (None, e) => e,
            (
                Some(OathError::NoSuchCredential {
                    name,
                    mut available,
                }),
                OathError::NoSuchCredential {
                    available: more, ..
                },
            ) => {
                available.extend(more);
                OathError::NoSuchCredential { name, available }
            }
            (Some(OathError::NoCard { mut readers }), OathError::NoCard { readers: more }) => {
                readers.extend(more);
                OathError::NoCard { readers }
            }
            (
                Some(OathError::AppletMissing { mut readers }),
                OathError::AppletMissing { readers: more },
            ) => {
                readers.extend(more);
                OathError::AppletMissing { readers }
            }
            (Some(b), e) => {
                if rank(&e) < rank(&b) {
                    e
                } else {
                    b
                }
            }
        });
    }
    best.unwrap_or(OathError::NoReader {
        filter: None,
        available: vec![],
    })
}

pub(crate) fn calculate(
    opts: &OathOptions,
    credential: &str,
    unix: u64,
    on_touch: &dyn Fn(&TouchPrompt),
) -> Result<Code, OathError> {
    let ctx = establish()?;
    let readers = matching_readers(&ctx, opts.reader_filter.as_deref())?;
    let mut password =
        PasswordCache::new(opts.password.as_ref()).with_timeout(opts.password_timeout);
    let mut failures = Vec::new();
    for reader in &readers {
        let result = with_card(&ctx, reader, |card, name| {
            session::calculate_on(card, name, credential, unix, &mut password, on_touch)
        });
        match result.map_err(|e| name_password_source(e, opts)) {
            Ok(code) => return Ok(code),
            Err(e) if is_final(&e) => return Err(e),
            Err(e) => {
                tracing::debug!(reader = ?reader, "no code from this reader: {e}");
                failures.push(e)
            }
        }
    }
    Err(merge(failures))
}

/// A wrong password, with the source it came from named.
fn name_password_source(error: OathError, opts: &OathOptions) -> OathError {
    match error {
        OathError::Applet {
            reader,
            source: super::error::AppletError::WrongPassword,
        } => OathError::WrongPassword {
            reader,
            from: opts
                .password
                .as_ref()
                .map_or("no password source".to_string(), |p| p.describe()),
        },
        other => other,
    }
}

pub(crate) fn list(opts: &OathOptions, unix: u64) -> Result<Vec<ReaderListing>, OathError> {
    let ctx = establish()?;
    let readers = matching_readers(&ctx, opts.reader_filter.as_deref())?;
    let mut password =
        PasswordCache::new(opts.password.as_ref()).with_timeout(opts.password_timeout);
    let mut listings = Vec::new();
    for reader in &readers {
        let result = with_card(&ctx, reader, |card, name| {
            session::list_on(card, name, unix, &mut password)
        });
        listings.push(match result.map_err(|e| name_password_source(e, opts)) {
            Ok(listing) => listing,
            Err(OathError::NoService) => return Err(OathError::NoService),
            Err(e) => ReaderListing {
                reader: reader.to_string_lossy().into_owned(),
                version: None,
                password_protected: matches!(
                    e,
                    OathError::PasswordNotConfigured { .. }
                        | OathError::WrongPassword { .. }
                        | OathError::Applet {
                            source: super::error::AppletError::WrongPassword,
                            ..
                        }
                ),
                credentials: Vec::new(),
                problem: Some(e.to_string()),
            },
        });
    }
    Ok(listings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{Classified, RetryClass};

    #[test]
    fn merge_prefers_the_most_telling_error_and_joins_lists() {
        let e = merge(vec![
            OathError::NoCard {
                readers: vec!["A".into()],
            },
            OathError::NoSuchCredential {
                name: "x".into(),
                available: vec![("B".into(), vec!["y".into()])],
            },
            OathError::NoSuchCredential {
                name: "x".into(),
                available: vec![("C".into(), vec!["z".into()])],
            },
        ]);
        let text = e.to_string();
        assert!(
            matches!(e, OathError::NoSuchCredential { ref available, .. } if available.len() == 2)
        );
        assert!(
            text.contains("\"y\"") && text.contains("\"z\"") && text.contains("\"C\""),
            "{text}"
        );
        assert_eq!(e.retry_class(), RetryClass::NeedsUser);

        let e = merge(vec![
            OathError::NoCard {
                readers: vec!["A".into()],
            },
            OathError::NoCard {
                readers: vec!["B".into()],
            },
        ]);
        assert_eq!(
            e.to_string(),
            "no smart card in \"A\", \"B\": insert the YubiKey"
        );
        assert_eq!(e.retry_class(), RetryClass::WaitForKey);

        let e = merge(vec![
            OathError::AppletMissing {
                readers: vec!["A".into()],
            },
            OathError::Sharing { reader: "B".into() },
        ]);
        assert!(matches!(e, OathError::Sharing { .. }));
        assert_eq!(e.retry_class(), RetryClass::Soon);
    }

    #[test]
    fn pcsc_errors_get_their_own_variants_and_classes() {
        let r = || Some("Yubico YubiKey OTP+FIDO+CCID 00 00".to_string());
        let cases = [
            (pcsc::Error::NoService, RetryClass::WaitForKey, "pcscd"),
            (pcsc::Error::ServiceStopped, RetryClass::WaitForKey, "pcscd"),
            (
                pcsc::Error::NoSmartcard,
                RetryClass::WaitForKey,
                "insert the YubiKey",
            ),
            (pcsc::Error::SharingViolation, RetryClass::Soon, "scdaemon"),
            (pcsc::Error::ResetCard, RetryClass::Soon, "reset or removed"),
            (
                pcsc::Error::RemovedCard,
                RetryClass::Soon,
                "reset or removed",
            ),
            (
                pcsc::Error::InvalidHandle,
                RetryClass::Soon,
                "reset or removed",
            ),
        ];
        for (error, class, text) in cases {
            let e = OathError::from_pcsc(r(), error);
            assert_eq!(e.retry_class(), class, "{error:?}");
            assert!(e.to_string().contains(text), "{error:?}: {e}");
        }
        let e = OathError::from_pcsc(r(), pcsc::Error::SharingViolation).to_string();
        assert!(
            e.contains("disable-ccid") && e.contains("pcsc-shared"),
            "{e}"
        );
        let e = OathError::NoService.to_string();
        assert!(e.contains("apt-get install pcscd"), "{e}");
    }
}
