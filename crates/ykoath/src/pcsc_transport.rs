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

use crate::error::{AppletError, CardError, Error, ErrorKind};
use crate::protocol::Card;
use crate::session;
use crate::{Code, Options, PasswordCache, ReaderListing, TouchPrompt};

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

fn establish() -> Result<Context, Error> {
    Context::establish(Scope::User).map_err(|e| Error::from_pcsc(None, e))
}

/// Readers whose name contains `filter` (all readers without one).
fn matching_readers(ctx: &Context, filter: Option<&str>) -> Result<Vec<CString>, Error> {
    let all = match ctx.list_readers_owned() {
        Ok(r) => r,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(Error::from_pcsc(None, e)),
    };
    let matching: Vec<CString> = all
        .iter()
        .filter(|r| filter.is_none_or(|f| r.to_string_lossy().contains(f)))
        .cloned()
        .collect();
    if matching.is_empty() {
        return Err(Error::new(
            None,
            ErrorKind::NoReader {
                filter: filter.map(str::to_string),
                available: all
                    .iter()
                    .map(|r| r.to_string_lossy().into_owned())
                    .collect(),
            },
        ));
    }
    Ok(matching)
}

/// Runs `exchange` on the card in `reader` inside one transaction, retrying
/// the whole exchange on resets, removals and sharing violations.
fn with_card<T>(
    ctx: &Context,
    reader: &CStr,
    mut exchange: impl FnMut(&mut dyn Card, &str) -> Result<T, Error>,
) -> Result<T, Error> {
    let name = reader.to_string_lossy().into_owned();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = once(ctx, reader, &name, &mut exchange);
        match result {
            Err(e)
                if matches!(e.kind(), ErrorKind::CardReset(_) | ErrorKind::Sharing)
                    && attempt < ATTEMPTS =>
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
    exchange: &mut impl FnMut(&mut dyn Card, &str) -> Result<T, Error>,
) -> Result<T, Error> {
    let pcsc_error = |e| Error::from_pcsc(Some(name), e);
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
fn is_final(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Applet(AppletError::TouchTimeout { .. } | AppletError::NotTotp { .. })
            | ErrorKind::Password(_)
    )
}

/// How telling an error is when several readers failed: the lowest wins.
fn rank(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Applet(_)
        | ErrorKind::PasswordRequired
        | ErrorKind::Password(_)
        | ErrorKind::WrongPassword
        | ErrorKind::InvalidName { .. }
        | ErrorKind::ClockBeforeEpoch { .. } => 0,
        ErrorKind::Sharing => 1,
        ErrorKind::CardReset(_)
        | ErrorKind::Pcsc(_)
        | ErrorKind::NoService
        | ErrorKind::AccessDenied => 2,
        ErrorKind::NoSuchCredential { .. } => 3,
        ErrorKind::AppletMissing { .. } => 4,
        ErrorKind::NoCard { .. } => 5,
        ErrorKind::NoReader { .. } => 6,
    }
}

/// One error out of the failures on every reader, merging the lists of
/// names, readers without a card, and readers without an applet.
fn merge(failures: Vec<Error>) -> Error {
    let mut best: Option<Error> = None;
    for e in failures {
        best = Some(match best {
            None => e,
            Some(mut b) => {
                let merged = match (&mut b.kind, e.kind) {
                    (
                        ErrorKind::NoSuchCredential { available, .. },
                        ErrorKind::NoSuchCredential {
                            available: more, ..
                        },
                    ) => {
                        available.extend(more);
                        None
                    }
                    (ErrorKind::NoCard { readers }, ErrorKind::NoCard { readers: more })
                    | (
                        ErrorKind::AppletMissing { readers },
                        ErrorKind::AppletMissing { readers: more },
                    ) => {
                        readers.extend(more);
                        None
                    }
                    (_, kind) => Some(Error {
                        reader: e.reader,
                        kind,
                    }),
                };
                match merged {
                    Some(e) if rank(&e) < rank(&b) => e,
                    _ => b,
                }
            }
        });
    }
    best.unwrap_or(Error::new(
        None,
        ErrorKind::NoReader {
            filter: None,
            available: vec![],
        },
    ))
}

pub(crate) fn calculate(
    opts: &Options<'_>,
    credential: &str,
    unix: u64,
    on_touch: &dyn Fn(&TouchPrompt),
) -> Result<Code, Error> {
    let ctx = establish()?;
    let readers = matching_readers(&ctx, opts.reader_filter)?;
    let mut password = PasswordCache::new(opts.password);
    let mut failures = Vec::new();
    for reader in &readers {
        let result = with_card(&ctx, reader, |card, name| {
            session::calculate_on(card, name, credential, unix, &mut password, on_touch)
        });
        match result {
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

pub(crate) fn list(opts: &Options<'_>, unix: u64) -> Result<Vec<ReaderListing>, Error> {
    let ctx = establish()?;
    let readers = matching_readers(&ctx, opts.reader_filter)?;
    let mut password = PasswordCache::new(opts.password);
    let mut listings = Vec::new();
    for reader in &readers {
        let result = with_card(&ctx, reader, |card, name| {
            session::list_on(card, name, unix, &mut password)
        });
        listings.push(match result {
            Ok(listing) => listing,
            Err(e) if matches!(e.kind(), ErrorKind::NoService | ErrorKind::AccessDenied) => {
                return Err(e);
            }
            Err(e) => ReaderListing {
                reader: reader.to_string_lossy().into_owned(),
                version: None,
                password_protected: matches!(
                    e.kind(),
                    ErrorKind::PasswordRequired | ErrorKind::WrongPassword
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

    fn no_card(reader: &str) -> Error {
        Error::new(
            None,
            ErrorKind::NoCard {
                readers: vec![reader.into()],
            },
        )
    }

    fn missing(reader: &str, holds: &str) -> Error {
        Error::new(
            None,
            ErrorKind::NoSuchCredential {
                name: "x".into(),
                available: vec![(reader.into(), vec![holds.into()])],
            },
        )
    }

    #[test]
    fn merge_prefers_the_most_telling_error_and_joins_lists() {
        let e = merge(vec![no_card("A"), missing("B", "y"), missing("C", "z")]);
        let text = e.to_string();
        assert!(
            matches!(e.kind(), ErrorKind::NoSuchCredential { available, .. } if available.len() == 2)
        );
        assert!(
            text.contains("\"y\"") && text.contains("\"z\"") && text.contains("\"C\""),
            "{text}"
        );

        let e = merge(vec![no_card("A"), no_card("B")]);
        assert_eq!(
            e.to_string(),
            "no smart card in \"A\", \"B\": insert the YubiKey"
        );

        let applet_missing = Error::new(
            None,
            ErrorKind::AppletMissing {
                readers: vec!["A".into()],
            },
        );
        let e = merge(vec![
            applet_missing,
            Error::new(Some("B"), ErrorKind::Sharing),
        ]);
        assert!(matches!(e.kind(), ErrorKind::Sharing));
        assert_eq!(e.reader(), Some("B"));
    }

    #[test]
    fn pcsc_errors_get_their_own_kinds() {
        let r = Some("Yubico YubiKey OTP+FIDO+CCID 00 00");
        let cases = [
            (pcsc::Error::NoService, "pcscd"),
            (pcsc::Error::ServiceStopped, "pcscd"),
            (pcsc::Error::NoSmartcard, "insert the YubiKey"),
            (pcsc::Error::SharingViolation, "scdaemon"),
            (pcsc::Error::ResetCard, "reset or removed"),
            (pcsc::Error::RemovedCard, "reset or removed"),
            (pcsc::Error::InvalidHandle, "reset or removed"),
            (
                pcsc::Error::SecurityViolation,
                "org.debian.pcsc-lite.access_card",
            ),
        ];
        for (error, text) in cases {
            let e = Error::from_pcsc(r, error);
            assert!(e.to_string().contains(text), "{error:?}: {e}");
        }
        let e = Error::from_pcsc(r, pcsc::Error::SharingViolation).to_string();
        assert!(
            e.contains("disable-ccid") && e.contains("pcsc-shared"),
            "{e}"
        );
        let e = Error::from_pcsc(None, pcsc::Error::NoService).to_string();
        assert!(e.contains("apt-get install pcscd"), "{e}");
    }
}
