use thiserror::Error;

/// A failure of the backend itself (not of a command's rules). Each kind tells the caller what
/// to do: [`StoreError::Unavailable`] and [`StoreError::Closed`] are worth a retry,
/// [`StoreError::Internal`] is not. Nothing of a write that failed was stored.
///
/// The texts are for the operator's log: they may hold a backend's own message (a SQL error, a
/// host name). The HTTP layer never shows them to an ingestion client.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The backend cannot take the request now: unreachable, overloaded, or recovering from a
    /// failed write. A retry later may succeed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A fault a retry will not mend: a bug or panic in troupe, a backend that refuses the SQL,
    /// a schema that needs `troupe migrate`.
    #[error("internal store error: {0}")]
    Internal(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The backend does not do this (the text says what to use instead).
    #[error("{0}")]
    Unsupported(String),
    #[error("the store is shutting down")]
    Closed,
}

impl StoreError {
    /// Whether a retry of the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Closed)
    }
}
