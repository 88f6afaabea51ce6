//! "A YubiKey (or reader) came or went", as an awaitable event.
//!
//! A blocking thread waits in `SCardGetStatusChange` on the PnP
//! pseudo-reader `\\?PnP?\Notification` (readers added or removed) and on
//! every reader's state (card inserted or removed). Dropping [`KeyEvents`]
//! cancels the wait (`SCardCancel`); the wait's timeout is only the fallback
//! for a stop that comes just before a wait starts, which `SCardCancel`
//! cannot interrupt, so it is long: an idle daemon must not wake up every
//! few seconds (each timeout costs a round of requests to pcscd, and the
//! daemon promises about one wake-up a minute at rest). When pcscd is not
//! running or restarts, the thread re-establishes its context with backoff,
//! and reports the service coming back as a change too (readers may have
//! changed while it was away).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pcsc::{Context, PNP_NOTIFICATION, ReaderState, Scope, State};
use tokio::sync::watch;

/// Longest single `SCardGetStatusChange` wait. Not a polling interval:
/// changes end the wait at once, and so does a stop (see the module doc).
const WAIT: Duration = Duration::from_secs(600);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

struct Shared {
    stop: AtomicBool,
    /// The watcher's current context, so that dropping [`KeyEvents`] can
    /// cancel a wait in progress.
    context: Mutex<Option<Context>>,
}

/// Receives "key or reader changed" events from the watcher thread.
/// Dropping it stops the thread.
pub struct KeyEvents {
    rx: watch::Receiver<u64>,
    shared: Arc<Shared>,
}

impl KeyEvents {
    /// Waits until a reader or card appeared or disappeared (or pcscd came
    /// back) since the last call. Several changes in a row are reported as
    /// one. If the watcher thread died, waits forever: the daemon's
    /// periodic pass still runs.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            tracing::error!(
                "the YubiKey watcher stopped; key changes are noticed by the periodic pass only"
            );
            std::future::pending::<()>().await;
        }
    }

    /// The number of changes seen so far (for logs and tests).
    pub fn count(&self) -> u64 {
        *self.rx.borrow()
    }
}

impl Drop for KeyEvents {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(ctx) = self.shared.context.lock().unwrap().as_ref() {
            let _ = ctx.cancel();
        }
    }
}

/// Starts the watcher thread. Call it from within or outside a tokio
/// runtime; the thread is a plain OS thread blocked in PC/SC.
pub fn spawn_key_watcher() -> KeyEvents {
    let (tx, rx) = watch::channel(0u64);
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        context: Mutex::new(None),
    });
    let thread_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("oath-key-watch".into())
        .spawn(move || watch_loop(&tx, &thread_shared))
        .expect("spawning the key watcher thread");
    KeyEvents { rx, shared }
}

fn watch_loop(tx: &watch::Sender<u64>, shared: &Shared) {
    let bump = || tx.send_modify(|n| *n += 1);
    let mut backoff = BACKOFF_MIN;
    let mut had_service = true;
    while !shared.stop.load(Ordering::SeqCst) && !tx.is_closed() {
        let ctx = match Context::establish(Scope::User) {
            Ok(ctx) => ctx,
            Err(e) => {
                if had_service {
                    tracing::info!("waiting for pcscd: {e}");
                    had_service = false;
                }
                sleep_unless_stopped(shared, backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if !had_service {
            tracing::info!("pcscd is available again");
            had_service = true;
            bump();
        }
        backoff = BACKOFF_MIN;
        *shared.context.lock().unwrap() = Some(ctx.clone());
        let result = watch_with(&ctx, tx, shared);
        *shared.context.lock().unwrap() = None;
        if let Err(e) = result {
            tracing::debug!("key watcher: {e}; re-establishing the PC/SC context");
            // pcscd stopped, or the context went stale (suspend): the
            // readers' state is unknown now, which counts as a change.
            bump();
            sleep_unless_stopped(shared, BACKOFF_MIN);
        }
    }
}

fn sleep_unless_stopped(shared: &Shared, total: Duration) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < total && !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(step);
        slept += step;
    }
}

/// What matters in a reader's state: presence of the reader and the card.
fn presence(s: State) -> State {
    s & (State::UNKNOWN
        | State::UNAVAILABLE
        | State::EMPTY
        | State::PRESENT
        | State::MUTE
        | State::IGNORE)
}

/// Waits on one context until it fails; sends an event per change.
fn watch_with(ctx: &Context, tx: &watch::Sender<u64>, shared: &Shared) -> Result<(), pcsc::Error> {
    let mut states = vec![ReaderState::new(PNP_NOTIFICATION(), State::UNAWARE)];
    let mut first = true;
    loop {
        if shared.stop.load(Ordering::SeqCst) || tx.is_closed() {
            return Ok(());
        }
        // Readers that went away, and readers that came.
        let before = states.len();
        states.retain(|rs| {
            rs.name() == PNP_NOTIFICATION()
                || !rs.event_state().intersects(State::UNKNOWN | State::IGNORE)
        });
        let mut changed = states.len() != before;
        let names = match ctx.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(e),
        };
        for name in names {
            if !states.iter().any(|rs| rs.name() == name.as_c_str()) {
                states.push(ReaderState::new(name, State::UNAWARE));
                changed = true;
            }
        }
        if changed && !first {
            tx.send_modify(|n| *n += 1);
        }
        for rs in &mut states {
            rs.sync_current_state();
        }
        // `current_state()` drops pcsc-lite's insertion counter (upper 16
        // bits); keep it here to notice a quick remove-and-insert.
        let counts: Vec<u32> = states.iter().map(ReaderState::event_count).collect();
        match ctx.get_status_change(WAIT, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => continue,
            // A reader vanished between listing and waiting: list again.
            Err(pcsc::Error::UnknownReader) => continue,
            Err(pcsc::Error::Cancelled) => return Ok(()),
            Err(e) => return Err(e),
        }
        // The first answer (to UNAWARE states) is the baseline, not a change.
        if !first
            && states.iter().zip(&counts).any(|(rs, &count)| {
                rs.event_state().contains(State::CHANGED)
                    && (rs.name() == PNP_NOTIFICATION()
                        || presence(rs.event_state()) != presence(rs.current_state())
                        || rs.event_count() != count)
            })
        {
            tracing::debug!("smart card or reader state changed");
            tx.send_modify(|n| *n += 1);
        }
        first = false;
    }
}
