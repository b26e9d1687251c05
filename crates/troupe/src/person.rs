//! `troupe person erase|anonymize|export`: the privacy operations of `troupe_store::privacy`, on the data
//! directory (server stopped) or through a running server's read API (`--server`).

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use serde_json::Value;
use troupe_store::privacy::{self, Export};
use troupe_store::{Project, Store};

use crate::config::PersonArgs;
use crate::target::json_reply;

pub async fn erase(args: &PersonArgs) -> Result<()> {
    let reply = match &args.target.server {
        Some(server) => json_reply(request(args, server, reqwest::Method::DELETE, "").await?).await?,
        None => {
            let id = &args.id;
            let erased = args
                .target
                .on_store(
                    |store, project| async move { Ok(privacy::erase_person(store.as_ref(), project.id, id).await?) },
                )
                .await?;
            serde_json::to_value(erased)?
        }
    };
    let ids = reply["distinct_ids"].as_array().map(Vec::len).unwrap_or(0);
    if reply["found"] == Value::Bool(true) {
        println!("erased person {} ({ids} distinct ids) and every event of its ids", reply["person_id"]);
    } else {
        println!("no person has the id {:?}; events left under it, if any, were erased", args.id);
    }
    Ok(())
}

pub async fn anonymize(args: &PersonArgs) -> Result<()> {
    let reply = match &args.target.server {
        Some(server) => json_reply(request(args, server, reqwest::Method::POST, "/anonymize").await?).await?,
        None => {
            let id = &args.id;
            let done = args
                .target
                .on_store(|store, project| async move {
                    Ok(privacy::anonymize_person(store.as_ref(), project.id, id).await?)
                })
                .await?;
            serde_json::to_value(done)?
        }
    };
    if reply["found"] == Value::Bool(true) {
        println!("anonymized person {}: its events stay under {}", reply["person_id"], reply["pseudonym"]);
    } else {
        println!("no person has the id {:?}; nothing to anonymize", args.id);
    }
    Ok(())
}

pub async fn export(args: &PersonArgs, out: Option<&Path>) -> Result<()> {
    let mut sink: Box<dyn Write> = match out {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    match &args.target.server {
        Some(server) => {
            let mut response = request(args, server, reqwest::Method::GET, "/export").await?;
            let status = response.status();
            if !status.is_success() {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                bail!("{status}: {}", body.get("error").and_then(Value::as_str).unwrap_or("(no message)"));
            }
            while let Some(chunk) = response.chunk().await.context("the export was cut off")? {
                sink.write_all(&chunk)?;
            }
        }
        None => {
            let sink = &mut sink;
            args.target
                .on_store(|store, project| async move { write_export(store.as_ref(), &project, args, sink).await })
                .await?
        }
    }
    sink.flush()?;
    if let Some(path) = out {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

async fn write_export(store: &dyn Store, project: &Project, args: &PersonArgs, sink: &mut dyn Write) -> Result<()> {
    let mut export = Export::person(store, project, &args.id)
        .await?
        .ok_or_else(|| anyhow!("no person has the id {:?} in project {:?}", args.id, project.name))?;
    while let Some(chunk) = export.next_chunk().await? {
        sink.write_all(chunk.as_bytes())?;
    }
    Ok(())
}

/// A read-API request about the person: `…/persons/{id}{suffix}`.
async fn request(args: &PersonArgs, server: &str, method: reqwest::Method, suffix: &str) -> Result<reqwest::Response> {
    let mut url = args.target.api_url(server, &["persons", &args.id])?;
    url.push_str(suffix);
    args.target.send(server, method, &url, None).await
}
