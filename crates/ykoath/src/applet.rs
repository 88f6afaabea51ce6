//! The card side of YKOATH: an in-memory OATH applet that answers APDUs the
//! way a YubiKey 5 does.
//!
//! It is shared by the unit tests (compiled into the library only under
//! `cfg(test)`) and by the virtual YubiKey (`examples/virtual_yubikey.rs`,
//! which includes this file with `#[path]`). It is deliberately written
//! without using the host-side code in `protocol.rs`, so that a test of the
//! host against it checks two independent implementations of the same
//! specification. It depends only on the hash crates.

#![allow(dead_code)] // each includer uses a different part of it

use hmac::{Hmac, KeyInit, Mac};

/// Hash of an OATH credential, with the codes the YKOATH LIST and name
/// bytes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1 = 1,
    Sha256 = 2,
    Sha512 = 3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hotp = 1,
    Totp = 2,
}

/// One credential stored on the virtual key.
#[derive(Clone)]
pub struct Credential {
    pub name: String,
    pub kind: Kind,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub secret: Vec<u8>,
    pub touch: bool,
    /// HOTP moving factor.
    pub counter: u64,
}

/// What happens when a touch-required credential is calculated.
pub trait Touch: Send {
    /// Blocks like the key's LED blinking; `true` if the user touched it.
    fn wait_for_touch(&mut self, credential: &str) -> bool;
}

/// Touched at once (unit tests).
pub struct TouchedAtOnce;
impl Touch for TouchedAtOnce {
    fn wait_for_touch(&mut self, _: &str) -> bool {
        true
    }
}

/// Never touched (unit tests of the touch timeout).
pub struct NeverTouched;
impl Touch for NeverTouched {
    fn wait_for_touch(&mut self, _: &str) -> bool {
        false
    }
}

const SW_OK: [u8; 2] = [0x90, 0x00];
const SW_SECURITY: [u8; 2] = [0x69, 0x82];
const SW_NO_SUCH_OBJECT: [u8; 2] = [0x69, 0x84];
const SW_WRONG_DATA: [u8; 2] = [0x6A, 0x80];
const SW_NOT_FOUND: [u8; 2] = [0x6A, 0x82];
const SW_INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];
const SW_CLA_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];
const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];

pub const OATH_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01];

/// The OATH applet of one key.
pub struct Applet {
    pub credentials: Vec<Credential>,
    /// PBKDF2-derived access key, when a password is set.
    access_key: Option<[u8; 16]>,
    pub salt: [u8; 8],
    pub version: [u8; 3],
    /// When set, SELECT always offers this challenge (known-answer tests);
    /// otherwise a fresh random one, as a real key does.
    pub fixed_challenge: Option<[u8; 8]>,
    /// Largest response data sent at once; the rest waits for SEND
    /// REMAINING (SW1 = 61), as a real key does for long LIST answers.
    pub max_response: usize,
    /// When false, the card behaves like one without the OATH applet.
    pub has_oath: bool,
    pub touch: Box<dyn Touch>,
    /// Number of CALCULATE and CALCULATE ALL commands answered with codes.
    pub calculate_count: u64,
    selected: bool,
    authenticated: bool,
    challenge: [u8; 8],
    remaining: Vec<u8>,
}

impl Applet {
    pub fn new(credentials: Vec<Credential>) -> Applet {
        let mut salt = [0u8; 8];
        fastrand::fill(&mut salt);
        Applet {
            credentials,
            access_key: None,
            salt,
            version: [5, 4, 3],
            fixed_challenge: None,
            max_response: 0,
            has_oath: true,
            touch: Box::new(TouchedAtOnce),
            calculate_count: 0,
            selected: false,
            authenticated: false,
            challenge: [0; 8],
            remaining: Vec::new(),
        }
    }

    /// Sets the applet password, deriving the access key as `ykman oath
    /// access change` does.
    pub fn set_password(&mut self, password: &str) {
        let mut key = [0u8; 16];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), &self.salt, 1000, &mut key);
        self.access_key = Some(key);
    }

    /// A power cycle or reset: the applet is deselected and forgets VALIDATE.
    pub fn reset(&mut self) {
        self.selected = false;
        self.authenticated = false;
        self.remaining.clear();
    }

    /// Answers one command APDU with response data followed by SW1 SW2.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        if apdu.len() < 4 {
            return SW_WRONG_LENGTH.to_vec();
        }
        let (cla, ins, p1, p2) = (apdu[0], apdu[1], apdu[2], apdu[3]);
        let data: &[u8] = if apdu.len() > 5 {
            let lc = apdu[4] as usize;
            if apdu.len() < 5 + lc {
                return SW_WRONG_LENGTH.to_vec();
            }
            &apdu[5..5 + lc]
        } else {
            &[]
        };
        if cla != 0x00 {
            return SW_CLA_NOT_SUPPORTED.to_vec();
        }
        if ins != 0xA5 {
            self.remaining.clear();
        }
        if ins == 0xA4 && p1 == 0x04 {
            return self.select(data);
        }
        if !self.selected {
            return SW_INS_NOT_SUPPORTED.to_vec();
        }
        match ins {
            0xA5 => self.send_remaining(),
            0xA3 => self.validate(data),
            0xA1 | 0xA2 | 0xA4 if self.access_key.is_some() && !self.authenticated => {
                SW_SECURITY.to_vec()
            }
            0xA1 => {
                let mut out = Vec::new();
                for c in &self.credentials {
                    let mut value = vec![((c.kind as u8) << 4) | c.algorithm as u8];
                    value.extend_from_slice(c.name.as_bytes());
                    tlv(&mut out, 0x72, &value);
                }
                self.respond(out)
            }
            0xA2 => self.calculate(data, p2 == 0x01),
            0xA4 => self.calculate_all(data, p2 == 0x01),
            _ => SW_INS_NOT_SUPPORTED.to_vec(),
        }
    }

    fn select(&mut self, aid: &[u8]) -> Vec<u8> {
        if !self.has_oath || aid != OATH_AID {
            self.selected = false;
            return SW_NOT_FOUND.to_vec();
        }
        self.selected = true;
        self.authenticated = false;
        let mut out = Vec::new();
        tlv(&mut out, 0x79, &self.version);
        tlv(&mut out, 0x71, &self.salt);
        if self.access_key.is_some() {
            self.challenge = match self.fixed_challenge {
                Some(c) => c,
                None => {
                    let mut c = [0u8; 8];
                    fastrand::fill(&mut c);
                    c
                }
            };
            tlv(&mut out, 0x74, &self.challenge);
            tlv(&mut out, 0x7B, &[Algorithm::Sha1 as u8]);
        }
        self.respond(out)
    }

    fn validate(&mut self, data: &[u8]) -> Vec<u8> {
        let Some(key) = self.access_key else {
            return SW_WRONG_DATA.to_vec();
        };
        let tags = parse_tlvs(data);
        let (Some(response), Some(host_challenge)) = (find(&tags, 0x75), find(&tags, 0x74)) else {
            return SW_WRONG_DATA.to_vec();
        };
        let expected = hmac(Algorithm::Sha1, &key, &self.challenge);
        if response != expected.as_slice() {
            // What a YubiKey answers (ykman reads 6A 80 from VALIDATE as
            // "wrong password").
            self.authenticated = false;
            return SW_WRONG_DATA.to_vec();
        }
        self.authenticated = true;
        let mut out = Vec::new();
        tlv(&mut out, 0x75, &hmac(Algorithm::Sha1, &key, host_challenge));
        self.respond(out)
    }

    fn calculate(&mut self, data: &[u8], truncate: bool) -> Vec<u8> {
        let tags = parse_tlvs(data);
        let (Some(name), Some(challenge)) = (find(&tags, 0x71), find(&tags, 0x74)) else {
            return SW_WRONG_DATA.to_vec();
        };
        let Some(index) = self
            .credentials
            .iter()
            .position(|c| c.name.as_bytes() == name)
        else {
            return SW_NO_SUCH_OBJECT.to_vec();
        };
        let cred_name = self.credentials[index].name.clone();
        if self.credentials[index].touch && !self.touch.wait_for_touch(&cred_name) {
            return SW_SECURITY.to_vec();
        }
        let cred = &mut self.credentials[index];
        let message = match cred.kind {
            Kind::Totp => challenge.to_vec(),
            Kind::Hotp => {
                let m = cred.counter.to_be_bytes().to_vec();
                cred.counter += 1;
                m
            }
        };
        let mac = hmac(cred.algorithm, &cred.secret, &message);
        let digits = cred.digits;
        self.calculate_count += 1;
        let mut out = Vec::new();
        if truncate {
            let mut value = vec![digits];
            value.extend_from_slice(&truncate4(&mac));
            tlv(&mut out, 0x76, &value);
        } else {
            let mut value = vec![digits];
            value.extend_from_slice(&mac);
            tlv(&mut out, 0x75, &value);
        }
        self.respond(out)
    }

    fn calculate_all(&mut self, data: &[u8], truncate: bool) -> Vec<u8> {
        let tags = parse_tlvs(data);
        let Some(challenge) = find(&tags, 0x74) else {
            return SW_WRONG_DATA.to_vec();
        };
        let mut out = Vec::new();
        for c in &self.credentials {
            tlv(&mut out, 0x71, c.name.as_bytes());
            if c.kind == Kind::Hotp {
                tlv(&mut out, 0x77, &[c.digits]);
            } else if c.touch {
                tlv(&mut out, 0x7C, &[c.digits]);
            } else {
                let mac = hmac(c.algorithm, &c.secret, challenge);
                let mut value = vec![c.digits];
                if truncate {
                    value.extend_from_slice(&truncate4(&mac));
                    tlv(&mut out, 0x76, &value);
                } else {
                    value.extend_from_slice(&mac);
                    tlv(&mut out, 0x75, &value);
                }
            }
        }
        self.calculate_count += 1;
        self.respond(out)
    }

    fn send_remaining(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.remaining);
        self.respond(rest)
    }

    /// Sends at most `max_response` bytes; keeps the rest for SEND
    /// REMAINING and says how much is left in SW2 (00 when 256 or more).
    fn respond(&mut self, mut data: Vec<u8>) -> Vec<u8> {
        if self.max_response > 0 && data.len() > self.max_response {
            self.remaining = data.split_off(self.max_response);
            let left = self.remaining.len().min(0x100) as u8; // 256 -> 00
            data.extend_from_slice(&[0x61, left]);
            return data;
        }
        data.extend_from_slice(&SW_OK);
        data
    }
}

fn tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

fn parse_tlvs(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut tags = Vec::new();
    while data.len() >= 2 {
        let (tag, len) = (data[0], data[1] as usize);
        if data.len() < 2 + len {
            break;
        }
        tags.push((tag, &data[2..2 + len]));
        data = &data[2 + len..];
    }
    tags
}

fn find<'a>(tags: &[(u8, &'a [u8])], tag: u8) -> Option<&'a [u8]> {
    tags.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

/// RFC 4226 dynamic truncation, before the mask and modulo (the card sends
/// these four bytes; the host masks and reduces them).
fn truncate4(mac: &[u8]) -> [u8; 4] {
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    [
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]
}

pub fn hmac(algorithm: Algorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    match algorithm {
        Algorithm::Sha1 => {
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha256 => {
            let mut m =
                Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha512 => {
            let mut m =
                Hmac::<sha2::Sha512>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
    }
}
