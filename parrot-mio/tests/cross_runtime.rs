//! parrot-mio and parrot-tokio call each other with the conformance suite's scenarios: the same
//! user agent behind two different loops, over UDP, TCP, TLS, WS and WSS.

parrot_ua::cross_runtime_suite!(
    mio_answers_tokio,
    parrot_mio::start,
    parrot_tokio::start,
    31000
);
parrot_ua::cross_runtime_suite!(
    tokio_answers_mio,
    parrot_tokio::start,
    parrot_mio::start,
    32000
);
