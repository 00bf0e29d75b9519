/// jemalloc, not glibc's malloc: see the README's design notes ("jemalloc as
/// the allocator") for the figures that chose it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    meso::cli::run()
}
