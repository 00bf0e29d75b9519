//! Links the `meso` executable at a fixed address (not position-independent).
//!
//! As a PIE it carries ~33,000 relative relocations that the dynamic loader
//! applies at every start, dirtying ~140 pages of relocated data in each
//! process: measured here, the master's idle RSS was 37.5 MB against ~23 MB,
//! the agent's 15.9 MB against ~13 MB (and when every process task was an
//! exec of `meso`, each task paid them too). The objects stay PIC; only the
//! final link differs. The cost is ASLR for the executable's own image
//! (libraries and stacks are still randomized), the default the Go-built peers
//! (etcd, Mesos-DNS, dockerd) ship with. See the README's design notes.
fn main() {
    // Only this file decides the link; without this line cargo reran it (and
    // rebuilt the crate) whenever any file of the package changed.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
