//! The tokio loop sleeps on its timer between deadlines (a test binary of its own, so that
//! only these agents' threads are measured).
#![cfg(target_os = "linux")]

#[test]
fn the_loop_sleeps_between_deadlines() {
    parrot_ua::testing::scenarios::the_loop_sleeps_between_deadlines(
        parrot_tokio::start,
        parrot_tokio::start,
        33200,
    );
}
