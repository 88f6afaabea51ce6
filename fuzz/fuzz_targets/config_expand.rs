//! Config expansion and validation on arbitrary text: never panics.
//!
//! `parse_and_expand` (TOML → flat sections, groups, `{section}`) on the
//! text itself; then, when it expands, the whole `config::load` on a file
//! with that text (validation of every section's values, error locations
//! as line and column), with an empty environment. Every error and section
//! is also formatted, as the daemon logs them.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use aws_session_daemon::config::{self, LoadOptions};
use libfuzzer_sys::fuzz_target;

/// One scratch file per fuzzing process, on a RAM disk when there is one.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!(
            "aws-session-daemon-fuzz-config-{}.toml",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse_and_expand(text) {
        Err(error) => {
            let _ = error.to_string();
        }
        Ok(sections) => {
            for section in &sections {
                let _ = format!("{section:?}");
                for value in section.values.values() {
                    let _ = value.value.display();
                }
            }
            if std::fs::write(scratch(), text).is_err() {
                return;
            }
            let options = LoadOptions {
                path: Some(scratch().clone()),
                ..LoadOptions::default()
            };
            match config::load(&options, &|_| None) {
                Err(error) => {
                    let _ = error.to_string();
                }
                Ok(config) => {
                    for section in &config.sections {
                        match &section.settings {
                            Ok(settings) => {
                                let _ = format!("{settings:?}");
                            }
                            Err(errors) => {
                                for error in errors {
                                    let _ = error.to_string();
                                }
                            }
                        }
                    }
                    let _ = config.backups();
                }
            }
        }
    }
});
