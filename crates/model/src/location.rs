use std::fmt;

/// The S3 location a catalog describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Key prefix every listed key starts with; empty for the whole bucket.
    pub base_prefix: String,
    /// The S3 endpoint, `None` for AWS's own.
    pub endpoint: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.base_prefix)?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, " at {endpoint}")?;
        }
        Ok(())
    }
}

/// A bucket's versioning state, as GetBucketVersioning reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Enabled,
    Suspended,
    /// Versioning was never turned on: every object has the version id `null`.
    Never,
}

impl Versioning {
    /// The text the catalog's `scans.versioning` column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
            Versioning::Never => "Never enabled",
        }
    }
}
