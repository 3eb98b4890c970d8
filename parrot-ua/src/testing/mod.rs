//! The conformance suite every runtime adapter runs (feature `testing`).
//!
//! Every adapter's `start` returns the same [`Agent`]; the scenarios here drive agents through
//! the blocking API only, so they need no executor and run unchanged on `parrot-tokio`,
//! `parrot-smol` and `parrot-mio`, and across them (server on one runtime, client on
//! another). Each adapter's `tests/conformance.rs` runs every scenario with its own `start`, and
//! `tests/cross_runtime.rs` the two-agent ones against another adapter:
//!
//! ```ignore
//! // parrot-mio/tests/conformance.rs
//! parrot_ua::conformance_suite!(parrot_mio::start, 26000);
//! // parrot-mio/tests/cross_runtime.rs
//! parrot_ua::cross_runtime_suite!(mio_answers_tokio, parrot_mio::start, parrot_tokio::start, 31000);
//! parrot_ua::cross_runtime_suite!(tokio_answers_mio, parrot_tokio::start, parrot_mio::start, 32000);
//! ```
//!
//! The scenarios are plain functions too (`scenarios::calls_work_over_tcp(server, client,
//! base)`), and the fixtures serve other tests (`parrot-cpal`'s WAV devices use
//! [`scenarios::call_with_device`] and the tone detection of [`fixtures`]).
//!
//! A scenario takes a base port and binds RTP from the 200 ports above it (SIP binds port 0).
//! The suites pass each scenario a base from [`fixtures::free_ports`], probed free from a hint
//! of their own: other programs may hold any port.
//! Every wait has a limit: a hung agent fails its scenario rather than hanging the run.

pub mod fixtures;
pub mod scenarios;

use crate::{Agent, AgentConfig, MediaHandlerFactory, UasFactory};

/// An adapter's `start` function (`parrot_tokio::start`, `parrot_smol::start`,
/// `parrot_mio::start`).
pub type Start =
    fn(AgentConfig, Option<UasFactory>, Option<MediaHandlerFactory>) -> std::io::Result<Agent>;

/// Every scenario of [`scenarios`] as a `#[test]` with one adapter on both ends:
/// `parrot_ua::conformance_suite!(parrot_tokio::start, 20000);` in an adapter's
/// `tests/conformance.rs`. The scenarios take the 3,000 ports from the base up (200 each).
#[macro_export]
macro_rules! conformance_suite {
    ($start:expr, $base:expr) => {
        $crate::scenario_tests! { $base;
            call_is_answered_media_flows_and_dtmf_arrives($start, $start) = 0,
            calls_work_over_tcp($start, $start) = 1,
            register_and_options_report_the_answer($start, $start) = 2,
            shutdown_ends_live_calls_with_bye($start, $start) = 3,
            dropping_the_agent_ends_its_calls($start, $start) = 4,
            a_panicking_handler_ends_only_its_own_call($start, $start) = 5,
            twenty_calls_at_once_each_with_its_media($start, $start) = 6,
            a_device_wired_in_one_line_sends_and_plays_audio($start, $start) = 7,
            a_prompt_from_disk_is_played_and_the_call_is_recorded_to_disk($start, $start) = 8,
            a_call_over_tls_is_answered_and_its_media_flows($start, $start) = 9,
            calls_over_ws_and_wss_are_answered($start, $start) = 10,
            a_call_to_an_untrusted_tls_server_fails($start, $start) = 11,
            a_refused_tcp_connect_ends_the_call_at_once($start) = 12,
            a_websocket_client_places_a_call_over_ws_and_wss($start) = 13,
            one_rtp_port_pair_serves_call_after_call($start, $start) = 14,
        }
    };
}

/// The scenarios where two agents talk, as `#[test]`s in a module `$module`, the server on
/// one adapter and the client on another: `parrot_ua::cross_runtime_suite!(mio_answers_tokio,
/// parrot_mio::start, parrot_tokio::start, 31000);`. They take the 1,000 ports from the base
/// up.
#[macro_export]
macro_rules! cross_runtime_suite {
    ($module:ident, $server:expr, $client:expr, $base:expr) => {
        mod $module {
            $crate::scenario_tests! { $base;
                call_is_answered_media_flows_and_dtmf_arrives($server, $client) = 0,
                calls_work_over_tcp($server, $client) = 1,
                register_and_options_report_the_answer($server, $client) = 2,
                a_call_over_tls_is_answered_and_its_media_flows($server, $client) = 3,
                calls_over_ws_and_wss_are_answered($server, $client) = 4,
            }
        }
    };
}

/// One `#[test]` per named scenario of [`scenarios`], called with the start functions given
/// and, the `k`-th, with 200 free ports probed from `base + 200 * k` (for [`conformance_suite!`] and
/// [`cross_runtime_suite!`]).
#[macro_export]
macro_rules! scenario_tests {
    ($base:expr; $($name:ident($($start:expr),+) = $k:expr,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::scenarios::$name(
                    $($start,)+
                    $crate::testing::fixtures::free_ports($base + 200 * $k, 200),
                );
            }
        )*
    };
}
