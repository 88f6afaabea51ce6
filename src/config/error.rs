//! Config errors that point at the file, line and column, and say the fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::retry::{Classified, RetryClass};
use crate::text::printable;

/// A config problem. Created with a byte span while parsing; [`locate`]
/// turns the span into a line and column once the file's text is known.
/// Messages never include secret values, only key names.
///
/// [`locate`]: ConfigError::locate
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(Box<Details>);

/// Boxed so that `Result<_, ConfigError>` stays small.
#[derive(Debug, Clone, PartialEq)]
struct Details {
    span: Option<Range<usize>>,
    file: Option<PathBuf>,
    line_column: Option<(usize, usize)>,
    section: Option<String>,
    message: String,
    hint: String,
}

impl ConfigError {
    pub fn at(
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ConfigError(Box::new(Details {
            span,
            file: None,
            line_column: None,
            section: None,
            message: message.into(),
            hint: hint.into(),
        }))
    }

    pub fn plain(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::at(None, message, hint)
    }

    pub fn in_section(mut self, section: &str) -> Self {
        self.0.section = Some(section.to_string());
        self
    }

    /// Attaches the file and turns the byte span into a 1-based line and column.
    pub fn locate(mut self, file: &Path, text: &str) -> Self {
        self.0.file = Some(file.to_path_buf());
        if let Some(span) = &self.0.span {
            self.0.line_column = Some(line_column(text, span.start));
        }
        self
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    pub fn line(&self) -> Option<usize> {
        self.0.line_column.map(|(line, _)| line)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Everything shown comes from outside (paths, section names, values quoted
/// in messages): escaped, so that no error can forge a line or steer the
/// terminal. The one line break is the hint's own.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.file, self.0.line_column) {
            (Some(file), Some((line, column))) => write!(
                f,
                "{}:{line}:{column}: ",
                printable(&file.display().to_string())
            )?,
            (Some(file), None) => write!(f, "{}: ", printable(&file.display().to_string()))?,
            _ => {}
        }
        if let Some(section) = &self.0.section {
            write!(f, "section [{}]: ", printable(section))?;
        }
        f.write_str(&printable(&self.0.message))?;
        if !self.0.hint.is_empty() {
            write!(f, "\n  hint: {}", printable(&self.0.hint))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Classified for ConfigError {
    fn retry_class(&self) -> RetryClass {
        RetryClass::NeedsUser
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 11), (2, 5));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn display_names_file_line_section_and_hint() {
        let e = ConfigError::at(Some(6..7), "bad", "fix it")
            .in_section("prod")
            .locate(Path::new("/c.toml"), "a = 1\nb = 2\n");
        assert_eq!(
            e.to_string(),
            "/c.toml:2:1: section [prod]: bad\n  hint: fix it"
        );
    }
}
