//! Files that hold secrets (the MFA session cache, the state file, the
//! runtime directory): the rules live in [`credfile::private`], whose
//! module doc lists them. Here only what needs the async runtime.

pub(crate) use credfile::private::{
    Lock, PrivateFileError, ReadRules, ensure_private_dir, lock, read, try_lock, write,
};

/// Waits for the lock without blocking a thread: tries again every few
/// milliseconds, so that the waiting task can be cancelled (a SIGTERM while
/// another process holds the lock during a YubiKey touch).
pub(crate) async fn lock_async(path: &std::path::Path) -> Result<Lock, PrivateFileError> {
    const RETRY: std::time::Duration = std::time::Duration::from_millis(20);
    loop {
        if let Some(lock) = try_lock(path)? {
            return Ok(lock);
        }
        tokio::time::sleep(RETRY).await;
    }
}
