//! `troupe group-type list|rename|delete`: a project's group types, through the same commands as
//! the API (`Command::RenameGroupType`, `Command::DeleteGroupType`).

use anyhow::{bail, Result};
use serde_json::json;
use troupe_core::Command;
use troupe_store::GroupTypeInfo;

use crate::config::{GroupTypeCommand, Target};
use crate::target::json_reply;

pub async fn run(command: &GroupTypeCommand) -> Result<()> {
    match command {
        GroupTypeCommand::List(target) => {
            let types: Vec<GroupTypeInfo> = match &target.server {
                Some(server) => {
                    let url = target.api_url(server, &["group-types"])?;
                    let reply = json_reply(target.send(server, reqwest::Method::GET, &url, None).await?).await?;
                    serde_json::from_value(reply["results"].clone())?
                }
                None => {
                    target.on_store(|store, project| async move { Ok(store.group_types(project.id).await?) }).await?
                }
            };
            if types.is_empty() {
                println!("no group types yet: they are created by use (a membership or an event naming one)");
            }
            for t in types {
                println!("slot {:>2}  {:<24} {:<24} {} groups", t.index, t.group_type, t.display_name, t.group_count);
            }
        }
        GroupTypeCommand::Rename { from, to, target } => {
            match &target.server {
                Some(server) => {
                    let url = target.api_url(server, &["group-types", from])?;
                    let body = json!({"name": to});
                    json_reply(target.send(server, reqwest::Method::PATCH, &url, Some(&body)).await?).await?;
                }
                None => {
                    let command = Command::RenameGroupType { from: from.clone(), to: to.clone() };
                    apply(target, from, command).await?;
                }
            }
            println!("renamed group type '{from}' to '{to}' (same slot: events keep their attribution)");
        }
        GroupTypeCommand::Delete { name, target } => {
            match &target.server {
                Some(server) => {
                    let url = target.api_url(server, &["group-types", name])?;
                    json_reply(target.send(server, reqwest::Method::DELETE, &url, None).await?).await?;
                }
                None => apply(target, name, Command::DeleteGroupType { group_type: name.clone() }).await?,
            }
            println!("deleted group type '{name}': its groups, memberships and attribution are gone, its slot is free");
        }
    }
    Ok(())
}

/// Apply one command to an existing group type of the target's project.
async fn apply(target: &Target, group_type: &str, command: Command) -> Result<()> {
    let group_type = group_type.to_string();
    target
        .on_store(|store, project| async move {
            let project = project.id;
            if !store.group_type_names(project).await?.contains(&group_type) {
                bail!("no group type '{group_type}'");
            }
            for result in store.apply(project, vec![command]).await? {
                result?;
            }
            Ok(())
        })
        .await
}
