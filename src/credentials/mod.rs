//! The shared credentials file: a byte-preserving document model, edits,
//! and the locked atomic write with backups.
