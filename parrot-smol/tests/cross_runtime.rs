//! parrot-smol and parrot-tokio call each other with the conformance suite's scenarios: the
//! same protocol whichever runtime drives each end.

parrot_ua::cross_runtime_suite!(
    smol_answers_tokio,
    parrot_smol::start,
    parrot_tokio::start,
    29000
);
parrot_ua::cross_runtime_suite!(
    tokio_answers_smol,
    parrot_tokio::start,
    parrot_smol::start,
    30000
);
