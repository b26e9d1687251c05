//! `troupe user …`, `troupe key …`, `troupe backup` and `troupe restore`: the operator's
//! commands. A running server that holds the embedded data directory is asked to run them (its
//! control route, found through `control.json` in the data directory); otherwise the store is
//! opened here. Either way the same code runs them (`troupe_server::operator`).

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use troupe_server::operator::{self, ControlFile, OperatorCommand};

use crate::config::{KeyCommand, StoreArgs, UserCommand};
use crate::store::Backend;
use crate::target::json_reply;

pub async fn user(command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add { email, project, role, instance_admin, password_stdin, store } => {
            let (password, made_up) = password(password_stdin)?;
            let command = OperatorCommand::AddUser { email, password: password.clone(), instance_admin, project, role };
            let answer = run(&store, command).await?;
            println!("added {}", summary(&answer));
            if made_up {
                println!("password: {password}   (shown only now; they can change it in the dashboard)");
            }
        }
        UserCommand::ResetPassword { email, password_stdin, store } => {
            let (password, made_up) = password(password_stdin)?;
            let answer = run(&store, OperatorCommand::ResetPassword { email, password: password.clone() }).await?;
            println!(
                "password reset for {} ({} sessions ended)",
                answer["email"].as_str().unwrap_or_default(),
                answer["sessions_ended"]
            );
            if made_up {
                println!("new password: {password}");
            }
        }
        UserCommand::Remove { email, store } => {
            run(&store, OperatorCommand::RemoveUser { email: email.clone() }).await?;
            println!("removed {email}");
        }
        UserCommand::List { store } => {
            let answer = run(&store, OperatorCommand::ListUsers).await?;
            for user in answer["results"].as_array().into_iter().flatten() {
                println!("{}", summary(user));
            }
        }
    }
    Ok(())
}

pub async fn key(command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Create { project, name, scope, expires_in_days, store } => {
            let answer = run(&store, OperatorCommand::CreateKey { project, name, scope, expires_in_days }).await?;
            println!(
                "secret key '{}' ({} scope{}):",
                answer["name"].as_str().unwrap_or_default(),
                answer["scope"].as_str().unwrap_or_default(),
                expiry(&answer["expires_at"])
            );
            println!("  {}   (shown only now; only its hash is kept)", answer["secret"].as_str().unwrap_or_default());
        }
        KeyCommand::List { project, store } => {
            let answer = run(&store, OperatorCommand::ListKeys { project }).await?;
            for k in answer["ingestion"].as_array().into_iter().flatten() {
                let state = match k["retires_at"].as_str() {
                    Some(at) => format!("retires {at}"),
                    None => "current".into(),
                };
                println!("ingestion  {}  {state}", k["key"].as_str().unwrap_or_default());
            }
            for k in answer["secret"].as_array().into_iter().flatten() {
                println!(
                    "secret     {:<20} {:<6} {}  id {}{}",
                    k["name"].as_str().unwrap_or_default(),
                    k["scope"].as_str().unwrap_or_default(),
                    k["hint"].as_str().unwrap_or_default(),
                    k["id"].as_str().unwrap_or_default(),
                    expiry(&k["expires_at"])
                );
            }
        }
        KeyCommand::Revoke { key, project, store } => {
            let answer = run(&store, OperatorCommand::RevokeKey { project, key }).await?;
            println!("revoked '{}'", answer["revoked"].as_str().unwrap_or_default());
        }
        KeyCommand::RotateIngestion { project, overlap_hours, store } => {
            let answer = run(&store, OperatorCommand::RotateIngestionKey { project, overlap_hours }).await?;
            println!("new ingestion key: {}", answer["key"].as_str().unwrap_or_default());
            println!("the old key works until {}", answer["retires_at"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

pub async fn backup(to: std::path::PathBuf, store: StoreArgs) -> Result<()> {
    if !matches!(store.backend()?, Backend::Embedded) {
        bail!("a ClickHouse store is backed up with ClickHouse's own tools: see docs/clickhouse.md, \"Backups\"");
    }
    let to = std::path::absolute(&to).with_context(|| format!("--to {}", to.display()))?;
    let answer = run(&store, OperatorCommand::Backup { to }).await?;
    println!(
        "backup in {}: {} bytes, schema version {}, events up to #{} ({:.1} s)",
        answer["dir"].as_str().unwrap_or_default(),
        answer["bytes"],
        answer["schema_version"],
        answer["last_event_seq"],
        answer["seconds"].as_f64().unwrap_or_default()
    );
    Ok(())
}

pub async fn restore(from: std::path::PathBuf, store: StoreArgs) -> Result<()> {
    if !matches!(store.backend()?, Backend::Embedded) {
        bail!("restore is for the embedded store; ClickHouse restores with its own tools (docs/clickhouse.md)");
    }
    let summary = troupe_duckdb::backup::restore(&from, &store.data_dir)
        .with_context(|| format!("cannot restore {} into {}", from.display(), store.data_dir.display()))?;
    println!(
        "restored into {} ({} bytes, schema version {}, events up to #{}); start the server with --data-dir {}",
        summary.dir.display(),
        summary.bytes,
        summary.schema_version,
        summary.last_event_seq,
        summary.dir.display()
    );
    Ok(())
}

/// Run through the server holding the data directory, or on the store opened here.
async fn run(store_args: &StoreArgs, command: OperatorCommand) -> Result<Value> {
    if let Some(control) = running_server(store_args) {
        match send(&control, &command).await {
            Ok(response) => return json_reply(response).await,
            // A control file left by a server killed without cleaning up: nobody answers.
            Err(e) if e.is_connect() => {}
            Err(e) => return Err(anyhow!("the running server did not answer: {e}")),
        }
    }
    let store = store_args.open_for_documents().await?;
    let answer = operator::run(store.as_ref(), &troupe_server::dashboard::Sessions::default(), command).await;
    store.close().await;
    answer.map_err(|e| anyhow!("{e}"))
}

fn running_server(store_args: &StoreArgs) -> Option<ControlFile> {
    if !matches!(store_args.backend(), Ok(Backend::Embedded)) {
        return None;
    }
    let text = std::fs::read_to_string(store_args.data_dir.join(operator::CONTROL_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

async fn send(control: &ControlFile, command: &OperatorCommand) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{}/internal/control", control.url))
        .bearer_auth(&control.token)
        .json(command)
        .timeout(std::time::Duration::from_secs(3600))
        .send()
        .await
}

fn password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the password from standard input")?;
        let password = text.trim_end_matches(['\n', '\r']).to_string();
        return Ok((password, false));
    }
    let made_up = troupe_server::auth::generate_key("");
    Ok((made_up[..20].to_string(), true))
}

fn summary(user: &Value) -> String {
    let email = user["email"].as_str().unwrap_or_default();
    if user["instance_admin"].as_bool() == Some(true) {
        return format!("{email}  instance administrator");
    }
    let roles: Vec<String> = user["roles"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(project, role)| format!("project {project}: {}", role.as_str().unwrap_or_default()))
        .collect();
    format!("{email}  {}", if roles.is_empty() { "no project".into() } else { roles.join(", ") })
}

fn expiry(at: &Value) -> String {
    at.as_str().map(|at| format!(", expires {at}")).unwrap_or_default()
}
