//! The `restart` example as a binary target, so that integration tests can
//! run it (`env!("CARGO_BIN_EXE_restart")`). The code lives in
//! `../restart.rs`; `cargo run --example restart` runs the same program.

#[path = "../restart.rs"]
mod restart;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    restart::main()
}
