//! `oath list` and `oath code`.

pub fn run(_cli: &crate::cli::Cli, _command: &crate::cli::OathCommand) -> anyhow::Result<i32> {
    anyhow::bail!("`oath` is not yet available in this build")
}
