//! MFA code checks as AWS does them, which moto does not: a code is refused
//! when AWS has already accepted it for the same device (codes are single
//! use), and, for devices whose TOTP secret the front knows, when it is not
//! the code of the current 30-second step or a neighbouring one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Why a code was refused. AWS answers both with the same message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Already accepted for this device (same code, or same or an earlier
    /// time step when the secret is known).
    Reused,
    /// Not a code of this device's current window.
    Wrong,
}

impl Refusal {
    pub fn outcome(self) -> &'static str {
        match self {
            Refusal::Reused => "mfa_reused",
            Refusal::Wrong => "mfa_wrong",
        }
    }
}

pub struct MfaChecker {
    secrets: HashMap<String, Vec<u8>>,
    /// How long an accepted code stays unusable, for devices without a
    /// known secret (a TOTP code is valid for up to ±1 step, so 90 s).
    reuse_window: Duration,
    /// Devices without a known secret: the codes accepted, and when.
    accepted_codes: HashMap<String, Vec<(String, Instant)>>,
    /// Devices with a known secret: the last time step accepted.
    last_step: HashMap<String, u64>,
}

impl MfaChecker {
    pub fn new(secrets: HashMap<String, Vec<u8>>, reuse_window: Duration) -> Self {
        MfaChecker {
            secrets,
            reuse_window,
            accepted_codes: HashMap::new(),
            last_step: HashMap::new(),
        }
    }

    /// Checks (and, when good, consumes) `code` for device `serial` at
    /// `unix_time`. A code counts as used from the moment it is accepted,
    /// so of two concurrent calls with one code only the first gets through.
    pub fn check(
        &mut self,
        serial: &str,
        code: &str,
        unix_time: u64,
        now: Instant,
    ) -> Result<(), Refusal> {
        if let Some(secret) = self.secrets.get(serial) {
            let step = unix_time / 30;
            let matched = [step.saturating_sub(1), step, step + 1]
                .into_iter()
                .find(|&s| totp(secret, s) == code)
                .ok_or(Refusal::Wrong)?;
            if self
                .last_step
                .get(serial)
                .is_some_and(|&last| matched <= last)
            {
                return Err(Refusal::Reused);
            }
            self.last_step.insert(serial.to_string(), matched);
            return Ok(());
        }
        let window = self.reuse_window;
        let accepted = self.accepted_codes.entry(serial.to_string()).or_default();
        accepted.retain(|(_, at)| now.duration_since(*at) < window);
        if accepted.iter().any(|(c, _)| c == code) {
            return Err(Refusal::Reused);
        }
        accepted.push((code.to_string(), now));
        Ok(())
    }

    pub fn forget(&mut self) {
        self.accepted_codes.clear();
        self.last_step.clear();
    }
}

/// RFC 6238 TOTP, SHA-1, six digits, for time step `step`.
pub fn totp(secret: &[u8], step: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset],
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}

/// Parses `SERIAL=SECRET` where SECRET is `hex:...`, `base32:...`, or bare
/// base32 (as authenticator apps show it) or, failing that, bare hex.
/// Base32 padding (`=`) is ignored, so the split is at the last `=` before it.
pub fn parse_secret_arg(arg: &str) -> Result<(String, Vec<u8>), String> {
    let trimmed = arg.trim_end_matches('=');
    let (serial, secret) = trimmed
        .rsplit_once('=')
        .ok_or_else(|| format!("--totp-secret {arg:?}: expected SERIAL=SECRET"))?;
    let bytes = if let Some(hex) = secret.strip_prefix("hex:") {
        decode_hex(hex)
    } else if let Some(b32) = secret.strip_prefix("base32:") {
        decode_base32(b32)
    } else {
        decode_base32(secret).or_else(|| decode_hex(secret))
    };
    match bytes {
        Some(bytes) if !serial.is_empty() && !bytes.is_empty() => Ok((serial.to_string(), bytes)),
        _ => Err(format!(
            "--totp-secret for {serial:?}: the secret is neither base32 nor hex"
        )),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn decode_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors_truncated_to_six_digits() {
        let secret = b"12345678901234567890";
        // RFC 6238 gives 8 digits (94287082, 07081804, 89005924); the last six:
        assert_eq!(totp(secret, 59 / 30), "287082");
        assert_eq!(totp(secret, 1_111_111_109 / 30), "081804");
        assert_eq!(totp(secret, 1_234_567_890 / 30), "005924");
    }

    #[test]
    fn secrets_parse_as_base32_or_hex() {
        let (serial, bytes) =
            parse_secret_arg("arn:aws:iam::123456789012:mfa/me=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
                .unwrap();
        assert_eq!(serial, "arn:aws:iam::123456789012:mfa/me");
        assert_eq!(bytes, b"12345678901234567890");
        let (_, bytes) = parse_secret_arg("dev=3132333435363738393031323334353637383930").unwrap();
        assert_eq!(bytes, b"12345678901234567890");
        assert!(parse_secret_arg("no-secret").is_err());
    }
}
