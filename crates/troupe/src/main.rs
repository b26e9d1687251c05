//! The `troupe` binary. Errors end here as readable messages (anyhow), never panics.

mod alloc;
mod bench;
mod config;
mod demo;
mod group_type;
mod import;
mod operate;
mod person;
mod project;
mod query;
mod serve;
mod store;
mod target;

use clap::Parser;

use config::{Cli, Command, PersonCommand, ProjectCommand};

fn main() -> std::process::ExitCode {
    alloc::configure();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("troupe: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Import(args) => import::run(args).await,
            Command::Query(args) => query::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Project { command: ProjectCommand::Create { name, store, ingestion_key } } => {
                project::create(&store, &name, ingestion_key).await
            }
            Command::Project { command: ProjectCommand::List { store } } => project::list(&store).await,
            Command::Migrate { store } => store::migrate(&store).await,
            Command::Person { command: PersonCommand::Erase(args) } => person::erase(&args).await,
            Command::Person { command: PersonCommand::Anonymize(args) } => person::anonymize(&args).await,
            Command::Person { command: PersonCommand::Export { person, out } } => {
                person::export(&person, out.as_deref()).await
            }
            Command::GroupType { command } => group_type::run(&command).await,
            Command::User { command } => operate::user(command).await,
            Command::Key { command } => operate::key(command).await,
            Command::Backup { to, store } => operate::backup(to, store).await,
            Command::Restore { from, store } => operate::restore(from, store).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("troupe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
