//! `#[jaunt::service]` and `#[jaunt::controller]` refuse what cannot be a route, with a clear
//! message pointing at the offending item (`tests/ui/*.stderr`; regenerate
//! them with `TRYBUILD=overwrite` after a deliberate change, then read them).

#[test]
fn service_and_controller_mistakes_are_compile_errors() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
