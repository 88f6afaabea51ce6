//! `status`.

pub fn run(_cli: &crate::cli::Cli, _args: &crate::cli::StatusArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`status` is not yet available in this build; use `plan`")
}
