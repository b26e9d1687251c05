use thiserror::Error;

/// A failure of the backend itself (not of a command's rules).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Backend(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the store is shutting down")]
    Closed,
}
