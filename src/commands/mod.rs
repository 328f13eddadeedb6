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

/// What the catalog cannot say because the inventory report it was built
/// from lacked fields (`scan --inventory … --allow-missing FIELD`), as one
/// finding: status, plan show, check and the HTML report say the same.
fn report_gaps(catalog: &catalog::Catalog) -> Result<Option<::check::Finding>, CliError> {
    let mut fields: Vec<String> = Vec::new();
    let mut under: Vec<String> = Vec::new();
    for source in catalog
        .sources()?
        .into_iter()
        .filter(|s| !s.missing.is_empty())
    {
        under.push(match source.prefix.as_str() {
            "" => format!("the inventory report of {}", source.as_of),
            p => format!("the inventory report of {} (under {p:?})", source.as_of),
        });
        for field in source.missing {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
    }
    if fields.is_empty() {
        return Ok(None);
    }
    let mut finding = ::check::Finding::new(
        "report-fields",
        ::check::Level::Warn,
        0,
        format!(
            "the entries from {} lack {} (built with --allow-missing)",
            under.join(" and "),
            fields.join(" and ")
        ),
    )
    .fix("add the fields to the inventory configuration and build the catalog from a report made after that, or list the prefixes the plan touches again (`s3rewind scan s3://BUCKET --rescan PREFIX`)");
    finding.details = fields
        .iter()
        .filter_map(|f| inventory::report::Field::parse(f))
        .map(|f| f.what_is_lost().to_owned())
        .collect();
    Ok(Some(finding))
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

/// `s3rewind scan` of the catalog's scanned location, then `rest`, as a
/// command line that runs as printed: the location, the catalog when it is
/// not the default one and the endpoint the scan listed, each one shell word.
fn scan_command(global: &GlobalArgs, location: &model::Location, rest: &str) -> String {
    use crate::output::shell_word;
    let mut command = String::from("s3rewind");
    if global.catalog != std::path::Path::new("./s3rewind.db") {
        command.push_str(" --catalog ");
        command.push_str(&shell_word(&global.catalog.to_string_lossy()));
    }
    command.push_str(" scan ");
    command.push_str(&shell_word(&location.url()));
    if let Some(endpoint) = &location.endpoint {
        command.push_str(" --endpoint-url ");
        command.push_str(&shell_word(endpoint));
    }
    command.push(' ');
    command.push_str(rest);
    command
}

fn client_options(global: &GlobalArgs, pace: s3io::Pace) -> s3io::ClientOptions {
    s3io::ClientOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
        profile: global.profile.clone(),
        pace,
    }
}
