//! Objects encrypted with a customer's key (SSE-C): a write with the
//! `x-amz-server-side-encryption-customer-algorithm`, `-key` and `-key-MD5`
//! headers stores the key's MD5 with the version; reading it (GET, HEAD, or
//! as the source of a copy, with the `x-amz-copy-source-server-side-
//! encryption-customer-*` headers) needs that key again. Listings show
//! nothing of it. The codes and messages are the ones AWS answers with (S3
//! user guide, "Using server-side encryption with customer-provided keys";
//! the answers captured from AWS by S3 emulators that check against it).
//!
//! s3sim serves plain HTTP, where AWS refuses SSE-C headers; it accepts
//! them.

use md5::{Digest, Md5};
use s3s::{s3_error, S3Result};

/// The customer key a request presents, checked; returns the key's MD5
/// (base64) to store or compare, `None` when the request has none of the
/// headers.
pub(crate) fn presented(
    algorithm: Option<&str>,
    key: Option<&str>,
    key_md5: Option<&str>,
) -> S3Result<Option<String>> {
    let Some(algorithm) = algorithm else {
        if key.is_none() && key_md5.is_none() {
            return Ok(None);
        }
        return Err(s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm."
        ));
    };
    if algorithm != "AES256" {
        return Err(s3_error!(
            InvalidEncryptionAlgorithmError,
            "The Encryption request you specified is not valid. Supported value: AES256."
        ));
    }
    let Some(key) = key else {
        return Err(s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key."
        ));
    };
    let bytes = aws_smithy_types::base64::decode(key).map_err(|_| {
        s3_error!(
            InvalidArgument,
            "The secret key was invalid for the specified algorithm."
        )
    })?;
    let md5 = aws_smithy_types::base64::encode(Md5::digest(&bytes));
    // AWS compares the MD5 before the key's length.
    if key_md5.is_some_and(|given| given != md5) {
        return Err(s3_error!(
            InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided."
        ));
    }
    if bytes.len() != 32 {
        return Err(s3_error!(
            InvalidArgument,
            "The secret key was invalid for the specified algorithm."
        ));
    }
    Ok(Some(md5))
}

/// Whether a version encrypted with the key of MD5 `stored` (if any) can
/// be read by a request presenting `given`.
pub(crate) fn readable(stored: Option<&str>, given: Option<&str>) -> S3Result<()> {
    match (stored, given) {
        (Some(_), None) => Err(s3_error!(
            InvalidRequest,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."
        )),
        (Some(s), Some(g)) if s != g => Err(s3_error!(
            AccessDenied,
            "Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key."
        )),
        (None, Some(_)) => Err(s3_error!(
            InvalidRequest,
            "The encryption parameters are not applicable to this object."
        )),
        _ => Ok(()),
    }
}

/// Whether a part (UploadPart, UploadPartCopy) presents the key its
/// upload was started with (`started`), if any.
pub(crate) fn part_key(started: Option<&str>, given: Option<&str>) -> S3Result<()> {
    match (started, given) {
        (Some(s), Some(g)) if s != g => Err(s3_error!(
            InvalidRequest,
            "The provided encryption parameters did not match the ones used originally."
        )),
        (Some(_), None) | (None, Some(_)) => Err(s3_error!(
            InvalidRequest,
            "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters."
        )),
        _ => Ok(()),
    }
}

/// The ETag of an SSE-C object: not the MD5 of its bytes, as on AWS (API
/// reference, Object: "Objects … encrypted by SSE-C or SSE-KMS, have ETags
/// that are not an MD5 digest of their object data").
pub(crate) fn etag(key_md5: &str, body: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(b"s3sim SSE-C ");
    h.update(key_md5.as_bytes());
    h.update(Md5::digest(body));
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (String, String) {
        let k = [7u8; 32];
        (
            aws_smithy_types::base64::encode(k),
            aws_smithy_types::base64::encode(Md5::digest(k)),
        )
    }

    #[test]
    fn keys_are_checked_as_s3_checks_them() {
        let (k, md5) = key();
        assert_eq!(
            presented(Some("AES256"), Some(&k), Some(&md5)).unwrap(),
            Some(md5.clone())
        );
        assert_eq!(presented(None, None, None).unwrap(), None);
        let code = |r: S3Result<Option<String>>| r.unwrap_err().code().as_str().to_owned();
        assert_eq!(
            code(presented(Some("AES128"), Some(&k), None)),
            "InvalidEncryptionAlgorithmError"
        );
        assert_eq!(
            code(presented(None, Some(&k), Some(&md5))),
            "InvalidArgument"
        );
        assert_eq!(
            code(presented(Some("AES256"), None, None)),
            "InvalidArgument"
        );
        assert_eq!(
            code(presented(Some("AES256"), Some(&k), Some("AAAA"))),
            "InvalidArgument"
        );
        let short = aws_smithy_types::base64::encode([1u8; 10]);
        assert_eq!(
            code(presented(Some("AES256"), Some(&short), None)),
            "InvalidArgument"
        );
        assert!(readable(Some(&md5), Some(&md5)).is_ok());
        assert!(readable(None, None).is_ok());
        assert_eq!(
            readable(Some(&md5), None).unwrap_err().code().as_str(),
            "InvalidRequest"
        );
        assert_eq!(
            readable(Some(&md5), Some("other"))
                .unwrap_err()
                .code()
                .as_str(),
            "AccessDenied"
        );
        assert_eq!(
            readable(None, Some(&md5)).unwrap_err().code().as_str(),
            "InvalidRequest"
        );
    }
}
