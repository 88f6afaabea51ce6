//! Wiping secrets held in large buffers.
//!
//! The `zeroize` crate writes each byte with a volatile store: correct,
//! but on a credentials file of megabytes it took milliseconds per buffer,
//! several times per write. Here a buffer is cleared with `fill` (a
//! `memset`) and then handed to `black_box`, which the compiler must treat
//! as reading it: the stores cannot be dropped as dead. The whole capacity
//! is wiped, not only the bytes in use.

use std::ops::{Deref, DerefMut};

/// Overwrites the text's memory with zeros and leaves it empty.
pub(crate) fn wipe(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    bytes.clear();
    bytes.resize(bytes.capacity(), 0);
    std::hint::black_box(&bytes);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// A text holding secrets (a credentials file, or most of one), wiped when
/// dropped.
#[derive(Default)]
pub(crate) struct SecretText(String);

impl SecretText {
    pub(crate) fn new(text: String) -> Self {
        SecretText(text)
    }

    /// The text itself; the caller now wipes it.
    pub(crate) fn into_inner(mut self) -> String {
        std::mem::take(&mut self.0)
    }
}

impl Deref for SecretText {
    type Target = String;

    fn deref(&self) -> &String {
        &self.0
    }
}

impl DerefMut for SecretText {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.0
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Shows the size only.
impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretText({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiping_empties_the_text() {
        let mut text = String::with_capacity(100);
        text.push_str("aws_secret_access_key = x");
        wipe(&mut text);
        assert!(text.is_empty());
        let secret = SecretText::new("abc".into());
        assert_eq!(format!("{secret:?}"), "SecretText(3 bytes)");
        assert_eq!(secret.into_inner(), "abc");
    }
}
