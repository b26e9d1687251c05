//! The client for code without an async runtime: it runs its own (one thread) for the sender.
//!
//! ```no_run
//! use serde_json::json;
//! let troupe = troupe_sdk::blocking::Client::new(troupe_sdk::Config::new("http://127.0.0.1:8000", "tri_…"))?;
//! troupe.for_user("ada").track("Signed In", json!({}))?;
//! troupe.shutdown();
//! # Ok::<(), troupe_sdk::SdkError>(())
//! ```

use crate::{Config, Group, PanicHook, SdkError, User};

pub struct Client {
    inner: crate::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(config: Config) -> Result<Client, SdkError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("troupe-sdk")
            .enable_all()
            .build()
            .map_err(|e| SdkError::Setup(e.to_string()))?;
        let inner = {
            let _entered = runtime.enter();
            crate::Client::new(config)
        };
        Ok(Client { inner, runtime })
    }

    /// Writes about one user; its calls queue without blocking.
    pub fn for_user(&self, distinct_id: impl Into<String>) -> User {
        self.inner.for_user(distinct_id)
    }

    pub fn get_group(&self, group_type: impl Into<String>, group_id: impl Into<String>) -> Group {
        self.inner.get_group(group_type, group_id)
    }

    /// Waits until everything queued so far was sent (or reported lost). Not from async code.
    pub fn flush(&self) {
        self.runtime.block_on(self.inner.flush());
    }

    /// Sends what is queued, then stops the sender.
    pub fn shutdown(self) {
        self.flush();
    }

    pub fn install_panic_hook(&self) -> PanicHook {
        self.inner.install_panic_hook()
    }
}
