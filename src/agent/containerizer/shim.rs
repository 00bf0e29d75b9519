//! `meso task-shim` (skeleton: being written on its own branch).

#[derive(Debug, clap::Args)]
pub struct ShimArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub argv: Vec<String>,
}

/// Runs in place of the async runtime; returns the process exit code.
pub fn run(_args: ShimArgs) -> i32 {
    1
}
