//! Real-time scheduling ([`AgentConfig::realtime`](crate::AgentConfig::realtime)) for the
//! loop and the media sending threads, as media servers run theirs (FreeSWITCH `-rp`,
//! Asterisk `-p`): a core's other work then never delays a packet that is due.

use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy, ThreadPriority,
    ThreadPriorityValue, ThreadSchedulePolicy,
};

/// Puts the calling thread under `SCHED_FIFO` at `priority` (1-99). Where that is refused (it
/// needs `CAP_SYS_NICE`), logs why and leaves the thread as it was. Returns whether it did.
pub(crate) fn enter(priority: u8, what: &str) -> bool {
    let r = ThreadPriorityValue::try_from(priority.clamp(1, 99))
        .map_err(|e| e.to_string())
        .and_then(|p| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(p),
                ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
            )
            .map_err(|e| match e {
                thread_priority::Error::OS(code) => {
                    std::io::Error::from_raw_os_error(code).to_string()
                }
                e => format!("{e:?}"),
            })
        });
    match r {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(
                "{what}: real-time priority {priority} refused ({e}); running at normal \
                 priority (it needs root or CAP_SYS_NICE)"
            );
            false
        }
    }
}
