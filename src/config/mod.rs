//! Loading, expanding and validating config.toml.
