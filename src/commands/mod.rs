//! Presentation of each subcommand.
