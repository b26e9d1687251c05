//! The background sender: collects writes into batches and posts them to troupe's native batch
//! route (`POST /api/sdk/batch`), gzipped above a size, retried on network errors, 5xx and 429.
//! Every write carries its own id (`event_id` or `request_id`), so a batch sent again after a
//! lost reply is stored once.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::{Config, SdkError};

pub(crate) enum Message {
    Write(Value),
    /// Send everything queued before this, then answer.
    Flush(oneshot::Sender<()>),
}

pub(crate) async fn run(config: Config, mut queue: mpsc::Receiver<Message>) {
    let http = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(client) => client,
        Err(e) => {
            config.report(&SdkError::Setup(e.to_string()));
            return;
        }
    };
    let sender = Sender { config: &config, http, url: format!("{}/api/sdk/batch", config.host) };
    let mut pending: Vec<Value> = Vec::new();
    let mut tick = tokio::time::interval(config.flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = queue.recv() => match message {
                Some(Message::Write(write)) => {
                    pending.push(write);
                    if pending.len() >= config.batch_size {
                        sender.send_all(&mut pending).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    sender.send_all(&mut pending).await;
                    let _ = done.send(());
                }
                // Every client handle is gone: send what is left and stop.
                None => {
                    sender.send_all(&mut pending).await;
                    return;
                }
            },
            _ = tick.tick() => sender.send_all(&mut pending).await,
        }
    }
}

struct Sender<'a> {
    config: &'a Config,
    http: reqwest::Client,
    url: String,
}

impl Sender<'_> {
    async fn send_all(&self, pending: &mut Vec<Value>) {
        while !pending.is_empty() {
            let take = pending.len().min(self.config.batch_size);
            let batch: Vec<Value> = pending.drain(..take).collect();
            self.send(batch).await;
        }
    }

    /// One batch, until troupe takes it, refuses it, or the retries run out.
    async fn send(&self, batch: Vec<Value>) {
        let count = batch.len();
        let body = match serde_json::to_vec(&json!({ "items": batch })) {
            Ok(body) => body,
            Err(e) => return self.config.report(&SdkError::Setup(e.to_string())),
        };
        let (body, gzipped) = match body.len() > self.config.gzip_above {
            true => match gzip(&body) {
                Ok(zipped) => (zipped, true),
                Err(_) => (body, false),
            },
            false => (body, false),
        };
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-trodo-site-id", &self.config.key)
                .body(body.clone());
            if gzipped {
                request = request.header("content-encoding", "gzip");
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let text = response.text().await.unwrap_or_default();
                    if status.as_u16() == 429 || status.is_server_error() {
                        Failure { message: format!("troupe answered {status}: {text}"), wait: retry_after }
                    } else {
                        // 4xx: the request itself is wrong (a bad key, an invalid write). Sent
                        // again it would be refused again; a batch's valid writes are stored.
                        return self.config.report(&SdkError::Rejected {
                            status: status.as_u16(),
                            count,
                            message: text,
                        });
                    }
                }
                Err(e) => Failure { message: e.to_string(), wait: None },
            };
            attempt += 1;
            if attempt > self.config.max_retries {
                return self.config.report(&SdkError::GaveUp {
                    attempts: attempt,
                    writes: count,
                    message: failure.message,
                });
            }
            tracing::debug!(attempt, error = %failure.message, "troupe-sdk: retrying a batch");
            tokio::time::sleep(failure.wait.unwrap_or_else(|| self.config.backoff(attempt))).await;
        }
    }
}

struct Failure {
    message: String,
    /// What `Retry-After` asked for, if anything.
    wait: Option<Duration>,
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds: f64 = response.headers().get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(300.0)))
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}
