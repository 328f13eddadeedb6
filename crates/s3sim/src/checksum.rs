//! The additional checksum S3 stores with every object version, as it
//! does since its "default data integrity protections" (December 2024;
//! S3 user guide, "Checking object integrity"; API reference, `Checksum`,
//! `CopyObject`, `CreateMultipartUpload`):
//!
//! - a single-request write (PutObject) stores the checksum the client
//!   sent (`x-amz-checksum-<algorithm>`, as a header or an aws-chunked
//!   trailer, checked against the bytes: `BadDigest` when it differs), or
//!   else a CRC64NVME; its type is always `FULL_OBJECT`. An
//!   `x-amz-sdk-checksum-algorithm` without a value of that algorithm is
//!   refused (400 InvalidRequest; measured on AWS by others:
//!   versity/versitygw#1593 and #1602, apache/hadoop#6467);
//! - a multipart upload's algorithm and type are set when it is created:
//!   none given is CRC64NVME `FULL_OBJECT`; CRC64NVME is `FULL_OBJECT`
//!   only, SHA-1 and SHA-256 `COMPOSITE` only, CRC32 and CRC32C either
//!   (`COMPOSITE` unless asked). A `COMPOSITE` value is the algorithm over
//!   the parts' digests end to end, written `<base64>-<parts>`;
//! - a CopyObject keeps the source's checksum unless it is `COMPOSITE`,
//!   which is recomputed over the whole object ("with a copy command, the
//!   checksum of the object is a direct checksum of the full object"), or
//!   a `x-amz-checksum-algorithm` asks for another;
//! - HeadObject and GetObject return it only with `x-amz-checksum-mode:
//!   ENABLED`; listings never carry the value.
//!
//! The digests come from s3s's own implementations (`s3s::crypto`).

use s3s::crypto::{Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
use s3s::dto::{ChecksumAlgorithm, ChecksumType};
use s3s::{s3_error, S3Error, S3Result};

/// An algorithm S3 keeps an object's checksum with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    /// As S3 names it in `x-amz-checksum-algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => ChecksumAlgorithm::CRC32,
            Algorithm::Crc32c => ChecksumAlgorithm::CRC32C,
            Algorithm::Crc64Nvme => ChecksumAlgorithm::CRC64NVME,
            Algorithm::Sha1 => ChecksumAlgorithm::SHA1,
            Algorithm::Sha256 => ChecksumAlgorithm::SHA256,
        }
    }

    /// The header carrying a value of this algorithm.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// `x-amz-checksum-algorithm` / `x-amz-sdk-checksum-algorithm` value;
    /// an unknown one is a 400, as S3 answers it.
    pub fn parse(name: &str) -> S3Result<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                s3_error!(
                    InvalidRequest,
                    "Value for x-amz-checksum-algorithm header is invalid."
                )
            })
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        self.digest_of([bytes])
    }

    /// The digest of `pieces` end to end.
    fn digest_of<'a>(self, pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        fn run<'p, H: s3s::crypto::Checksum>(
            pieces: impl IntoIterator<Item = &'p [u8]>,
        ) -> Vec<u8> {
            let mut h = H::new();
            for p in pieces {
                h.update(p);
            }
            h.finalize().as_ref().to_vec()
        }
        match self {
            Algorithm::Crc32 => run::<Crc32>(pieces),
            Algorithm::Crc32c => run::<Crc32c>(pieces),
            Algorithm::Crc64Nvme => run::<Crc64Nvme>(pieces),
            Algorithm::Sha1 => run::<Sha1>(pieces),
            Algorithm::Sha256 => run::<Sha256>(pieces),
        }
    }

    /// The types S3 accepts for a multipart upload of this algorithm.
    fn allows(self, composite: bool) -> bool {
        match self {
            Algorithm::Crc64Nvme => !composite,
            Algorithm::Sha1 | Algorithm::Sha256 => composite,
            Algorithm::Crc32 | Algorithm::Crc32c => true,
        }
    }
}

/// One object version's checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    /// Base64, with `-<parts>` after a composite's.
    pub value: String,
    /// `Some(parts)`: a `COMPOSITE` checksum of a multipart upload.
    pub parts: Option<usize>,
}

impl Checksum {
    /// The `FULL_OBJECT` checksum of `bytes`.
    pub fn full(algorithm: Algorithm, bytes: &[u8]) -> Checksum {
        Checksum::full_of(algorithm, [bytes])
    }

    /// The `FULL_OBJECT` checksum of `pieces` end to end.
    pub fn full_of<'a>(
        algorithm: Algorithm,
        pieces: impl IntoIterator<Item = &'a [u8]>,
    ) -> Checksum {
        Checksum {
            algorithm,
            value: aws_smithy_types::base64::encode(algorithm.digest_of(pieces)),
            parts: None,
        }
    }

    /// The `COMPOSITE` checksum of a multipart upload's `parts`.
    pub fn composite(algorithm: Algorithm, parts: &[&[u8]]) -> Checksum {
        let digests: Vec<u8> = parts.iter().flat_map(|p| algorithm.digest(p)).collect();
        Checksum {
            algorithm,
            value: format!(
                "{}-{}",
                aws_smithy_types::base64::encode(algorithm.digest(&digests)),
                parts.len()
            ),
            parts: Some(parts.len()),
        }
    }

    pub fn type_name(&self) -> &'static str {
        if self.parts.is_some() {
            ChecksumType::COMPOSITE
        } else {
            ChecksumType::FULL_OBJECT
        }
    }

    /// The checksum a single-request copy of an object with this one
    /// gets: the same, unless composite (a copy is one piece) or another
    /// algorithm was asked for.
    pub fn for_copy(
        &self,
        asked: Option<Algorithm>,
        bytes: impl FnOnce() -> bytes::Bytes,
    ) -> Checksum {
        let algorithm = asked.unwrap_or(self.algorithm);
        if algorithm == self.algorithm && self.parts.is_none() {
            self.clone()
        } else {
            Checksum::full(algorithm, &bytes())
        }
    }

    pub fn checksum_type(&self) -> ChecksumType {
        ChecksumType::from(self.type_name().to_owned())
    }
}

/// Sets the fields an S3 output returns a [`Checksum`] in (every output
/// that has them names them alike).
macro_rules! fill_checksum {
    ($out:expr, $checksum:expr) => {{
        let c: &$crate::checksum::Checksum = $checksum;
        let value = Some(c.value.clone());
        match c.algorithm {
            $crate::checksum::Algorithm::Crc32 => $out.checksum_crc32 = value,
            $crate::checksum::Algorithm::Crc32c => $out.checksum_crc32c = value,
            $crate::checksum::Algorithm::Crc64Nvme => $out.checksum_crc64nvme = value,
            $crate::checksum::Algorithm::Sha1 => $out.checksum_sha1 = value,
            $crate::checksum::Algorithm::Sha256 => $out.checksum_sha256 = value,
        }
        $out.checksum_type = Some(c.checksum_type());
    }};
}
pub(crate) use fill_checksum;

/// What a multipart upload will check its object with, fixed when it is
/// created (`x-amz-checksum-algorithm`, `x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadChecksum {
    pub algorithm: Algorithm,
    pub composite: bool,
}

impl Default for UploadChecksum {
    fn default() -> Self {
        UploadChecksum {
            algorithm: Algorithm::Crc64Nvme,
            composite: false,
        }
    }
}

impl UploadChecksum {
    /// From CreateMultipartUpload's headers, refused as S3 refuses them.
    pub fn new(algorithm: Option<&str>, kind: Option<&str>) -> S3Result<UploadChecksum> {
        let composite = match kind {
            None => None,
            Some(k) if k.eq_ignore_ascii_case(ChecksumType::COMPOSITE) => Some(true),
            Some(k) if k.eq_ignore_ascii_case(ChecksumType::FULL_OBJECT) => Some(false),
            Some(_) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "Value for x-amz-checksum-type header is invalid."
                ))
            }
        };
        let Some(algorithm) = algorithm.map(Algorithm::parse).transpose()? else {
            if composite.is_some() {
                return Err(s3_error!(
                    InvalidRequest,
                    "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
                ));
            }
            return Ok(UploadChecksum::default());
        };
        let composite = composite.unwrap_or(algorithm != Algorithm::Crc64Nvme);
        if !algorithm.allows(composite) {
            return Err(S3Error::with_message(
                s3s::S3ErrorCode::InvalidRequest,
                format!(
                    "The {} checksum type cannot be used with the {} checksum algorithm.",
                    if composite {
                        "COMPOSITE"
                    } else {
                        "FULL_OBJECT"
                    },
                    algorithm.name().to_ascii_lowercase()
                ),
            ));
        }
        Ok(UploadChecksum {
            algorithm,
            composite,
        })
    }

    /// The completed object's checksum.
    pub fn of(&self, parts: &[&[u8]]) -> Checksum {
        if self.composite {
            Checksum::composite(self.algorithm, parts)
        } else {
            Checksum::full_of(self.algorithm, parts.iter().copied())
        }
    }
}

/// The checksum a client sent with a write, in a header or a trailer.
pub fn sent(
    headers: &http::HeaderMap,
    trailers: Option<&http::HeaderMap>,
) -> Option<(Algorithm, String)> {
    Algorithm::ALL.into_iter().find_map(|a| {
        [Some(headers), trailers]
            .into_iter()
            .flatten()
            .find_map(|h| h.get(a.header()))
            .and_then(|v| v.to_str().ok())
            .map(|v| (a, v.trim().to_owned()))
    })
}

/// The checksum a single-request write stores: the one sent (which must
/// match the bytes, and the `x-amz-sdk-checksum-algorithm` named), else
/// CRC64NVME.
pub fn for_upload(
    sent: Option<(Algorithm, String)>,
    sdk_algorithm: Option<&str>,
    body: &[u8],
) -> S3Result<Checksum> {
    let named = sdk_algorithm
        .map(Algorithm::parse)
        .transpose()
        .map_err(|_| {
            s3_error!(
                InvalidRequest,
                "Value for x-amz-sdk-checksum-algorithm header is invalid."
            )
        })?;
    match (sent, named) {
        (Some((algorithm, _)), Some(named)) if named != algorithm => Err(s3_error!(
            InvalidRequest,
            "Value for x-amz-sdk-checksum-algorithm header is invalid."
        )),
        (Some((algorithm, value)), _) => {
            let computed = Checksum::full(algorithm, body);
            if computed.value != value {
                return Err(bad_digest(algorithm));
            }
            Ok(computed)
        }
        (None, Some(_)) => Err(s3_error!(
            InvalidRequest,
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found."
        )),
        (None, None) => Ok(Checksum::full(Algorithm::Crc64Nvme, body)),
    }
}

/// A sent checksum that does not match the bytes.
pub fn bad_digest(algorithm: Algorithm) -> S3Error {
    S3Error::with_message(
        s3s::S3ErrorCode::BadDigest,
        format!(
            "The {} you specified did not match the calculated checksum.",
            algorithm.name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::crypto::Checksum as _;

    #[test]
    fn values_are_those_aws_documents() {
        // CRC64NVME("123456789") = 0xae8b14860a799888 (the check value of
        // CRC-64/NVME in the CRC catalogue).
        let c = Checksum::full(Algorithm::Crc64Nvme, b"123456789");
        assert_eq!(
            c.value,
            aws_smithy_types::base64::encode(0xae8b_1486_0a79_9888u64.to_be_bytes())
        );
        assert_eq!(c.type_name(), "FULL_OBJECT");
        // CRC32("123456789") = 0xcbf43926.
        let c = Checksum::full(Algorithm::Crc32, b"123456789");
        assert_eq!(
            c.value,
            aws_smithy_types::base64::encode(0xcbf4_3926u32.to_be_bytes())
        );
    }

    #[test]
    fn composites_hash_the_parts_digests_and_count_them() {
        let parts: [&[u8]; 2] = [b"abc", b"def"];
        let c = Checksum::composite(Algorithm::Sha256, &parts);
        let mut digests = Sha256::checksum(b"abc").to_vec();
        digests.extend(Sha256::checksum(b"def"));
        assert_eq!(
            c.value,
            format!(
                "{}-2",
                aws_smithy_types::base64::encode(Sha256::checksum(&digests))
            )
        );
        assert_eq!(c.type_name(), "COMPOSITE");
        // A full-object checksum over parts is the checksum of the whole.
        let full = UploadChecksum::default().of(&parts);
        assert_eq!(full, Checksum::full(Algorithm::Crc64Nvme, b"abcdef"));
    }

    #[test]
    fn uploads_refuse_the_combinations_s3_refuses() {
        assert_eq!(
            UploadChecksum::new(None, None).unwrap(),
            UploadChecksum::default()
        );
        assert!(UploadChecksum::new(Some("CRC32"), None).unwrap().composite);
        assert!(
            !UploadChecksum::new(Some("CRC32"), Some("FULL_OBJECT"))
                .unwrap()
                .composite
        );
        assert!(UploadChecksum::new(Some("SHA256"), Some("FULL_OBJECT")).is_err());
        assert!(UploadChecksum::new(Some("CRC64NVME"), Some("COMPOSITE")).is_err());
        assert!(UploadChecksum::new(None, Some("COMPOSITE")).is_err());
        assert!(UploadChecksum::new(Some("MD4"), None).is_err());
    }

    #[test]
    fn sent_checksums_must_match_the_bytes() {
        let right = Checksum::full(Algorithm::Crc32, b"x").value;
        assert!(for_upload(Some((Algorithm::Crc32, right)), None, b"x").is_ok());
        let e = for_upload(Some((Algorithm::Crc32, "AAAAAA==".into())), None, b"x").unwrap_err();
        assert_eq!(*e.code(), s3s::S3ErrorCode::BadDigest);
        let right = Checksum::full(Algorithm::Crc32, b"x").value;
        assert!(for_upload(Some((Algorithm::Crc32, right.clone())), Some("crc32"), b"x").is_ok());
        assert!(for_upload(Some((Algorithm::Crc32, right)), Some("SHA256"), b"x").is_err());
        assert!(for_upload(None, Some("CRC32"), b"x").is_err());
        assert_eq!(
            for_upload(None, None, b"x").unwrap().algorithm,
            Algorithm::Crc64Nvme
        );
    }
}
