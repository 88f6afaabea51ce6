//! The loop's one long sleep, on a kernel timer (`timerfd`, `CLOCK_BOOTTIME`)
//! instead of tokio's timer wheel.
//!
//! Why: tokio keeps a 60 s deadline in a wheel level whose slots are 4.1 s
//! wide, and wakes a worker at the slot's start, a few seconds early, then
//! again at the deadline: two wake-ups a minute for an idle daemon (measured
//! with `strace`, see README "Performance"). A timerfd registered with the
//! runtime's epoll wakes it once, at the deadline. `CLOCK_BOOTTIME` also
//! counts time spent suspended, so a deadline that passed during a suspend
//! fires right after the resume.
//!
//! When no timerfd can be made (a seccomp filter, an exotic kernel), tokio's
//! sleep does the job with its extra wake-up.

use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// Sleeps for `duration`.
pub(crate) async fn sleep(duration: Duration) {
    match arm(duration) {
        Ok(timer) => {
            if wait(&timer).await.is_ok() {
                return;
            }
            tracing::debug!("timerfd wait failed; using the runtime's timer");
        }
        Err(e) => tracing::debug!("no timerfd ({e}); using the runtime's timer"),
    }
    tokio::time::sleep(duration).await;
}

/// A non-blocking timerfd that expires once, `duration` from now (at least
/// one nanosecond: a zero value would disarm it).
fn arm(duration: Duration) -> std::io::Result<AsyncFd<OwnedFd>> {
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    let fd = timerfd_create(
        TimerfdClockId::Boottime,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    let duration = duration.max(Duration::from_nanos(1));
    let value = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: duration.subsec_nanos().into(),
        },
    };
    timerfd_settime(&fd, TimerfdTimerFlags::empty(), &value)?;
    // SAFETY: the OwnedFd moves into the AsyncFd, which owns it until it is
    // dropped: it stays open and is the same descriptor for its lifetime.
    // (tokio's safe `with_interest` is deprecated as unsound for exactly
    // this reason; this is the one unsafe block left in the application.)
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Waits until the timer has expired (its counter is readable).
async fn wait(timer: &AsyncFd<OwnedFd>) -> std::io::Result<()> {
    loop {
        let mut guard = timer.readable().await?;
        let mut expirations = [0u8; 8];
        match rustix::io::read(timer.get_ref(), &mut expirations) {
            Ok(8) => return Ok(()),
            Ok(_) => return Err(std::io::Error::other("short read from the timerfd")),
            Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_sleeps_about_as_long_as_asked() {
        for asked in [Duration::ZERO, Duration::from_millis(30)] {
            let started = std::time::Instant::now();
            sleep(asked).await;
            let slept = started.elapsed();
            assert!(slept >= asked, "{slept:?} < {asked:?}");
            assert!(slept < asked + Duration::from_secs(2), "{slept:?}");
        }
    }

    #[test]
    fn a_timerfd_is_available_here() {
        // The fallback would hide a broken timer; the test machines have one.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let timer = arm(Duration::from_millis(1)).expect("timerfd");
            wait(&timer).await.expect("expires");
        });
    }
}
