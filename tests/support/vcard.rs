//! Credentials for the virtual YubiKey, and an independent TOTP (RFC 6238)
//! to check the codes that come back through PC/SC.

#![allow(dead_code)] // each test binary uses a part

use hmac::{Hmac, KeyInit, Mac};

pub const SHA1_SECRET: &[u8] = b"12345678901234567890";
pub const SHA256_SECRET: &[u8] = b"12345678901234567890123456789012";
pub const SHA512_SECRET: &[u8] =
    b"1234567890123456789012345678901234567890123456789012345678901234";

pub const AWS: &str = "Amazon Web Services:user@123457890123";

/// One `[[credential]]` table of the virtual YubiKey's file.
pub fn credential(name: &str, algorithm: &str, digits: u8, secret: &[u8], touch: bool) -> String {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "[[credential]]\nname = {name:?}\ntype = \"totp\"\nalgorithm = {algorithm:?}\n\
         digits = {digits}\nsecret_hex = \"{hex}\"\ntouch = {touch}\n\n"
    )
}

pub fn hotp_credential(name: &str) -> String {
    format!(
        "[[credential]]\nname = {name:?}\ntype = \"hotp\"\nalgorithm = \"sha1\"\n\
         digits = 6\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n\n"
    )
}

/// RFC 6238 TOTP, written from the RFC, independent of the code under test.
pub fn totp(algorithm: &str, secret: &[u8], step: u64, digits: u32) -> String {
    let msg = step.to_be_bytes();
    let mac: Vec<u8> = match algorithm {
        "sha1" => {
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
            m.update(&msg);
            m.finalize().into_bytes().to_vec()
        }
        "sha256" => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            m.update(&msg);
            m.finalize().into_bytes().to_vec()
        }
        "sha512" => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            m.update(&msg);
            m.finalize().into_bytes().to_vec()
        }
        other => panic!("unknown algorithm {other}"),
    };
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes(mac[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

#[test]
fn independent_totp_matches_rfc6238() {
    assert_eq!(totp("sha1", SHA1_SECRET, 1, 8), "94287082");
    assert_eq!(
        totp("sha256", SHA256_SECRET, 1111111109 / 30, 8),
        "68084774"
    );
    assert_eq!(
        totp("sha512", SHA512_SECRET, 20000000000 / 30, 8),
        "47863826"
    );
    assert_eq!(totp("sha1", SHA1_SECRET, 1, 6), "287082");
}
