//! One module per subcommand.

mod scan;
mod status;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::CliError;

pub async fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Scan(args) => scan::run(&cli.global, args).await,
        Command::Status => status::run(&cli.global).await,
    }
}

fn client_options(global: &GlobalArgs) -> s3io::ClientOptions {
    s3io::ClientOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
        profile: global.profile.clone(),
    }
}
