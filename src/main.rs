/// jemalloc, not glibc's malloc: the README's design note "jemalloc, not
/// glibc's malloc" has the figures that chose it. Only the binary sets it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    meso::cli::run()
}
