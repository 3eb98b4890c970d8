//! The registration client's half of the endpoint (RFC 3261 §10.2); see
//! [`crate::registration`].

use super::*;
use crate::registration::{refresh_delay, RegisterRequest};
use crate::{HeaderName, RequestBuilder};

impl Endpoint {
    /// Registers `req.aor` with a registrar and keeps the binding fresh until
    /// [`Endpoint::unregister`]. Results come as [`Event::RegistrationSucceeded`] /
    /// [`Event::RegistrationFailed`].
    pub fn register(
        &mut self,
        now: Instant,
        req: RegisterRequest,
    ) -> Result<RegistrationId, CommandError> {
        if self.tx_count() >= self.cfg.max_transactions {
            return Err(CommandError::Overloaded);
        }
        let local = self.local_addr(req.transport);
        let id = RegistrationId(self.next_id());
        let reg = Registration {
            expires: req.expires,
            call_id: self.new_call_id(local),
            from_tag: self.new_tag(),
            req,
            cseq: 0,
            refresh_at: None,
            auth_tried: false,
            unregistering: false,
            in_flight: false,
            interval_retries: 0,
        };
        self.registrations.insert(id, reg);
        self.send_register(now, id);
        Ok(id)
    }

    /// Removes the binding (REGISTER with Expires 0, §10.2.2); ends with
    /// [`Event::Unregistered`].
    pub fn unregister(&mut self, now: Instant, id: RegistrationId) -> Result<(), CommandError> {
        let r = self
            .registrations
            .get_mut(&id)
            .ok_or(CommandError::Unknown)?;
        r.unregistering = true;
        r.refresh_at = None;
        r.auth_tried = false;
        if !r.in_flight {
            self.send_register(now, id);
        }
        Ok(())
    }

    fn send_register(&mut self, now: Instant, id: RegistrationId) {
        let branch = self.new_branch();
        let Some(r) = self.registrations.get_mut(&id) else {
            return;
        };
        r.cseq = r.cseq.wrapping_add(1).max(1);
        r.in_flight = true;
        r.refresh_at = None;
        let expires = if r.unregistering { 0 } else { r.expires };
        let transport = r.req.transport;
        let local = self.local_addr(transport);
        let via = self.via_for(local, transport, &branch);
        let contact = self.contact_for(local, transport);
        let r = &self.registrations[&id];
        let aor = super::uac::name_addr(&r.req.aor);
        let mut b = RequestBuilder::new(Method::Register, r.req.registrar_uri.clone())
            .header(HeaderName::Via, via)
            .header(HeaderName::MaxForwards, "70")
            .header(HeaderName::From, format!("{};tag={}", aor, r.from_tag))
            .header(HeaderName::To, aor)
            .header(HeaderName::CallId, r.call_id.clone())
            .header(HeaderName::CSeq, format!("{} REGISTER", r.cseq))
            .header(HeaderName::Contact, contact)
            .header(HeaderName::Expires, expires.to_string());
        let creds = r.req.credentials.clone();
        let uri = r.req.registrar_uri.clone();
        let peer = Peer {
            addr: r.req.dst,
            transport: r.req.transport,
            conn: None,
        };
        b = self.authorize(b, creds.as_ref(), &Method::Register, &uri);
        match b.build() {
            Ok(m) => {
                self.start_client(now, m, peer, Purpose::Register(id));
            }
            Err(_) => self.on_register_failure(id, 400),
        }
    }

    pub(super) fn on_registration_timer(&mut self, now: Instant, id: RegistrationId) {
        if let Some(r) = self.registrations.get_mut(&id) {
            r.refresh_at = None;
            r.auth_tried = false;
            self.send_register(now, id);
        }
    }

    pub(super) fn on_register_failure(&mut self, id: RegistrationId, status: u16) {
        let Some(r) = self.registrations.remove(&id) else {
            return;
        };
        if r.unregistering {
            self.events
                .push_back(Event::Unregistered { registration: id });
        } else {
            self.events.push_back(Event::RegistrationFailed {
                registration: id,
                status,
            });
        }
    }

    pub(super) fn on_register_response(
        &mut self,
        now: Instant,
        id: RegistrationId,
        m: &Message,
        code: u16,
    ) {
        if code < 200 {
            return;
        }
        let Some(r) = self.registrations.get_mut(&id) else {
            return;
        };
        r.in_flight = false;
        if (200..300).contains(&code) {
            r.auth_tried = false;
            if r.unregistering {
                self.registrations.remove(&id);
                self.events
                    .push_back(Event::Unregistered { registration: id });
                return;
            }
            let granted = m
                .contacts()
                .filter_map(|c| c.ok())
                .find_map(|c| match c {
                    crate::header::ContactValue::Addr(a) => a.expires(),
                    crate::header::ContactValue::Star => None,
                })
                .or(m.expires().ok().flatten())
                .unwrap_or(r.expires);
            if granted == 0 {
                self.on_register_failure(id, code);
                return;
            }
            r.refresh_at = Some(now + refresh_delay(granted));
            self.schedule(TimerRef::Registration(id));
            self.events.push_back(Event::RegistrationSucceeded {
                registration: id,
                expires: granted,
            });
            return;
        }
        if (code == 401 || code == 407) && !r.auth_tried {
            if let Some(creds) = r.req.credentials.clone() {
                r.auth_tried = true;
                if self.learn_challenge(m, &creds) {
                    self.send_register(now, id);
                    return;
                }
            }
        }
        let Some(r) = self.registrations.get_mut(&id) else {
            return;
        };
        if code == 423 {
            let min = m.min_expires().ok().flatten().unwrap_or(0);
            if min > r.expires && r.interval_retries < 3 {
                r.expires = min;
                r.interval_retries += 1;
                self.send_register(now, id);
                return;
            }
        }
        self.on_register_failure(id, code);
    }
}
