//! `completions` and `man`: generated from the clap definitions, so they
//! never drift from the real flags.

use std::io::Write;

use crate::cli::CompletionShell;

pub fn print(
    shell: CompletionShell,
    command: &mut clap::Command,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    // clap_complete panics when the writer fails (`completions bash | head`
    // closes the pipe): generate into memory, then write with an error.
    let mut script = Vec::new();
    clap_complete::generate(shell, command, "aws-session-daemon", &mut script);
    out.write_all(&script)?;
    out.flush()?;
    Ok(0)
}

pub fn man(command: clap::Command, out: &mut dyn Write) -> anyhow::Result<i32> {
    clap_mangen::Man::new(command).render(out)?;
    Ok(0)
}
