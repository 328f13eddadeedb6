//! Our retry on top of the SDK's: the SDK retries each call a few times;
//! this loop keeps a throttled call going for as long as the throttling
//! lasts, and gives other transient errors a few more chances.

use std::future::Future;
use std::time::Duration;

use crate::error::ErrorKind;
use crate::S3Error;

/// Extra attempts for transient (non-throttling) errors.
pub const TRANSIENT_RETRIES: u32 = 8;

/// Exponential backoff with jitter, from half a second up to a minute.
pub fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_secs(60)
        .min(Duration::from_millis(500) * 2u32.saturating_pow(attempt.min(10)));
    cap.mul_f64(rand::random_range(0.5..=1.0))
}

/// Whether an error should be tried again after `attempts` retries.
pub fn should_retry(e: &S3Error, attempts: u32) -> bool {
    e.kind == ErrorKind::Throttled || (e.is_retryable() && attempts < TRANSIENT_RETRIES)
}

/// Calls `call` until it succeeds, fails for good, or (transient errors)
/// runs out of retries. `on_retry` sees each error that is retried.
pub async fn retrying<T, F, Fut>(
    mut call: F,
    mut on_retry: impl FnMut(&S3Error),
) -> Result<T, S3Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S3Error>>,
{
    let mut attempts = 0;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if should_retry(&e, attempts) => {
                attempts += 1;
                on_retry(&e);
                tokio::time::sleep(backoff(attempts)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
