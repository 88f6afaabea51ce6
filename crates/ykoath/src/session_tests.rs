//! One exchange (SELECT, VALIDATE, CALCULATE ALL, CALCULATE) against the
//! in-memory applet.

use std::cell::RefCell;

use secrecy::ExposeSecret;

use secrecy::SecretString;

use super::*;
use crate::PasswordError;
use crate::applet::{Algorithm, Applet, Kind};
use crate::protocol::tests::{Recorder, cred};

const AWS: &str = "Amazon Web Services:user@123457890123";

fn no_touch(_: &TouchPrompt) {
    panic!("no touch expected");
}

fn calc(card: &mut dyn Card, name: &str, unix: u64) -> Result<Code, Error> {
    calculate_on(
        card,
        "mem",
        name,
        unix,
        &mut PasswordCache::new(None),
        &no_touch,
    )
}

#[test]
fn a_thirty_second_code_takes_one_calculate_all() {
    let mut applet = Applet::new(vec![cred(AWS, Algorithm::Sha1, 6, false)]);
    let code = calc(&mut applet, AWS, 1111111109).unwrap();
    assert_eq!(code.value.expose_secret(), "081804");
    assert_eq!(
        (code.step, code.period, code.digits),
        (1111111109 / 30, 30, 6)
    );
    assert_eq!(code.reader, "mem");
    assert_eq!(applet.calculate_count, 1);
    assert!(!format!("{code:?}").contains("081804"));
}

#[test]
fn other_periods_are_calculated_singly_with_their_own_step() {
    let mut card = Recorder {
        card: Applet::new(vec![cred("60/Example:alice", Algorithm::Sha1, 8, false)]),
        log: vec![],
    };
    // 118 s at 60 s per step is step 1, whose SHA-1 code is RFC 6238's T=59.
    let code = calc(&mut card, "60/Example:alice", 118).unwrap();
    assert_eq!(code.value.expose_secret(), "94287082");
    assert_eq!((code.step, code.period), (1, 60));
    let last = &card.log.last().unwrap().0;
    assert_eq!(last[1], 0xA2, "single CALCULATE");
    assert_eq!(last[last.len() - 8..], [0, 0, 0, 0, 0, 0, 0, 1]);
}

#[test]
fn touch_is_announced_before_the_calculate_that_waits_for_it() {
    let log = RefCell::new(Vec::<String>::new());
    struct Logged<'a>(Applet, &'a RefCell<Vec<String>>);
    impl Card for Logged<'_> {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, crate::CardError> {
            self.1.borrow_mut().push(format!("apdu {:02X}", apdu[1]));
            Ok(self.0.process(apdu))
        }
    }
    let mut card = Logged(
        Applet::new(vec![cred("touch", Algorithm::Sha256, 8, true)]),
        &log,
    );
    let on_touch = |p: &TouchPrompt| {
        assert_eq!(p.credential, "touch");
        assert_eq!(p.reader, "mem");
        log.borrow_mut().push("touch prompt".into());
    };
    let code = calculate_on(
        &mut card,
        "mem",
        "touch",
        59,
        &mut PasswordCache::new(None),
        &on_touch,
    )
    .unwrap();
    assert_eq!(code.value.expose_secret(), "46119246");
    assert_eq!(
        *log.borrow(),
        ["apdu A4", "apdu A4", "touch prompt", "apdu A2"],
        "SELECT, CALCULATE ALL, prompt, CALCULATE"
    );

    let mut never = Applet::new(vec![cred("touch", Algorithm::Sha1, 6, true)]);
    never.touch = Box::new(crate::applet::NeverTouched);
    let e = calculate_on(
        &mut never,
        "mem",
        "touch",
        59,
        &mut PasswordCache::new(None),
        &|_| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Applet(AppletError::TouchTimeout { .. })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("touch timed out"), "{e}");
}

#[test]
fn password_protected_applet() {
    let applet = || {
        let mut a = Applet::new(vec![cred(AWS, Algorithm::Sha1, 6, false)]);
        a.set_password("hunter2");
        a
    };
    let good = || Ok::<_, PasswordError>(SecretString::from("hunter2"));
    let good: &dyn Fn() -> Result<SecretString, PasswordError> = &good;
    let code = calculate_on(
        &mut applet(),
        "mem",
        AWS,
        59,
        &mut PasswordCache::new(Some(good)),
        &no_touch,
    )
    .unwrap();
    assert_eq!(code.value.expose_secret(), "287082");

    let bad = || Ok::<_, PasswordError>(SecretString::from("hunter3"));
    let bad: &dyn Fn() -> Result<SecretString, PasswordError> = &bad;
    let e = calculate_on(
        &mut applet(),
        "mem",
        AWS,
        59,
        &mut PasswordCache::new(Some(bad)),
        &no_touch,
    )
    .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::WrongPassword), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("hunter"));

    let e = calc(&mut applet(), AWS, 59).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::PasswordRequired), "{e:?}");
    assert!(e.to_string().contains("password protected"), "{e}");

    let failing = || Err::<SecretString, PasswordError>("the command failed".into());
    let failing: &dyn Fn() -> Result<SecretString, PasswordError> = &failing;
    let e = calculate_on(
        &mut applet(),
        "mem",
        AWS,
        59,
        &mut PasswordCache::new(Some(failing)),
        &no_touch,
    )
    .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Password(_)), "{e:?}");

    let listing = list_on(
        &mut applet(),
        "mem",
        59,
        &mut PasswordCache::new(Some(good)),
    )
    .unwrap();
    assert!(listing.password_protected);
    assert_eq!(listing.credentials.len(), 1);
}

#[test]
fn a_missing_credential_names_those_that_exist() {
    let mut applet = Applet::new(vec![
        cred(AWS, Algorithm::Sha1, 6, false),
        cred("GitHub:me", Algorithm::Sha1, 6, false),
    ]);
    let e = calc(&mut applet, "Amazon Web Services:usr@123457890123", 59).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("{AWS:?}"))
            && text.contains("\"GitHub:me\"")
            && text.contains("\"mem\""),
        "{text}"
    );
}

#[test]
fn hotp_is_refused() {
    let mut hotp = cred("h", Algorithm::Sha1, 6, false);
    hotp.kind = Kind::Hotp;
    let mut applet = Applet::new(vec![hotp]);
    let e = calc(&mut applet, "h", 59).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Applet(AppletError::NotTotp { .. })),
        "{e:?}"
    );
    assert_eq!(
        applet.credentials[0].counter, 0,
        "the HOTP counter must not move"
    );
}

#[test]
fn no_oath_applet() {
    let mut applet = Applet::new(vec![]);
    applet.has_oath = false;
    let e = calc(&mut applet, AWS, 59).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::AppletMissing { .. }), "{e:?}");
}

#[test]
fn listing_shows_everything_but_codes() {
    let mut hotp = cred("h", Algorithm::Sha512, 8, false);
    hotp.kind = Kind::Hotp;
    let mut applet = Applet::new(vec![
        cred(AWS, Algorithm::Sha1, 6, false),
        cred("60/Example:alice", Algorithm::Sha256, 8, true),
        hotp,
    ]);
    let l = list_on(&mut applet, "mem", 59, &mut PasswordCache::new(None)).unwrap();
    assert_eq!(l.reader, "mem");
    assert!(!l.password_protected);
    assert_eq!(l.version.as_deref(), Some("5.4.3"));
    let c = &l.credentials;
    assert_eq!(
        (
            c[0].kind,
            c[0].algorithm,
            c[0].digits,
            c[0].period,
            c[0].touch
        ),
        (
            OathType::Totp,
            crate::HashAlgorithm::Sha1,
            Some(6),
            Some(30),
            false
        )
    );
    assert_eq!(
        (
            c[1].kind,
            c[1].algorithm,
            c[1].digits,
            c[1].period,
            c[1].touch
        ),
        (
            OathType::Totp,
            crate::HashAlgorithm::Sha256,
            Some(8),
            Some(60),
            true
        )
    );
    assert_eq!(
        (
            c[2].kind,
            c[2].algorithm,
            c[2].digits,
            c[2].period,
            c[2].touch
        ),
        (
            OathType::Hotp,
            crate::HashAlgorithm::Sha512,
            Some(8),
            None,
            false
        )
    );
    let json = serde_json::to_string(&l).unwrap();
    assert!(
        json.contains("\"type\":\"TOTP\"") && json.contains("\"algorithm\":\"SHA256\""),
        "{json}"
    );
    assert!(!json.contains("287082"), "{json}");
}
