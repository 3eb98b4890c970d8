//! Sans-IO media core of Parrot.
#![forbid(unsafe_code)]

pub mod codec;
pub mod rtp;
pub mod sdp;
pub mod dtmf;
pub mod handler;
pub mod session;
pub mod resample;
pub mod wav;
