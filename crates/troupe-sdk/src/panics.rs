//! Panics reported as `server_error` events, as troupe's other server SDKs report exceptions.

use std::panic::PanicHookInfo;
use std::sync::Arc;

use serde_json::json;

use crate::Client;

/// The distinct id of events about the server itself. troupe does not count it as a user.
pub const SERVER_DISTINCT_ID: &str = "server_global";

/// Backtraces longer than this are cut (an event's properties are bounded).
const MAX_BACKTRACE: usize = 8 * 1024;

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static>;

/// The installed hook; dropping it (or [`PanicHook::remove`]) puts back the hook that was there
/// before.
#[must_use = "the hook is removed when this is dropped"]
pub struct PanicHook {
    previous: Option<Hook>,
}

impl PanicHook {
    pub fn remove(self) {}
}

impl Drop for PanicHook {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            std::panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

impl Client {
    /// Every panic (on any thread) is queued as a `server_error` event of [`SERVER_DISTINCT_ID`]
    /// with `runtime: "rust"`, its message, location and backtrace, then handed to the hook that
    /// was installed before (so it is still printed). Does nothing when
    /// [`crate::Config::capture_panics`] is off. Flush before the process exits to send it.
    pub fn install_panic_hook(&self) -> PanicHook {
        if !self.config().capture_panics {
            return PanicHook { previous: None };
        }
        let previous: Hook = Arc::from(std::panic::take_hook());
        let before = previous.clone();
        let client = self.clone();
        std::panic::set_hook(Box::new(move |info| {
            client.report_panic(info);
            before(info);
        }));
        PanicHook { previous: Some(previous) }
    }

    fn report_panic(&self, info: &PanicHookInfo<'_>) {
        let message = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
            (Some(text), _) => text.to_string(),
            (_, Some(text)) => text.clone(),
            _ => "panic with a non-text payload".to_string(),
        };
        let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let mut backtrace = std::backtrace::Backtrace::force_capture().to_string();
        if backtrace.len() > MAX_BACKTRACE {
            let mut cut = MAX_BACKTRACE;
            while !backtrace.is_char_boundary(cut) {
                cut -= 1;
            }
            backtrace.truncate(cut);
        }
        let properties = json!({
            "runtime": "rust",
            "message": message,
            "location": location,
            "thread": std::thread::current().name().unwrap_or("unnamed"),
            "backtrace": backtrace,
        });
        // Queued only: a panic hook must not wait on the network.
        let _ = self.for_user(SERVER_DISTINCT_ID).track("server_error", properties);
    }
}
