//! `meso completions bash|zsh|fish`: the shell completion script, generated
//! from the same clap definition the parser uses, so it cannot drift.

use clap::{Args, ValueEnum};
use clap_complete::Shell;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh or fish (e.g. `meso completions bash > /etc/bash_completion.d/meso`)
    shell: ShellName,
}

#[derive(Clone, Copy, ValueEnum)]
enum ShellName {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<()> {
    let shell = match args.shell {
        ShellName::Bash => Shell::Bash,
        ShellName::Zsh => Shell::Zsh,
        ShellName::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "meso", &mut std::io::stdout());
    Ok(())
}
