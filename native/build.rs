//! Links libcrypto (OpenSSL 3) by its soname. Inside `node` the symbols bind to
//! Node's own bundled OpenSSL (the executable exports them and comes first in
//! the lookup scope); in `cargo test` binaries they bind to the system library.
//! Node-API symbols are left undefined in the cdylib and resolve from `node`.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg=-l:libcrypto.so.3");
}
