//! s3sim
