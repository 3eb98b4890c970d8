//! The conformance suite every adapter runs (`parrot_ua::testing`), with parrot-smol on both
//! ends: real sockets and timers on loopback, the blocking API, no executor in the test.

parrot_ua::conformance_suite!(parrot_smol::start, 23000);
