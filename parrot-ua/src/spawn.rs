//! [`spawn_agent`]: the start-up every adapter shares.

use crate::api::{AgentConfig, CallEvent, MediaHandlerFactory, UasFactory};
use crate::driver::{Bound, Driver};
use crate::handle::{Agent, AgentParts, Command, CommandSender, Wake};
use async_channel::{Receiver, Sender};
use std::io;

/// What an adapter's loop is handed on its thread.
pub struct LoopParts {
    /// The driver, built on the loop's thread (handlers never cross threads afterwards).
    pub driver: Driver,
    /// The bound sockets, to register with the adapter's reactor.
    pub bound: Bound,
    /// The application's commands.
    pub cmds: Receiver<Command>,
}

/// Binds the sockets `config` asks for and runs `run` on a thread of its own named
/// "parrot-sip"; returns the application's handle. `wake` is called after each command (for
/// loops that cannot await the command channel, e.g. a `mio::Waker`).
pub fn spawn_agent<F>(
    runtime: &'static str,
    config: AgentConfig,
    uas: Option<UasFactory>,
    media: Option<MediaHandlerFactory>,
    wake: Option<Wake>,
    run: F,
) -> io::Result<Agent>
where
    F: FnOnce(LoopParts) -> io::Result<()> + Send + 'static,
{
    let bound = Bound::bind(&config)?;
    let udp = bound.udp_addr()?;
    let streams = bound.stream_addrs();
    let (cmds, cmd_rx) = CommandSender::channel(wake);
    let (ev_tx, ev_rx): (Sender<CallEvent>, _) = async_channel::unbounded();
    let thread = std::thread::Builder::new()
        .name("parrot-sip".into())
        .spawn(move || {
            let r = Driver::new(config, &bound, uas, media, ev_tx).and_then(|driver| {
                run(LoopParts {
                    driver,
                    bound,
                    cmds: cmd_rx,
                })
            });
            if let Err(e) = r {
                tracing::error!("SIP agent ({runtime}): {e}");
            }
        })?;
    Ok(Agent::from_parts(AgentParts {
        cmds,
        events: ev_rx,
        udp,
        streams,
        runtime,
        thread,
    }))
}
