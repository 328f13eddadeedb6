//! S3's request limits, and what calls cost: plans show the bill before
//! apply runs it. Prices are us-east-1 list prices.

/// LIST, PUT, COPY, POST: dollars per 1,000 requests.
pub const WRITE_TIER_PER_1000: f64 = 0.005;
/// GET, HEAD: dollars per 1,000 requests.
pub const READ_TIER_PER_1000: f64 = 0.0004;
/// DeleteObject and DeleteObjects are free.
pub const DELETE_PER_1000: f64 = 0.0;

/// One CopyObject copies at most 5 GiB; larger sources go multipart.
pub const SINGLE_COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;
/// Keys per DeleteObjects request.
pub const DELETE_BATCH: u64 = 1000;
/// S3 allows at most 10,000 parts.
const MAX_PARTS: u64 = 10_000;
const MIN_PART: u64 = 512 * 1024 * 1024;

/// Part size for a multipart copy of `size` bytes: 512 MiB, or more when
/// 10,000 parts would not hold the object.
pub fn part_size(size: u64) -> u64 {
    MIN_PART.max(size.div_ceil(MAX_PARTS))
}

/// Requests to copy one object of `size` bytes when copies above
/// `threshold` go multipart (create + parts + complete).
pub fn copy_requests(size: u64, threshold: u64) -> u64 {
    if size <= threshold {
        1
    } else {
        2 + size.div_ceil(part_size(size))
    }
}

/// Requests and dollars of a plan's apply.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimate {
    /// DeleteObjects and DeleteObject requests (free).
    pub delete_requests: u64,
    /// CopyObject, CreateMultipartUpload, UploadPartCopy, CompleteMultipartUpload.
    pub write_requests: u64,
    pub dollars: f64,
}

/// `deletes`: versions and markers to remove (batched by 1,000);
/// `add_markers`: one DeleteObject each; `copies`: the number of copies, of
/// which `large_copy_sizes` lists those above [`SINGLE_COPY_LIMIT`].
pub fn estimate(deletes: u64, add_markers: u64, copies: u64, large_copy_sizes: &[u64]) -> Estimate {
    let large: u64 = large_copy_sizes
        .iter()
        .map(|&s| copy_requests(s, SINGLE_COPY_LIMIT))
        .sum();
    let write_requests = copies - large_copy_sizes.len() as u64 + large;
    let delete_requests = deletes.div_ceil(DELETE_BATCH) + add_markers;
    Estimate {
        delete_requests,
        write_requests,
        dollars: write_requests as f64 * WRITE_TIER_PER_1000 / 1000.0
            + delete_requests as f64 * DELETE_PER_1000 / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_deletes_cost_what_s3_charges() {
        const GIB: u64 = 1024 * 1024 * 1024;
        assert_eq!(copy_requests(1, SINGLE_COPY_LIMIT), 1);
        assert_eq!(copy_requests(6 * GIB, SINGLE_COPY_LIMIT), 2 + 12);
        // 5 TiB needs parts above 512 MiB to stay within 10,000.
        assert!((5 * 1024 * GIB).div_ceil(part_size(5 * 1024 * GIB)) <= 10_000);
        let e = estimate(2500, 3, 1000, &[]);
        assert_eq!((e.delete_requests, e.write_requests), (3 + 3, 1000));
        assert!((e.dollars - 0.005).abs() < 1e-12);
    }
}
