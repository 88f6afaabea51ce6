//! The YKOATH response parsers on arbitrary card answers: never panic.
//!
//! Input: byte 0 chooses the command (SELECT, LIST, CALCULATE, CALCULATE
//! ALL, VALIDATE); the rest is the card's answers, each one length byte
//! followed by that many bytes (data + SW1 SW2), consumed one per APDU, so
//! that `61 xx` (SEND REMAINING) chains are exercised too. A card with no
//! answer left reports a link error.

#![no_main]

use aws_session_daemon::oath::CardError;
use aws_session_daemon::oath::protocol::{self, Card};
use libfuzzer_sys::fuzz_target;

struct ScriptedCard<'a> {
    answers: &'a [u8],
}

impl Card for ScriptedCard<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        assert!(apdu.len() >= 4, "an APDU has a header");
        let Some((&len, rest)) = self.answers.split_first() else {
            return Err(CardError::Link("no more answers".into()));
        };
        let len = (len as usize).min(rest.len());
        let (answer, rest) = rest.split_at(len);
        self.answers = rest;
        Ok(answer.to_vec())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&command, answers)) = data.split_first() else {
        return;
    };
    let card = &mut ScriptedCard { answers };
    let challenge = [0, 0, 0, 0, 0x03, 0x5a, 0x1c, 0x2b];
    match command % 6 {
        0 => {
            if let Ok(info) = protocol::select(card) {
                let _ = (info.needs_password(), info.version_string());
            }
        }
        1 => {
            if let Ok(entries) = protocol::list(card) {
                for entry in entries {
                    let _ = protocol::parse_name(&entry.name);
                }
            }
        }
        2 => report(protocol::calculate(
            card,
            "Amazon Web Services:me@123456789012",
            &challenge,
            false,
        )),
        3 => report(protocol::calculate(card, "30/touch", &challenge, true)),
        4 => {
            if let Ok(all) = protocol::calculate_all(card, &challenge) {
                for (name, state) in all {
                    let _ = protocol::parse_name(&name);
                    let _ = format!("{state:?}");
                    if let protocol::AllState::Code(truncated) = state {
                        let _ = truncated.code();
                    }
                }
            }
        }
        _ => {
            let info = protocol::SelectInfo {
                version: vec![5, 4, 3],
                salt: vec![1; 8],
                challenge: Some(vec![2; 8]),
                algorithm: Some(1),
            };
            let key = [7u8; 16];
            if let Err(error) = protocol::validate(card, &key, &info, &[3; 8]) {
                let _ = error.to_string();
            }
        }
    }
});

fn report(result: Result<protocol::Truncated, aws_session_daemon::oath::AppletError>) {
    match result {
        Ok(truncated) => {
            let code = truncated.code();
            let _ = format!("{code:?}");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}
