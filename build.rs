//! Links the `meso` executable at a fixed address (not position-independent).
//!
//! Every process task starts through `meso task-shim`, an exec of this
//! binary. As a PIE it carries ~33,000 relative relocations that the dynamic
//! loader applies at every start, dirtying ~140 pages of relocated data in each
//! process: measured here, a shim start took 2.0–2.4 ms with 270 page faults
//! against 1.7 ms with 135, and each sleeping shim kept those pages private.
//! The objects stay PIC; only the final link differs. The cost is ASLR for the
//! executable's own image (libraries and stacks are still randomized), the
//! default the Go-built peers (etcd, Mesos-DNS, dockerd) ship with. See the
//! README's design notes.
fn main() {
    // Only this file decides the link; without this line cargo reran it (and
    // rebuilt the crate) whenever any file of the package changed.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
