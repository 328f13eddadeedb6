//! One module per subcommand.

mod apply;
mod export;
mod plan;
mod scan;
mod split;
mod sql;
mod status;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::CliError;

pub async fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Scan(args) => scan::run(&cli.global, args).await,
        Command::Split(args) => split::run(&cli.global, args).await,
        Command::Status => status::run(&cli.global).await,
        Command::Plan(cmd) => plan::run(&cli.global, cmd).await,
        Command::Sql(args) => sql::run(&cli.global, args).await,
        Command::Export(args) => export::run(&cli.global, args).await,
        Command::Apply(args) => apply::run(&cli.global, args).await,
    }
}

fn client_options(global: &GlobalArgs, pace: s3io::Pace) -> s3io::ClientOptions {
    s3io::ClientOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
        profile: global.profile.clone(),
        pace,
    }
}
