//! troupe's Rust server SDK.
//!
//! ```no_run
//! use serde_json::json;
//! use troupe_sdk::{Client, Config};
//!
//! # async fn example() -> Result<(), troupe_sdk::SdkError> {
//! let troupe = Client::new(Config::new("https://analytics.example.com", "tri_…"));
//! let ada = troupe.for_user("ada@acme.io");
//! ada.set_group("company", ["acme"])?;
//! ada.track("Report Exported", json!({"format": "pdf"}))?;
//! ada.people().increment("reports", 1)?;
//! troupe.get_group("company", "acme").set(json!({"plan": "enterprise"}))?;
//! troupe.shutdown().await; // sends what is queued
//! # Ok(()) }
//! ```
//!
//! Stateless like troupe's other server SDKs: every call names its user. Calls only queue the
//! write (they never wait on the network); a background task sends batches ([`Config::batch_size`]
//! writes, or every [`Config::flush_interval`]), gzipped above [`Config::gzip_above`], retried with
//! exponential backoff and jitter on network errors, 5xx and 429 (honouring `Retry-After`). Every
//! event and profile operation carries an id made here, so a batch sent again after a lost reply
//! is stored once: increments and charges included. What cannot be delivered goes to
//! [`Config::on_error`]. Use [`blocking::Client`] outside an async runtime.

pub mod blocking;
mod config;
mod panics;
mod worker;

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};

pub use config::{Config, ErrorCallback};
pub use panics::{PanicHook, SERVER_DISTINCT_ID};
use worker::Message;

/// Why a write did not reach troupe.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SdkError {
    #[error("the queue is full ({capacity} writes waiting): this write was dropped")]
    QueueFull { capacity: usize },
    #[error("the client was shut down: this write was dropped")]
    Closed,
    #[error("troupe refused a batch of {count} write(s) ({status}): {message}")]
    Rejected { status: u16, count: usize, message: String },
    #[error("gave up on a batch of {writes} write(s) after {attempts} attempts: {message}")]
    GaveUp { attempts: u32, writes: usize, message: String },
    #[error("the client could not start: {0}")]
    Setup(String),
}

/// A troupe client. Cheap to clone (the clones share one queue and one sender task).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    queue: mpsc::Sender<Message>,
}

impl Client {
    /// Starts the sender task on the current tokio runtime.
    pub fn new(config: Config) -> Client {
        let (queue, receiver) = mpsc::channel(config.queue_capacity);
        tokio::spawn(worker::run(config.clone(), receiver));
        Client { inner: Arc::new(Inner { config, queue }) }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Writes about one user (by its distinct id).
    pub fn for_user(&self, distinct_id: impl Into<String>) -> User {
        User { client: self.clone(), distinct_id: distinct_id.into() }
    }

    /// Profile operations on a group (a company, a team…).
    pub fn get_group(&self, group_type: impl Into<String>, group_id: impl Into<String>) -> Group {
        Group { client: self.clone(), group_type: group_type.into(), group_id: group_id.into() }
    }

    /// Sends everything queued so far and waits until troupe took it (or it was reported lost).
    pub async fn flush(&self) {
        let (done, answered) = oneshot::channel();
        if self.inner.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = answered.await;
        }
    }

    /// [`Client::flush`]; then this handle's writes are done (clones still hold the queue).
    pub async fn shutdown(self) {
        self.flush().await;
    }

    /// Queue one write of native `kind` (a route of `/api/sdk/batch`).
    fn write(&self, kind: &str, mut body: Map<String, Value>) -> Result<(), SdkError> {
        body.insert("type".into(), Value::String(kind.into()));
        match self.inner.queue.try_send(Message::Write(Value::Object(body))) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                let error = SdkError::QueueFull { capacity: self.inner.config.queue_capacity };
                self.inner.config.report(&error);
                Err(error)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SdkError::Closed),
        }
    }

    /// A profile or membership write, with the id that makes a resend count once.
    fn operation(&self, kind: &str, body: Value) -> Result<(), SdkError> {
        let mut body = object(body);
        body.insert("request_id".into(), Value::String(new_id()));
        self.write(kind, body)
    }

    fn event(&self, distinct_id: &str, event: &str, properties: Value, groups: Option<Value>) -> Result<(), SdkError> {
        let mut body = object(json!({
            "event_name": event,
            "user_id": distinct_id,
            "custom_properties": properties,
            "event_id": new_id(),
            "timestamp": timestamp(Utc::now()),
        }));
        if let Some(groups) = groups {
            body.insert("groups".into(), groups);
        }
        self.write("events", body)
    }
}

/// Writes about one user.
#[derive(Clone)]
pub struct User {
    client: Client,
    distinct_id: String,
}

impl User {
    pub fn distinct_id(&self) -> &str {
        &self.distinct_id
    }

    /// An event, attributed by troupe to the user's groups at the time it arrives.
    pub fn track(&self, event: &str, properties: Value) -> Result<(), SdkError> {
        self.client.event(&self.distinct_id, event, properties, None)
    }

    /// An event attributed to these groups as well (`{"company": "acme"}` or a list of ids).
    pub fn track_in(&self, event: &str, properties: Value, groups: Value) -> Result<(), SdkError> {
        self.client.event(&self.distinct_id, event, properties, Some(groups))
    }

    /// This (anonymous) id is `identified_as` from now on: the two become one person.
    pub fn identify(&self, identified_as: &str) -> Result<(), SdkError> {
        self.client.operation("identify", json!({"userId": self.distinct_id, "identifyId": identified_as}))
    }

    pub fn people(&self) -> People {
        People { client: self.client.clone(), distinct_id: self.distinct_id.clone() }
    }

    /// The user's groups of `group_type` become exactly these.
    pub fn set_group<I, S>(&self, group_type: &str, group_ids: I) -> Result<(), SdkError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let ids: Vec<String> = group_ids.into_iter().map(Into::into).collect();
        let body = json!({"userId": self.distinct_id, "groupKey": group_type, "groupId": ids});
        self.client.operation("groups/set_group", body)
    }

    pub fn add_group(&self, group_type: &str, group_id: &str) -> Result<(), SdkError> {
        let body = json!({"userId": self.distinct_id, "groupKey": group_type, "groupId": group_id});
        self.client.operation("groups/add_group", body)
    }

    pub fn remove_group(&self, group_type: &str, group_id: &str) -> Result<(), SdkError> {
        let body = json!({"userId": self.distinct_id, "groupKey": group_type, "groupId": group_id});
        self.client.operation("groups/remove_group", body)
    }

    pub fn get_group(&self, group_type: &str, group_id: &str) -> Group {
        self.client.get_group(group_type, group_id)
    }
}

/// A user's profile.
#[derive(Clone)]
pub struct People {
    client: Client,
    distinct_id: String,
}

impl People {
    fn op(&self, op: &str, fields: Value) -> Result<(), SdkError> {
        let mut body = object(fields);
        body.insert("userId".into(), Value::String(self.distinct_id.clone()));
        self.client.operation(&format!("people/{op}"), Value::Object(body))
    }

    pub fn set(&self, properties: Value) -> Result<(), SdkError> {
        self.op("set", json!({"properties": properties}))
    }

    /// Only the properties the profile does not have yet.
    pub fn set_once(&self, properties: Value) -> Result<(), SdkError> {
        self.op("set_once", json!({"properties": properties}))
    }

    pub fn unset<I, S>(&self, keys: I) -> Result<(), SdkError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.op("unset", json!({"keys": keys.into_iter().map(Into::into).collect::<Vec<String>>()}))
    }

    /// Adds `amount` to a numeric property (a retried batch adds it once).
    pub fn increment(&self, key: &str, amount: impl Into<serde_json::Number>) -> Result<(), SdkError> {
        self.op("increment", json!({"key": key, "amount": Value::Number(amount.into())}))
    }

    pub fn append(&self, key: &str, values: Vec<Value>) -> Result<(), SdkError> {
        self.op("append", json!({"key": key, "values": values}))
    }

    /// Adds the values a list property does not hold yet.
    pub fn union(&self, key: &str, values: Vec<Value>) -> Result<(), SdkError> {
        self.op("union", json!({"key": key, "values": values}))
    }

    pub fn remove(&self, key: &str, values: Vec<Value>) -> Result<(), SdkError> {
        self.op("remove", json!({"key": key, "values": values}))
    }

    /// A payment (revenue), with its time now.
    pub fn track_charge(&self, amount: f64, properties: Value) -> Result<(), SdkError> {
        self.op("track_charge", json!({"amount": amount, "properties": properties, "time": timestamp(Utc::now())}))
    }

    pub fn clear_charges(&self) -> Result<(), SdkError> {
        self.op("clear_charges", json!({}))
    }

    /// Deletes the profile (its events stay; erasing a person is the privacy API's).
    pub fn delete_user(&self) -> Result<(), SdkError> {
        self.op("delete_user", json!({}))
    }
}

/// A group's profile.
#[derive(Clone)]
pub struct Group {
    client: Client,
    group_type: String,
    group_id: String,
}

impl Group {
    fn op(&self, op: &str, fields: Value) -> Result<(), SdkError> {
        let mut body = object(fields);
        body.insert("groupKey".into(), Value::String(self.group_type.clone()));
        body.insert("groupId".into(), Value::String(self.group_id.clone()));
        self.client.operation(&format!("groups/profile/{op}"), Value::Object(body))
    }

    pub fn set(&self, properties: Value) -> Result<(), SdkError> {
        self.op("set", json!({"properties": properties}))
    }

    /// Sets the group's display name with its properties.
    pub fn set_named(&self, name: &str, properties: Value) -> Result<(), SdkError> {
        self.op("set", json!({"name": name, "properties": properties}))
    }

    pub fn set_once(&self, properties: Value) -> Result<(), SdkError> {
        self.op("set_once", json!({"properties": properties}))
    }

    pub fn unset(&self, property: &str) -> Result<(), SdkError> {
        self.op("unset", json!({"property": property}))
    }

    pub fn increment(&self, property: &str, value: impl Into<serde_json::Number>) -> Result<(), SdkError> {
        self.op("increment", json!({"property": property, "value": Value::Number(value.into())}))
    }

    pub fn append(&self, property: &str, value: Value) -> Result<(), SdkError> {
        self.op("append", json!({"property": property, "value": value}))
    }

    pub fn union(&self, list_name: &str, values: Vec<Value>) -> Result<(), SdkError> {
        self.op("union", json!({"listName": list_name, "values": values}))
    }

    pub fn remove(&self, list_name: &str, value: Value) -> Result<(), SdkError> {
        self.op("remove", json!({"listName": list_name, "value": value}))
    }

    pub fn delete(&self) -> Result<(), SdkError> {
        self.op("delete", json!({}))
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
