//! `s3rewind export`.

use std::io::Write;

use std::path::{Path, PathBuf};

use catalog::Catalog;

use crate::cli::{ExportArgs, ExportFormat, GlobalArgs};
use crate::output::thousands;
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: ExportArgs) -> Result<u8, CliError> {
    if let Some(out) = &args.out {
        refuse_catalog_files(out, &global.catalog)?;
    }
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
        ExportFormat::Csv => plan::export::write_csv(&catalog, &args.name, args.raw, out)?,
        ExportFormat::S3Batch => plan::export::write_s3_batch(&catalog, &args.name, out)?,
    };
    if let Some(path) = &args.out {
        eprintln!("wrote {} rows to {}", thousands(n), path.display());
    }
    Ok(exit::OK)
}

/// `--out` must not name the catalog or a file beside it: creating it
/// would truncate the catalog (or its WAL) before a single row is written.
fn refuse_catalog_files(out: &Path, catalog: &Path) -> Result<(), CliError> {
    let out_full = full_path(out);
    let same_file = |p: &PathBuf| {
        full_path(p) == out_full
            || matches!((std::fs::metadata(p), std::fs::metadata(out)), (Ok(a), Ok(b)) if same_inode(&a, &b))
    };
    if let Some(hit) = catalog::companions(catalog).iter().find(|p| same_file(p)) {
        return Err(CliError::Usage(format!(
            "--out {} is {}, which belongs to the catalog: writing there would destroy it\n  hint: choose another file name",
            out.display(),
            if hit == catalog { "the catalog itself".to_owned() } else { format!("the catalog's file {}", hit.display()) }
        )));
    }
    Ok(())
}

/// `path` made absolute with its directory resolved (the file may not exist).
fn full_path(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    dir.join(path.file_name().unwrap_or_default())
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}
