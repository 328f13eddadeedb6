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

impl Location {
    /// `s3://bucket/base`, without the endpoint (what JSON gives as
    /// `location`, with the endpoint in a field of its own).
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.base_prefix)
    }
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

/// Where a plan's actions land when not on the scanned keys themselves
/// (`plan restore --into`): another bucket, or another prefix, which
/// replaces the scanned location's base in every key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub bucket: String,
    pub prefix: String,
}

impl Destination {
    /// `s3://BUCKET[/PREFIX]`, or why it is not one.
    pub fn parse(url: &str) -> Result<Destination, &'static str> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or("it must start with s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("the bucket name is missing");
        }
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if !(3..=255).contains(&bucket.len()) || !bucket.chars().all(valid_char) {
            return Err("a bucket name has 3 to 63 letters, digits, dots and hyphens");
        }
        Ok(Destination {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// Where `key`, listed under `base`, lands: the prefix in place of the
    /// base. Where either names a folder (the base ends in `/` or is the
    /// whole bucket, or the key goes on with `/`), the destination is one
    /// too: `s3://src/hotels` into `s3://dst/x` puts `hotels/a.jpg` at
    /// `x/a.jpg`, never `x//a.jpg` or `xa.jpg`.
    pub fn key_for(&self, base: &str, key: &str) -> String {
        let rest = key.strip_prefix(base).unwrap_or(key);
        let (rest, folder) = match rest.strip_prefix('/') {
            Some(r) => (r, true),
            None => (rest, base.is_empty() || base.ends_with('/')),
        };
        match folder && !self.prefix.is_empty() && !self.prefix.ends_with('/') {
            true => format!("{}/{rest}", self.prefix),
            false => format!("{}{rest}", self.prefix),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod destination_tests {
    use super::Destination;

    #[test]
    fn parses_and_maps_keys_from_the_base_to_the_prefix() {
        let d = Destination::parse("s3://other-bkt/restored/").unwrap();
        assert_eq!(
            (d.bucket.as_str(), d.prefix.as_str()),
            ("other-bkt", "restored/")
        );
        assert_eq!(d.key_for("img/", "img/a b.jpg"), "restored/a b.jpg");
        assert_eq!(d.key_for("", "x"), "restored/x");
        // Trailing slashes, or none, on either side: one slash between.
        for (base, dest) in [
            ("hotels", "s3://dst/x/"),
            ("hotels", "s3://dst/x"),
            ("hotels/", "s3://dst/x/"),
            ("hotels/", "s3://dst/x"),
        ] {
            let d = Destination::parse(dest).unwrap();
            assert_eq!(d.key_for(base, "hotels/0.jpg"), "x/0.jpg", "{base} {dest}");
        }
        let bucket = Destination::parse("s3://dst").unwrap();
        assert_eq!(bucket.key_for("hotels", "hotels/0.jpg"), "0.jpg");
        assert_eq!(bucket.key_for("", "a/b"), "a/b");
        assert_eq!(d.to_string(), "s3://other-bkt/restored/");
        for bad in ["bkt", "s3://", "s3:///x", "s3://b", "s3://bad bucket/x"] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }
}
