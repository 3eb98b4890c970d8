//! Per-call fault isolation: a handler that panics ends its own call, never the endpoint.

use parrot_proto::{Action, DialogId, Request, UasHandler};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Wraps a [`UasHandler`]: a panic in any callback is caught, logged, and turned into
/// [`Action::Stop`], which the core answers with 500 (before the answer) or a BYE (after).
pub struct GuardedHandler(pub Box<dyn UasHandler>);

fn guard(name: &str, f: impl FnOnce() -> Action) -> Action {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(a) => a,
        Err(e) => {
            let what = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            tracing::warn!("handler panicked in {name}: {what}; ending its call");
            Action::Stop(format!("handler panicked: {what}"))
        }
    }
}

impl UasHandler for GuardedHandler {
    fn init(&mut self) {
        let _ = guard("init", || {
            self.0.init();
            Action::NoReply
        });
    }
    fn handle_invite(&mut self, req: &Request<'_>) -> Action {
        guard("handle_invite", || self.0.handle_invite(req))
    }
    fn handle_ack(&mut self, req: &Request<'_>) -> Action {
        guard("handle_ack", || self.0.handle_ack(req))
    }
    fn handle_bye(&mut self, req: &Request<'_>) -> Action {
        guard("handle_bye", || self.0.handle_bye(req))
    }
    fn handle_cancel(&mut self, req: &Request<'_>) -> Action {
        guard("handle_cancel", || self.0.handle_cancel(req))
    }
    fn handle_options(&mut self, req: &Request<'_>) -> Action {
        guard("handle_options", || self.0.handle_options(req))
    }
    fn handle_register(&mut self, req: &Request<'_>) -> Action {
        guard("handle_register", || self.0.handle_register(req))
    }
    fn handle_subscribe(&mut self, req: &Request<'_>) -> Action {
        guard("handle_subscribe", || self.0.handle_subscribe(req))
    }
    fn handle_notify(&mut self, req: &Request<'_>) -> Action {
        guard("handle_notify", || self.0.handle_notify(req))
    }
    fn handle_publish(&mut self, req: &Request<'_>) -> Action {
        guard("handle_publish", || self.0.handle_publish(req))
    }
    fn handle_message(&mut self, req: &Request<'_>) -> Action {
        guard("handle_message", || self.0.handle_message(req))
    }
    fn handle_info(&mut self, req: &Request<'_>) -> Action {
        guard("handle_info", || self.0.handle_info(req))
    }
    fn handle_other(&mut self, req: &Request<'_>) -> Action {
        guard("handle_other", || self.0.handle_other(req))
    }
    fn handle_app_message(&mut self, dialog: Option<DialogId>, msg: &mut dyn Any) -> Action {
        guard("handle_app_message", || {
            self.0.handle_app_message(dialog, msg)
        })
    }
}
