//! Everything the daemon benchmarks share: the programs, the virtual
//! YubiKey, moto and the STS front, and a fresh MFA device per daemon.

use std::cell::Cell;

use crate::services::{self, Binaries, Moto, ReaderLock, StsFront, VirtualCard};

pub const SLOT: &str = "Amazon Web Services:bench@123457890123";
/// RFC 6238's SHA-1 test secret.
const SECRET_HEX: &str = "3132333435363738393031323334353637383930";
/// MFA devices known to the front: each daemon gets its own, so that the
/// front's "code already used" check (per device, like AWS) never makes a
/// later daemon wait for the next TOTP step because of an earlier one.
const DEVICES: usize = 64;

pub struct Rig {
    pub binaries: Binaries,
    pub card: VirtualCard,
    pub front: StsFront,
    /// Kept alive for the front (its upstream).
    _moto: Moto,
    next_device: Cell<usize>,
    _readers: ReaderLock,
}

fn serial(n: usize) -> String {
    format!("arn:aws:iam::123457890123:mfa/bench-{n}")
}

impl Rig {
    pub fn start(binaries: Binaries) -> Result<Rig, String> {
        services::ensure_pcscd()?;
        let readers = services::lock_readers();
        let card = VirtualCard::start(&binaries.virtual_yubikey, SLOT, SECRET_HEX)?;
        let moto = Moto::start()?;
        let mut args = Vec::new();
        for n in 0..DEVICES {
            args.push("--totp-secret".to_string());
            args.push(format!("{}=hex:{SECRET_HEX}", serial(n)));
        }
        let front = StsFront::start(&binaries.sts_front, &moto.url, &args)?;
        Ok(Rig {
            binaries,
            card,
            front,
            _moto: moto,
            next_device: Cell::new(0),
            _readers: readers,
        })
    }

    /// A device no daemon has used yet.
    pub fn new_device(&self) -> String {
        let n = self.next_device.get();
        assert!(
            n < DEVICES,
            "more daemons than MFA devices known to the front"
        );
        self.next_device.set(n + 1);
        serial(n)
    }
}
