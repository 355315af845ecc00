//! The `interop` example as a binary target, so that integration tests can
//! run it (`env!("CARGO_BIN_EXE_interop")`). The code lives in
//! `../interop.rs`; `cargo run --example interop` runs the same program.

#[path = "../interop.rs"]
mod interop;

fn main() -> std::process::ExitCode {
    interop::main()
}
