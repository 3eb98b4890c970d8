//! Authentication (RFC 3261 §22, RFC 7616, RFC 8760).

pub mod digest;

pub use digest::{DigestAlgorithm, DigestCredentials, DigestSession};
pub mod server;
pub use server::{
    AuthRole, CredentialStore, DigestChallenge, DigestServer, InMemoryCredentials, UsersFileError,
    Verdict,
};
