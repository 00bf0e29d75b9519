fn main() -> std::process::ExitCode {
    meso::cli::run()
}
