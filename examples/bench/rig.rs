//! Everything the daemon benchmarks share: the programs, the virtual
//! YubiKey on pcscd + vpcd, moto behind the STS front, a second front that
//! answers STS itself after a fixed latency (what a laptop sees of AWS), and
//! a fresh MFA device per daemon. The outside systems are started by the tests' own helpers
//! (`tests/support/`), and every process started here is stopped when its
//! guard drops.

use std::cell::Cell;
use std::path::PathBuf;

use crate::daemon::{Home, LONG_TERM_ID, LONG_TERM_SECRET, org_config_for};
use crate::moto::Moto;
use crate::pcsc::{self, CardConfig, ReaderLock, VirtualCard};
use crate::sts_front::StsFront;
use crate::{example_bin, vcard};

pub const SLOT: &str = "Amazon Web Services:bench@123457890123";
/// MFA devices known to the front: each daemon gets its own, so that the
/// front's "code already used" check (per device, like AWS) never makes a
/// later daemon wait for the next TOTP step because of an earlier one.
const DEVICES: usize = 128;

/// The round trip to STS from a laptop is 50-80 ms; the latency front
/// answers every call after this long, all calls concurrently.
pub const LATENCY_MS: u64 = 50;

/// Where the programs the benchmarks start live: the profile directory of
/// this benchmark's own build (`target/release` for `cargo run --release`).
pub struct Binaries {
    pub daemon: PathBuf,
    pub sts_front: PathBuf,
    pub virtual_yubikey: PathBuf,
}

impl Binaries {
    /// Builds the daemon and the two helper programs for this profile
    /// (`cargo build`, a no-op when they are fresh) unless `build` is false;
    /// `daemon` stands for the daemon when given.
    pub fn locate(build: bool, daemon: Option<PathBuf>) -> Result<Binaries, String> {
        let daemon = match daemon {
            Some(path) if path.exists() => path,
            Some(path) => return Err(format!("{} is missing", path.display())),
            None => example_bin::try_daemon(build)?,
        };
        Ok(Binaries {
            daemon,
            sts_front: example_bin::try_example("sts_fault_front", build)?,
            virtual_yubikey: example_bin::try_example("virtual_yubikey", build)?,
        })
    }
}

pub struct Rig {
    pub binaries: Binaries,
    pub card: VirtualCard,
    /// The front before moto.
    pub front: StsFront,
    /// A front that answers STS itself after [`LATENCY_MS`] (`--upstream
    /// local --latency-ms`), concurrently, checking the TOTP codes.
    pub latency_front: StsFront,
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
        pcsc::try_ensure_pcscd()?;
        let readers = pcsc::lock_readers();
        // RFC 6238's SHA-1 test secret, on the key and at the front.
        let secret = vcard::SHA1_SECRET;
        let card = VirtualCard::try_start(
            CardConfig::new(&vcard::credential(SLOT, "sha1", 6, secret, false))
                .binary(&binaries.virtual_yubikey),
        )?;
        let moto = Moto::try_start()?;
        let front = StsFront::try_start_with(&binaries.sts_front, &moto.url, &totp_args())?;
        let latency = LATENCY_MS.to_string();
        let latency_front = start_local_front(&binaries, &["--latency-ms", &latency])?;
        Ok(Rig {
            binaries,
            card,
            front,
            latency_front,
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

    /// The config of a group of `accounts` on MFA device `serial`, codes
    /// from the virtual YubiKey, STS through the front (moto).
    pub fn config(&self, serial: &str, accounts: &[String]) -> String {
        self.config_at(&self.front.url, serial, accounts)
    }

    /// [`Rig::config`] with STS at `endpoint`.
    pub fn config_at(&self, endpoint: &str, serial: &str, accounts: &[String]) -> String {
        org_config_for(
            serial,
            endpoint,
            &format!("mfa_oath_slot = {SLOT:?}"),
            accounts,
        )
    }

    /// Another front that answers STS itself, knowing the MFA devices'
    /// secrets, with `extra` arguments (`--latency-ms`, `--max-in-flight`,
    /// `--inject`).
    pub fn local_front(&self, extra: &[&str]) -> Result<StsFront, String> {
        start_local_front(&self.binaries, extra)
    }

    /// A temporary HOME with `config` and a credentials file holding only
    /// the long-term keys, whose commands run the benchmarked daemon.
    pub fn home(&self, config: &str) -> Home {
        let credentials = format!(
            "[default]\naws_access_key_id = {LONG_TERM_ID}\naws_secret_access_key = {LONG_TERM_SECRET}\n"
        );
        Home::with_credentials(config, &credentials).with_daemon(&self.binaries.daemon)
    }
}

/// (GetSessionToken, AssumeRole) requests answered by `front` (not those
/// refused over its `--max-in-flight`) since its last `reset_stats`.
pub fn counts(front: &StsFront) -> (u64, u64) {
    let stats = front.stats();
    let n = |action: &str| stats["actions"][action].as_u64().unwrap_or(0);
    (n("GetSessionToken"), n("AssumeRole"))
}

/// `--totp-secret SERIAL=hex:...` for every MFA device of the benchmarks.
fn totp_args() -> Vec<&'static str> {
    static ARGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let args = ARGS.get_or_init(|| {
        let hex: String = vcard::SHA1_SECRET
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (0..DEVICES)
            .flat_map(|n| {
                [
                    "--totp-secret".to_string(),
                    format!("{}=hex:{hex}", serial(n)),
                ]
            })
            .collect()
    });
    args.iter().map(String::as_str).collect()
}

fn start_local_front(binaries: &Binaries, extra: &[&str]) -> Result<StsFront, String> {
    let mut args = totp_args();
    args.extend_from_slice(extra);
    StsFront::try_start_with(&binaries.sts_front, "local", &args)
}
