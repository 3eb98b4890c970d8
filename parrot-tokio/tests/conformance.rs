//! The conformance suite every adapter runs (`parrot_ua::testing`), with parrot-tokio on both
//! ends: real sockets and timers on loopback, the blocking API.

parrot_ua::conformance_suite!(parrot_tokio::start, 20000);
