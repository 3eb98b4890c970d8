//! The conformance suite every adapter runs (`parrot_ua::testing`), with parrot-mio on both
//! ends: real sockets and timers on loopback, the blocking API (no executor anywhere).

parrot_ua::conformance_suite!(parrot_mio::start, 26000);
