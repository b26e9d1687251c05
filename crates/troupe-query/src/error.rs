use thiserror::Error;
use troupe_store::StoreError;

#[derive(Debug, Error)]
pub enum QueryError {
    /// The question itself is wrong: the API answers 400 with this message.
    #[error("{0}")]
    Invalid(String),
    /// A saved cohort the query names does not exist.
    #[error("cohort {0:?} not found")]
    UnknownCohort(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QueryError {
    pub fn invalid(message: impl Into<String>) -> Self {
        QueryError::Invalid(message.into())
    }
}
