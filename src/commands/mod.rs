//! One module per subcommand.

mod apply;
mod check;
mod export;
mod plan;
mod report;
mod scan;
mod split;
mod sql;
mod status;
mod timeline;
mod verify;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::CliError;

pub async fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Scan(args) => scan::run(&cli.global, args).await,
        Command::Split(args) => split::run(&cli.global, args).await,
        Command::Status(json) => status::run(&cli.global, json.json).await,
        Command::Timeline(args) => timeline::run(&cli.global, args).await,
        Command::Report(args) => report::run(&cli.global, args).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "s3rewind", &mut std::io::stdout());
            Ok(crate::exit::OK)
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            Ok(crate::exit::OK)
        }
        Command::Plan(cmd) => plan::run(&cli.global, cmd).await,
        Command::Sql(args) => sql::run(&cli.global, args).await,
        Command::Export(args) => export::run(&cli.global, args).await,
        Command::Check(args) => check::run(&cli.global, args).await,
        Command::Apply(args) => apply::run(&cli.global, args).await,
        Command::Verify(args) => verify::run(&cli.global, args).await,
    }
}

/// `--since` and `--until`, read and checked to make a window.
fn time_window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), CliError> {
    let since = since.map(model::time::parse_time).transpose()?;
    let until = until.map(model::time::parse_time).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(CliError::Usage(format!(
                "--since {} is after --until {}: the window is empty",
                model::time::format_time(s),
                model::time::format_time(u)
            )));
        }
    }
    Ok((since, until))
}

fn client_options(global: &GlobalArgs, pace: s3io::Pace) -> s3io::ClientOptions {
    s3io::ClientOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
        profile: global.profile.clone(),
        pace,
    }
}
