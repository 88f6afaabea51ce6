//! The host side of YKOATH, over any [`Card`] that can exchange APDUs.
//!
//! Everything here is pure command building and response parsing, so that
//! it is tested against the in-memory applet (`applet.rs`) byte for byte;
//! the PC/SC transport only supplies `transmit`.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{AppletError, CardError, StatusWord};

/// One APDU exchange with a card.
pub trait Card {
    /// Sends a command APDU; returns response data followed by SW1 SW2.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError>;
}

pub(crate) const OATH_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01];

const INS_SELECT: u8 = 0xA4;
const INS_LIST: u8 = 0xA1;
const INS_CALCULATE: u8 = 0xA2;
const INS_VALIDATE: u8 = 0xA3;
const INS_CALCULATE_ALL: u8 = 0xA4;
const INS_SEND_REMAINING: u8 = 0xA5;

const TAG_NAME: u8 = 0x71;
const TAG_NAME_LIST: u8 = 0x72;
const TAG_CHALLENGE: u8 = 0x74;
const TAG_RESPONSE: u8 = 0x75;
const TAG_TRUNCATED: u8 = 0x76;
const TAG_HOTP: u8 = 0x77;
const TAG_VERSION: u8 = 0x79;
const TAG_ALGORITHM: u8 = 0x7B;
const TAG_TOUCH: u8 = 0x7C;

/// The period assumed when a name has no `NN/` prefix.
pub const DEFAULT_PERIOD: u64 = 30;
/// Longest name the YubiKey stores.
pub(crate) const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OathType {
    Hotp,
    Totp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HashAlgorithm {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

impl std::fmt::Display for OathType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OathType::Hotp => "HOTP",
            OathType::Totp => "TOTP",
        })
    }
}

impl std::fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
            HashAlgorithm::Sha512 => "SHA512",
        })
    }
}

/// What SELECT tells about the applet.
#[derive(Debug, Clone)]
pub struct SelectInfo {
    pub version: Vec<u8>,
    /// Tag 71: the salt of the password key derivation (also the device id).
    pub salt: Vec<u8>,
    /// Tag 74: present when a password is set; VALIDATE must answer it.
    pub challenge: Option<Vec<u8>>,
    /// Tag 7B.
    pub algorithm: Option<u8>,
}

impl SelectInfo {
    pub fn needs_password(&self) -> bool {
        self.challenge.is_some()
    }

    pub fn version_string(&self) -> String {
        self.version
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// One LIST entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub name: String,
    pub kind: OathType,
    pub algorithm: HashAlgorithm,
}

/// What CALCULATE ALL says about one credential.
#[derive(Clone, PartialEq, Eq)]
pub enum AllState {
    /// A truncated TOTP response, computed with the challenge we sent.
    Code(Truncated),
    /// Tag 7C: calculate it singly; the key then waits for a touch.
    Touch { digits: u8 },
    /// Tag 77: HOTP, not calculated.
    Hotp { digits: u8 },
}

impl std::fmt::Debug for AllState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllState::Code(t) => write!(f, "Code({t:?})"),
            AllState::Touch { digits } => write!(f, "Touch({digits} digits)"),
            AllState::Hotp { digits } => write!(f, "Hotp({digits} digits)"),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Truncated {
    pub digits: u8,
    value: u32,
}

impl std::fmt::Debug for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Truncated({} digits, ***)", self.digits)
    }
}

impl Drop for Truncated {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl Truncated {
    /// The code: `(value & 0x7fffffff) mod 10^digits`, zero-padded.
    pub fn code(&self) -> SecretString {
        let modulus = 10u64.pow(u32::from(self.digits));
        let n = u64::from(self.value & 0x7fff_ffff) % modulus;
        let mut s = format!("{n:0width$}", width = self.digits as usize);
        let secret = SecretString::from(s.as_str());
        s.zeroize();
        secret
    }
}

/// A credential name split into its parts: `[period/][issuer:]account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialName<'a> {
    pub period: u64,
    pub issuer: Option<&'a str>,
    pub account: &'a str,
}

/// Parses a TOTP name. The period prefix appears only when it is not 30,
/// as ykman writes it; `0/` or a period too large to count is invalid.
pub fn parse_name(name: &str) -> Result<CredentialName<'_>, &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("longer than the 64 bytes a YubiKey stores");
    }
    let (period, rest) = match name.split_once('/') {
        Some((p, rest)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            let period: u64 = p.parse().map_err(|_| "period prefix out of range")?;
            if period == 0 || period > 86_400 {
                return Err("the period prefix must be between 1 and 86400 seconds");
            }
            (period, rest)
        }
        _ => (DEFAULT_PERIOD, name),
    };
    let (issuer, account) = match rest.split_once(':') {
        Some((i, a)) => (Some(i), a),
        None => (None, rest),
    };
    Ok(CredentialName {
        period,
        issuer,
        account,
    })
}

/// The TOTP time step and its 8-byte big-endian challenge.
pub(crate) fn totp_challenge(unix_seconds: u64, period: u64) -> (u64, [u8; 8]) {
    let step = unix_seconds / period;
    (step, step.to_be_bytes())
}

fn apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 255, "short APDUs only");
    let mut a = vec![0x00, ins, p1, p2];
    if !data.is_empty() {
        a.push(data.len() as u8);
        a.extend_from_slice(data);
    }
    a
}

fn tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// Splits a response into (tag, value) pairs; `None` on a truncated TLV.
fn parse_tlvs(mut data: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut tags = Vec::new();
    while !data.is_empty() {
        if data.len() < 2 {
            return None;
        }
        let (tag, len) = (data[0], data[1] as usize);
        if data.len() < 2 + len {
            return None;
        }
        tags.push((tag, &data[2..2 + len]));
        data = &data[2 + len..];
    }
    Some(tags)
}

fn find<'a>(tags: &[(u8, &'a [u8])], tag: u8) -> Option<&'a [u8]> {
    tags.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

/// Why [`exchange`] failed, before the status word is interpreted for the
/// command that was sent.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    Card(CardError),
    Status(StatusWord),
    ShortResponse,
    EndlessChain,
}

/// Sends a command and follows SEND REMAINING while SW1 is `61`. Returns
/// the whole response data, zeroed on drop (it may hold codes).
pub(crate) fn exchange(
    card: &mut dyn Card,
    command: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ExchangeError> {
    let mut data = Zeroizing::new(Vec::new());
    let mut response = Zeroizing::new(card.transmit(command).map_err(ExchangeError::Card)?);
    // A card that keeps saying "more" forever must not hang us.
    for _ in 0..64 {
        if response.len() < 2 {
            return Err(ExchangeError::ShortResponse);
        }
        let n = response.len() - 2;
        let sw = u16::from_be_bytes([response[n], response[n + 1]]);
        data.extend_from_slice(&response[..n]);
        if sw >> 8 != 0x61 {
            if sw == 0x9000 {
                return Ok(data);
            }
            return Err(ExchangeError::Status(StatusWord(sw)));
        }
        response = Zeroizing::new(
            card.transmit(&apdu(INS_SEND_REMAINING, 0, 0, &[]))
                .map_err(ExchangeError::Card)?,
        );
    }
    Err(ExchangeError::EndlessChain)
}

/// The meaning of a status word that is not `90 00`, for command `ins`.
/// `69 82` and `69 84` mean different things for different commands; the
/// callers that know better (touch, VALIDATE, a named CALCULATE) refine them.
pub(crate) fn status_error(ins: u8, sw: StatusWord) -> AppletError {
    match sw.0 {
        0x6982 => AppletError::AuthenticationRequired,
        0x6A80 => AppletError::WrongData { ins },
        0x6D00 | 0x6A82 => AppletError::NotOath(sw),
        _ => AppletError::UnexpectedStatus { ins, sw },
    }
}

/// The general meaning of a failed exchange of command `ins`.
fn generic(ins: u8) -> impl Fn(ExchangeError) -> AppletError {
    move |e| match e {
        ExchangeError::Card(c) => AppletError::Card(c),
        ExchangeError::Status(sw) => status_error(ins, sw),
        ExchangeError::ShortResponse => AppletError::Malformed {
            ins,
            detail: "response shorter than a status word",
        },
        ExchangeError::EndlessChain => AppletError::Malformed {
            ins,
            detail: "endless SEND REMAINING chain",
        },
    }
}

/// SELECT the OATH applet.
pub fn select(card: &mut dyn Card) -> Result<SelectInfo, AppletError> {
    let data = exchange(card, &apdu(INS_SELECT, 0x04, 0x00, &OATH_AID)).map_err(|e| match e {
        ExchangeError::Status(sw) => AppletError::NotOath(sw),
        e => generic(INS_SELECT)(e),
    })?;
    let malformed = |detail| AppletError::Malformed {
        ins: INS_SELECT,
        detail,
    };
    let tags = parse_tlvs(&data).ok_or(malformed("truncated TLV"))?;
    let salt = find(&tags, TAG_NAME).ok_or(malformed("no salt (tag 71)"))?;
    Ok(SelectInfo {
        version: find(&tags, TAG_VERSION).unwrap_or_default().to_vec(),
        salt: salt.to_vec(),
        challenge: find(&tags, TAG_CHALLENGE).map(<[u8]>::to_vec),
        algorithm: find(&tags, TAG_ALGORITHM).and_then(|a| a.first().copied()),
    })
}

/// The access key: PBKDF2-HMAC-SHA1(password, salt, 1000 iterations, 16 bytes).
pub(crate) fn derive_key(password: &SecretString, salt: &[u8]) -> Zeroizing<[u8; 16]> {
    let mut key = Zeroizing::new([0u8; 16]);
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.expose_secret().as_bytes(), salt, 1000, &mut *key);
    key
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// The VALIDATE command: our answer to the card's challenge, and our own
/// challenge for the card.
pub(crate) fn validate_apdu(
    key: &[u8],
    card_challenge: &[u8],
    host_challenge: &[u8; 8],
) -> Vec<u8> {
    let mut data = Vec::new();
    tlv(&mut data, TAG_RESPONSE, &hmac_sha1(key, card_challenge));
    tlv(&mut data, TAG_CHALLENGE, host_challenge);
    apdu(INS_VALIDATE, 0, 0, &data)
}

/// VALIDATE, then checks that the card knows the key too (its answer to
/// `host_challenge`), as ykman does.
pub fn validate(
    card: &mut dyn Card,
    key: &[u8],
    info: &SelectInfo,
    host_challenge: &[u8; 8],
) -> Result<(), AppletError> {
    let card_challenge = info.challenge.as_deref().unwrap_or_default();
    let data = exchange(card, &validate_apdu(key, card_challenge, host_challenge)).map_err(
        |e| match e {
            // A YubiKey answers a wrong response with 6A 80; older
            // firmware and other applets with 69 84.
            ExchangeError::Status(StatusWord(0x6A80 | 0x6984)) => AppletError::WrongPassword,
            e => generic(INS_VALIDATE)(e),
        },
    )?;
    let tags = parse_tlvs(&data).ok_or(AppletError::Malformed {
        ins: INS_VALIDATE,
        detail: "truncated TLV",
    })?;
    let answer = find(&tags, TAG_RESPONSE).ok_or(AppletError::Malformed {
        ins: INS_VALIDATE,
        detail: "no response (tag 75)",
    })?;
    let expected = hmac_sha1(key, host_challenge);
    if !constant_time_eq(answer, &expected) {
        return Err(AppletError::CardAuthenticationFailed);
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn type_and_algorithm(byte: u8) -> Option<(OathType, HashAlgorithm)> {
    let kind = match byte >> 4 {
        1 => OathType::Hotp,
        2 => OathType::Totp,
        _ => return None,
    };
    let algorithm = match byte & 0x0f {
        1 => HashAlgorithm::Sha1,
        2 => HashAlgorithm::Sha256,
        3 => HashAlgorithm::Sha512,
        _ => return None,
    };
    Some((kind, algorithm))
}

/// LIST: names, types and hashes (no codes, no touch flag).
pub fn list(card: &mut dyn Card) -> Result<Vec<ListEntry>, AppletError> {
    let data = exchange(card, &apdu(INS_LIST, 0, 0, &[])).map_err(generic(INS_LIST))?;
    let malformed = |detail| AppletError::Malformed {
        ins: INS_LIST,
        detail,
    };
    let tags = parse_tlvs(&data).ok_or(malformed("truncated TLV"))?;
    let mut entries = Vec::new();
    for (tag, value) in tags {
        if tag != TAG_NAME_LIST || value.is_empty() {
            continue;
        }
        let (kind, algorithm) =
            type_and_algorithm(value[0]).ok_or(malformed("unknown type or hash"))?;
        let name =
            String::from_utf8(value[1..].to_vec()).map_err(|_| malformed("name is not UTF-8"))?;
        entries.push(ListEntry {
            name,
            kind,
            algorithm,
        });
    }
    Ok(entries)
}

/// The CALCULATE command for one credential, truncated (P2 = 01).
pub(crate) fn calculate_apdu(name: &str, challenge: &[u8; 8]) -> Vec<u8> {
    let mut data = Vec::new();
    tlv(&mut data, TAG_NAME, name.as_bytes());
    tlv(&mut data, TAG_CHALLENGE, challenge);
    apdu(INS_CALCULATE, 0x00, 0x01, &data)
}

fn parse_truncated(ins: u8, value: &[u8]) -> Result<Truncated, AppletError> {
    if value.len() != 5 || !(6..=8).contains(&value[0]) {
        return Err(AppletError::Malformed {
            ins,
            detail: "truncated response is not digits + 4 bytes",
        });
    }
    Ok(Truncated {
        digits: value[0],
        value: u32::from_be_bytes([value[1], value[2], value[3], value[4]]),
    })
}

/// CALCULATE one credential. `touch` tells whether the credential needs a
/// touch, which changes the meaning of `69 82` from "authentication
/// required" to "touch timed out".
pub fn calculate(
    card: &mut dyn Card,
    name: &str,
    challenge: &[u8; 8],
    touch: bool,
) -> Result<Truncated, AppletError> {
    let data = exchange(card, &calculate_apdu(name, challenge)).map_err(|e| match e {
        ExchangeError::Status(StatusWord(0x6984)) => AppletError::NoSuchCredential {
            name: name.to_string(),
            available: Vec::new(),
        },
        ExchangeError::Status(StatusWord(0x6982)) if touch => AppletError::TouchTimeout {
            name: name.to_string(),
        },
        e => generic(INS_CALCULATE)(e),
    })?;
    let tags = parse_tlvs(&data).ok_or(AppletError::Malformed {
        ins: INS_CALCULATE,
        detail: "truncated TLV",
    })?;
    let value = find(&tags, TAG_TRUNCATED).ok_or(AppletError::Malformed {
        ins: INS_CALCULATE,
        detail: "no truncated response (tag 76)",
    })?;
    parse_truncated(INS_CALCULATE, value)
}

/// CALCULATE ALL (truncated): every credential's name with its code, or
/// the reason it has none (touch, HOTP).
pub fn calculate_all(
    card: &mut dyn Card,
    challenge: &[u8; 8],
) -> Result<Vec<(String, AllState)>, AppletError> {
    let mut data_field = Vec::new();
    tlv(&mut data_field, TAG_CHALLENGE, challenge);
    let data = exchange(card, &apdu(INS_CALCULATE_ALL, 0x00, 0x01, &data_field))
        .map_err(generic(INS_CALCULATE_ALL))?;
    let malformed = |detail| AppletError::Malformed {
        ins: INS_CALCULATE_ALL,
        detail,
    };
    let tags = parse_tlvs(&data).ok_or(malformed("truncated TLV"))?;
    let mut out = Vec::new();
    let mut iter = tags.into_iter();
    while let Some((tag, name)) = iter.next() {
        if tag != TAG_NAME {
            return Err(malformed("expected a name (tag 71)"));
        }
        let name = String::from_utf8(name.to_vec()).map_err(|_| malformed("name is not UTF-8"))?;
        let (tag, value) = iter.next().ok_or(malformed("name without a response"))?;
        let digits = *value.first().ok_or(malformed("empty response"))?;
        let state = match tag {
            TAG_TRUNCATED => AllState::Code(parse_truncated(INS_CALCULATE_ALL, value)?),
            TAG_TOUCH => AllState::Touch { digits },
            TAG_HOTP => AllState::Hotp { digits },
            _ => return Err(malformed("unknown response tag")),
        };
        out.push((name, state));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
pub(crate) mod tests;
