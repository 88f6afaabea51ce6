//! `run` and `apply`.

pub fn run(_cli: &crate::cli::Cli) -> anyhow::Result<i32> {
    anyhow::bail!(
        "the daemon is not yet available in this build; use `plan` to see what it would do"
    )
}

pub fn apply(_cli: &crate::cli::Cli) -> anyhow::Result<i32> {
    anyhow::bail!("`apply` is not yet available in this build; use `plan` to see what it would do")
}
