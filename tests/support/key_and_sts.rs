//! The common rig of the end-to-end tests: the virtual YubiKey in the vpcd
//! reader (pcscd started when needed, the readers locked for this test),
//! moto as STS, and the STS front that checks the key's TOTP codes for
//! [`crate::daemon::SERIAL`] like AWS. Needs `daemon`, `moto`, `pcsc`,
//! `sts_front` and `vcard` included next to it.

#![allow(dead_code)]

use crate::{moto, pcsc, sts_front, vcard};

pub struct KeyAndSts {
    pub card: pcsc::VirtualCard,
    pub front: sts_front::StsFront,
    pub moto: moto::Moto,
    /// The `mfa_oath_slot = "..."` line that names the key's credential.
    pub slot: String,
    _readers: pcsc::ReaderLock,
}

impl KeyAndSts {
    pub fn start() -> KeyAndSts {
        pcsc::ensure_pcscd();
        let readers = pcsc::lock_readers();
        let card = pcsc::VirtualCard::start(pcsc::CardConfig::new(&vcard::credential(
            vcard::AWS,
            "sha1",
            6,
            vcard::SHA1_SECRET,
            false,
        )));
        let moto = moto::Moto::start();
        let secret_hex: String = vcard::SHA1_SECRET
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let totp = format!("{}={secret_hex}", crate::daemon::SERIAL);
        let front = sts_front::StsFront::start(&moto.url, &["--totp-secret", &totp]);
        KeyAndSts {
            card,
            front,
            moto,
            slot: format!("mfa_oath_slot = \"{}\"", vcard::AWS),
            _readers: readers,
        }
    }
}
