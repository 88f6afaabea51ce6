//! Keeping secrets out of core dumps and freed memory.
//!
//! The daemon holds session tokens and, while it plans, the long-term
//! secret key. A core dump (a crash under `systemd-coredump`, `gcore` by
//! the same user) would write them to disk; memory that held them and was
//! freed would keep them until reused, for a later dump or a debugger to
//! find. So:
//! - [`harden_process`] makes the process non-dumpable (no core, no
//!   `ptrace` attach by the same user, `/proc/PID/mem` readable by root
//!   only) and sets the core size limit to 0;
//! - [`ZeroOnFree`], the global allocator, overwrites every block with
//!   zeros before it is freed, so that copies made by code the project does
//!   not control (the AWS SDK's signing, HTTP buffers, serde) do not outlive
//!   their use. `SecretString` and `Zeroizing` still clear values as soon as
//!   they are dropped; this covers everything else.

use std::alloc::{GlobalAlloc, Layout, System};

use zeroize::Zeroize;

/// The system allocator, zeroing each block before it is freed.
pub struct ZeroOnFree;

// SAFETY: every call is forwarded to the system allocator with the same
// arguments; `dealloc` only writes within the block it is about to free
// (`layout.size()` bytes at `ptr`, which the caller guarantees it owns).
// `realloc` is not overridden: the default moves the data with
// `alloc` + copy + `dealloc`, so the old block is zeroed too.
unsafe impl GlobalAlloc for ZeroOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` points at `layout.size()` bytes the caller owns and
        // is giving up; volatile writes (zeroize) are not elided before
        // the free.
        unsafe {
            std::slice::from_raw_parts_mut(ptr, layout.size()).zeroize();
            System.dealloc(ptr, layout);
        }
    }
}

/// No core dumps, no `ptrace` by the same user. Called first thing in
/// `main`; a failure is reported, not fatal (a sandbox may forbid prctl).
pub fn harden_process() -> Result<(), std::io::Error> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit};
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    let no_core = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(error) = rustix::process::setrlimit(Resource::Core, no_core) {
        // The unit's seccomp filter denies setrlimit (@resources); its
        // LimitCORE=0 has set the limit already.
        if rustix::process::getrlimit(Resource::Core).current != Some(0) {
            return Err(error.into());
        }
    }
    Ok(())
}
