//! The host side against the in-memory applet and against scripted cards,
//! with the known-answer vectors of docs/test-vectors.md.

use super::*;
use crate::applet::{self, Algorithm, Applet, Credential, Kind};
use crate::error::AppletError;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const SHA1_SECRET: &[u8] = b"12345678901234567890";
const SHA256_SECRET: &[u8] = b"12345678901234567890123456789012";
const SHA512_SECRET: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

/// RFC 6238 Appendix B: (unix time, challenge, SHA1, SHA256, SHA512).
const RFC6238: [(u64, &str, &str, &str, &str); 6] = [
    (59, "0000000000000001", "94287082", "46119246", "90693936"),
    (
        1111111109,
        "00000000023523ec",
        "07081804",
        "68084774",
        "25091201",
    ),
    (
        1111111111,
        "00000000023523ed",
        "14050471",
        "67062674",
        "99943326",
    ),
    (
        1234567890,
        "000000000273ef07",
        "89005924",
        "91819424",
        "93441116",
    ),
    (
        2000000000,
        "0000000003f940aa",
        "69279037",
        "90698825",
        "38618901",
    ),
    (
        20000000000,
        "0000000027bc86aa",
        "65353130",
        "77737706",
        "47863826",
    ),
];

pub(crate) fn cred(name: &str, algorithm: Algorithm, digits: u8, touch: bool) -> Credential {
    let secret = match algorithm {
        Algorithm::Sha1 => SHA1_SECRET,
        Algorithm::Sha256 => SHA256_SECRET,
        Algorithm::Sha512 => SHA512_SECRET,
    };
    Credential {
        name: name.to_string(),
        kind: Kind::Totp,
        algorithm,
        digits,
        secret: secret.to_vec(),
        touch,
        counter: 0,
    }
}

fn rfc_applet() -> Applet {
    Applet::new(vec![
        cred("sha1", Algorithm::Sha1, 8, false),
        cred("sha256", Algorithm::Sha256, 8, false),
        cred("sha512", Algorithm::Sha512, 8, false),
        cred("sha1-6", Algorithm::Sha1, 6, false),
    ])
}

/// Records every command and response.
pub(crate) struct Recorder<C> {
    pub card: C,
    pub log: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<C: Card> Card for Recorder<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let r = self.card.transmit(apdu)?;
        self.log.push((apdu.to_vec(), r.clone()));
        Ok(r)
    }
}

/// Answers every command with the next scripted response.
struct Scripted(Vec<Vec<u8>>);

impl Card for Scripted {
    fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.0.is_empty() {
            return Err(CardError::Link("script exhausted".into()));
        }
        Ok(self.0.remove(0))
    }
}

fn expose(t: &Truncated) -> String {
    t.code().expose_secret().to_string()
}

#[test]
fn challenges_are_the_time_step_in_eight_big_endian_bytes() {
    for (t, challenge, ..) in RFC6238 {
        let (step, bytes) = totp_challenge(t, 30);
        assert_eq!(bytes.to_vec(), hex(challenge), "t={t}");
        assert_eq!(step, t / 30);
    }
    assert_eq!(totp_challenge(119, 60), (1, [0, 0, 0, 0, 0, 0, 0, 1]));
}

#[test]
fn rfc6238_vectors_through_calculate_and_calculate_all() {
    let mut card = rfc_applet();
    select(&mut card).unwrap();
    for (t, _, sha1, sha256, sha512) in RFC6238 {
        let (_, challenge) = totp_challenge(t, 30);
        for (name, want) in [("sha1", sha1), ("sha256", sha256), ("sha512", sha512)] {
            let got = calculate(&mut card, name, &challenge, false).unwrap();
            assert_eq!(got.digits, 8);
            assert_eq!(expose(&got), want, "{name} at t={t}");
        }
        let six = calculate(&mut card, "sha1-6", &challenge, false).unwrap();
        assert_eq!(six.digits, 6);
        assert_eq!(expose(&six), &sha1[2..], "6 digits are the last six, t={t}");

        let all = calculate_all(&mut card, &challenge).unwrap();
        let codes: Vec<(String, String)> = all
            .iter()
            .map(|(n, s)| match s {
                AllState::Code(t) => (n.clone(), expose(t)),
                other => panic!("{n}: {other:?}"),
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                ("sha1".to_string(), sha1.to_string()),
                ("sha256".to_string(), sha256.to_string()),
                ("sha512".to_string(), sha512.to_string()),
                ("sha1-6".to_string(), sha1[2..].to_string()),
            ]
        );
    }
}

#[test]
fn truncation_masks_the_sign_bit_and_zero_pads() {
    // 76 05 06 80 00 00 01: the top bit is dropped, leaving 1 -> "000001".
    let t = parse_truncated(INS_CALCULATE, &hex("06 80 00 00 01")).unwrap();
    assert_eq!(expose(&t), "000001");
    let t = parse_truncated(INS_CALCULATE, &hex("08 ff ff ff ff")).unwrap();
    assert_eq!(expose(&t), format!("{:08}", 0x7fff_ffffu64 % 100_000_000));
    assert!(parse_truncated(INS_CALCULATE, &hex("09 00 00 00 01")).is_err());
    assert!(parse_truncated(INS_CALCULATE, &hex("06 00 00 01")).is_err());
    // The value never shows in Debug.
    let t = parse_truncated(INS_CALCULATE, &hex("06 00 01 e2 40")).unwrap();
    assert_eq!(expose(&t), "123456");
    let debug = format!("{:?}", AllState::Code(t));
    assert!(
        !debug.contains("123456") && !debug.contains("e240"),
        "{debug}"
    );
}

#[test]
fn calculate_apdu_matches_the_documented_bytes() {
    let (step, challenge) = totp_challenge(1795478590, 30);
    assert_eq!(step, 59849286);
    let apdu = calculate_apdu("Amazon Web Services:user@123457890123", &challenge);
    assert_eq!(
        apdu,
        hex(
            "00 A2 00 01 31 71 25 41 6D 61 7A 6F 6E 20 57 65 62 20 53 65 72 76 69 63 65 73 3A 75 73 65 72 40 31 32 33 34 35 37 38 39 30 31 32 33 74 08 00 00 00 00 03 91 3A 46"
        )
    );
}

#[test]
fn password_handshake_matches_the_vectors() {
    let salt = hex("9d6ac7116c71aee0");
    let key = derive_key(&SecretString::from("hunter2"), &salt);
    assert_eq!(key.to_vec(), hex("8529a72098d0175daa7398952c54456f"));
    let host: [u8; 8] = hex("a1a2a3a4a5a6a7a8").try_into().unwrap();
    let apdu = validate_apdu(&*key, &hex("0102030405060708"), &host);
    assert_eq!(
        apdu,
        hex(
            "00 A3 00 00 20 75 14 DD 9D 14 2F 8A 04 D5 A4 07 3E 21 99 57 52 FC 39 27 55 A4 05 74 08 A1 A2 A3 A4 A5 A6 A7 A8"
        )
    );

    // The same exchange with the applet, which must answer 75 14 5063...
    let mut applet = rfc_applet();
    applet.salt = salt.clone().try_into().unwrap();
    applet.set_password("hunter2");
    applet.fixed_challenge = Some(hex("0102030405060708").try_into().unwrap());
    let mut card = Recorder {
        card: applet,
        log: vec![],
    };
    let info = select(&mut card).unwrap();
    assert_eq!(info.salt, salt);
    assert_eq!(
        info.challenge.as_deref(),
        Some(&hex("0102030405060708")[..])
    );
    assert_eq!(info.algorithm, Some(1));
    assert_eq!(info.version_string(), "5.4.3");
    // Before VALIDATE: 69 82, authentication required.
    let e = list(&mut card).unwrap_err();
    assert!(matches!(e, AppletError::AuthenticationRequired), "{e:?}");
    validate(&mut card, &*key, &info, &host).unwrap();
    let (sent, answer) = card.log.last().unwrap();
    assert_eq!(sent, &apdu);
    assert_eq!(
        answer,
        &hex("75 14 506353ae9186a8631dbde3dd030912ca2c9bbe66 90 00")
    );
    assert_eq!(list(&mut card).unwrap().len(), 4);
}

#[test]
fn wrong_password_and_a_card_that_does_not_know_the_key() {
    let mut applet = rfc_applet();
    applet.set_password("hunter2");
    let info = select(&mut applet).unwrap();
    let wrong = derive_key(&SecretString::from("hunter3"), &info.salt);
    let e = validate(&mut applet, &*wrong, &info, &[7; 8]).unwrap_err();
    assert!(matches!(e, AppletError::WrongPassword), "{e:?}");

    // A card that accepts our answer but cannot answer our challenge.
    let key = derive_key(&SecretString::from("hunter2"), &[1; 8]);
    let info = SelectInfo {
        version: vec![5, 0, 0],
        salt: vec![1; 8],
        challenge: Some(vec![2; 8]),
        algorithm: Some(1),
    };
    let mut liar = Scripted(vec![hex(
        "75 14 0000000000000000000000000000000000000000 90 00",
    )]);
    let e = validate(&mut liar, &*key, &info, &[3; 8]).unwrap_err();
    assert!(matches!(e, AppletError::CardAuthenticationFailed), "{e:?}");
}

#[test]
fn long_answers_are_fetched_with_send_remaining() {
    let mut applet = Applet::new(
        (0..12)
            .map(|i| {
                cred(
                    &format!("Amazon Web Services:user{i}@123457890123"),
                    Algorithm::Sha1,
                    6,
                    false,
                )
            })
            .collect(),
    );
    applet.max_response = 100;
    let mut card = Recorder {
        card: applet,
        log: vec![],
    };
    select(&mut card).unwrap();
    let names = list(&mut card).unwrap();
    assert_eq!(names.len(), 12);
    assert_eq!(names[11].name, "Amazon Web Services:user11@123457890123");
    assert_eq!(names[0].kind, OathType::Totp);
    assert_eq!(names[0].algorithm, HashAlgorithm::Sha1);
    let more = card
        .log
        .iter()
        .filter(|(c, _)| c[..4] == [0, 0xA5, 0, 0])
        .count();
    assert!(more >= 4, "expected SEND REMAINING chaining, saw {more}");
    assert!(card.log.iter().any(|(_, r)| r[r.len() - 2] == 0x61));
    let all = calculate_all(&mut card, &[0; 8]).unwrap();
    assert_eq!(all.len(), 12);

    // A card that always has "more" does not hang us.
    let mut endless = Scripted(vec![hex("61 00"); 100]);
    let e = list(&mut endless).unwrap_err();
    assert!(matches!(e, AppletError::Malformed { .. }), "{e:?}");
}

#[test]
fn status_words_become_typed_errors() {
    let sw = |s: &str| Scripted(vec![hex(s)]);
    let e = list(&mut sw("6A 80")).unwrap_err();
    assert!(matches!(e, AppletError::WrongData { ins: 0xA1 }), "{e:?}");
    let e = list(&mut sw("6D 00")).unwrap_err();
    assert!(
        matches!(e, AppletError::NotOath(StatusWord(0x6D00))),
        "{e:?}"
    );
    let e = list(&mut sw("69 82")).unwrap_err();
    assert!(matches!(e, AppletError::AuthenticationRequired), "{e:?}");
    let e = list(&mut sw("6F 00")).unwrap_err();
    assert!(
        matches!(
            e,
            AppletError::UnexpectedStatus {
                ins: 0xA1,
                sw: StatusWord(0x6F00)
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("6F 00"), "{e}");
    let e = list(&mut sw("90")).unwrap_err();
    assert!(matches!(e, AppletError::Malformed { .. }), "{e:?}");
    let e = select(&mut sw("6A 82")).unwrap_err();
    assert!(
        matches!(e, AppletError::NotOath(StatusWord(0x6A82))),
        "{e:?}"
    );
    // 69 82 on CALCULATE: touch timeout for a touch credential only.
    let e = calculate(&mut sw("69 82"), "x", &[0; 8], true).unwrap_err();
    assert!(matches!(e, AppletError::TouchTimeout { .. }), "{e:?}");
    let e = calculate(&mut sw("69 82"), "x", &[0; 8], false).unwrap_err();
    assert!(matches!(e, AppletError::AuthenticationRequired), "{e:?}");
    let e = calculate(&mut sw("69 84"), "x", &[0; 8], false).unwrap_err();
    assert!(matches!(e, AppletError::NoSuchCredential { .. }), "{e:?}");
    let e = validate(
        &mut sw("6A 80"),
        &[0; 16],
        &SelectInfo {
            version: vec![],
            salt: vec![],
            challenge: Some(vec![0; 8]),
            algorithm: None,
        },
        &[0; 8],
    )
    .unwrap_err();
    // A YubiKey's answer to a wrong VALIDATE (ykman: "wrong password").
    assert!(matches!(e, AppletError::WrongPassword), "{e:?}");
    // Transport failures pass through.
    let e = list(&mut Scripted(vec![])).unwrap_err();
    assert!(matches!(e, AppletError::Card(CardError::Link(_))), "{e:?}");
}

#[test]
fn the_applet_itself_answers_with_the_right_status_words() {
    let mut applet = rfc_applet();
    // Not selected yet: 6D 00.
    assert_eq!(applet.process(&hex("00 A1 00 00")), hex("6D 00"));
    // Another AID: 6A 82.
    assert_eq!(
        applet.process(&hex("00 A4 04 00 05 A0 00 00 03 08")),
        hex("6A 82")
    );
    select(&mut applet).unwrap();
    let e = calculate(&mut applet, "nope", &[0; 8], false).unwrap_err();
    assert!(matches!(e, AppletError::NoSuchCredential { .. }), "{e:?}");
    // CALCULATE without a challenge: 6A 80.
    assert_eq!(
        applet.process(&hex("00 A2 00 01 06 71 04 73 68 61 31")),
        hex("6A 80")
    );
    // Touch never given: 69 82.
    let mut touchy = Applet::new(vec![cred("t", Algorithm::Sha1, 6, true)]);
    touchy.touch = Box::new(applet::NeverTouched);
    select(&mut touchy).unwrap();
    let e = calculate(&mut touchy, "t", &[0; 8], true).unwrap_err();
    assert!(matches!(e, AppletError::TouchTimeout { .. }), "{e:?}");
    // A card without the OATH applet.
    let mut other = rfc_applet();
    other.has_oath = false;
    let e = select(&mut other).unwrap_err();
    assert!(matches!(e, AppletError::NotOath(_)), "{e:?}");
}

#[test]
fn calculate_all_tells_touch_and_hotp_apart() {
    let mut hotp = cred("hotp", Algorithm::Sha1, 6, false);
    hotp.kind = Kind::Hotp;
    let mut applet = Applet::new(vec![
        cred("plain", Algorithm::Sha256, 6, false),
        cred("touch", Algorithm::Sha1, 8, true),
        hotp,
    ]);
    select(&mut applet).unwrap();
    let all = calculate_all(&mut applet, &[0; 8]).unwrap();
    assert!(matches!(
        all[0].1,
        AllState::Code(Truncated { digits: 6, .. })
    ));
    assert_eq!(all[1].1, AllState::Touch { digits: 8 });
    assert_eq!(all[2].1, AllState::Hotp { digits: 6 });
    let entries = list(&mut applet).unwrap();
    assert_eq!(
        entries,
        vec![
            ListEntry {
                name: "plain".into(),
                kind: OathType::Totp,
                algorithm: HashAlgorithm::Sha256
            },
            ListEntry {
                name: "touch".into(),
                kind: OathType::Totp,
                algorithm: HashAlgorithm::Sha1
            },
            ListEntry {
                name: "hotp".into(),
                kind: OathType::Hotp,
                algorithm: HashAlgorithm::Sha1
            },
        ]
    );
}

#[test]
fn names_and_periods() {
    let n = parse_name("Amazon Web Services:user@123457890123").unwrap();
    assert_eq!(n.period, 30);
    assert_eq!(n.issuer, Some("Amazon Web Services"));
    assert_eq!(n.account, "user@123457890123");
    let n = parse_name("60/Example:alice").unwrap();
    assert_eq!(
        (n.period, n.issuer, n.account),
        (60, Some("Example"), "alice")
    );
    let n = parse_name("15/bob").unwrap();
    assert_eq!((n.period, n.issuer, n.account), (15, None, "bob"));
    // A slash that is not a period prefix belongs to the name.
    let n = parse_name("a/b:c").unwrap();
    assert_eq!((n.period, n.issuer, n.account), (30, Some("a/b"), "c"));
    assert!(parse_name("0/x").is_err());
    assert!(parse_name("99999999999999999999999/x").is_err());
    assert!(parse_name("").is_err());
    assert!(parse_name(&"x".repeat(65)).is_err());
    assert!(parse_name(&"x".repeat(64)).is_ok());
}
