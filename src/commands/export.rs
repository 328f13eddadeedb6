//! `s3rewind export`.

use std::io::Write;

use catalog::Catalog;

use crate::cli::{ExportArgs, ExportFormat, GlobalArgs};
use crate::output::thousands;
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: ExportArgs) -> Result<u8, CliError> {
    let catalog = Catalog::open(&global.catalog).await?;
    plan::find_plan(&catalog, &args.name)?;
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let n = match args.format {
        ExportFormat::Csv => plan::export::write_csv(&catalog, &args.name, out)?,
        ExportFormat::S3Batch => plan::export::write_s3_batch(&catalog, &args.name, out)?,
    };
    if let Some(path) = &args.out {
        eprintln!("wrote {} rows to {}", thousands(n), path.display());
    }
    Ok(exit::OK)
}
