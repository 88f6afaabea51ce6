//! The shared credentials file: a byte-preserving document model, edits,
//! and the locked atomic write with backups. (Placeholder until the editor lands.)

use std::path::PathBuf;

pub struct Document;

#[derive(Debug, thiserror::Error)]
#[error("credentials editor not built yet")]
pub struct CredentialsError;

pub struct CredentialsFile;

impl CredentialsFile {
    pub fn new(_path: PathBuf, _backups: usize) -> Self {
        CredentialsFile
    }
    pub fn read(&self) -> Result<Document, CredentialsError> {
        Err(CredentialsError)
    }
}

impl crate::plan::CredentialsView for Document {
    fn value(&self, _section: &str, _key: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn has_section(&self, _section: &str) -> bool {
        false
    }
}
