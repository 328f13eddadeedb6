//! An object's bytes into a local file (an inventory report's manifest and
//! data files), streamed: memory stays flat however large the object.

use tokio::io::AsyncWriteExt;

use crate::pacer::{partition_of, Retry};
use crate::{S3Error, S3};

impl S3 {
    /// Downloads `key` of `bucket` into `path` (replaced if it exists);
    /// returns its size. A transfer cut short is started again.
    pub async fn download(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
    ) -> Result<u64, S3Error> {
        self.pacer
            .call(partition_of(key), Retry::Idempotent, || async {
                let out = self
                    .sdk()
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetObject", bucket, e))?;
                let local = |e: std::io::Error| S3Error {
                    kind: crate::ErrorKind::Fatal,
                    operation: "GetObject",
                    code: None,
                    detail: format!("cannot write {}: {e}", path.display()),
                    advice: None,
                };
                let mut file = tokio::fs::File::create(path).await.map_err(local)?;
                let mut body = out.body;
                let mut size = 0u64;
                while let Some(chunk) = body
                    .try_next()
                    .await
                    .map_err(|e| S3Error::malformed("GetObject", e.to_string()))?
                {
                    size += chunk.len() as u64;
                    file.write_all(&chunk).await.map_err(local)?;
                }
                file.flush().await.map_err(local)?;
                Ok(size)
            })
            .await
    }
}
