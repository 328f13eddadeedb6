//! One ListObjectVersions chain: the pages of a prefix, one after another,
//! each checked before it is handed out.
//!
//! A page's markers say where the next one starts, so a chain is serial.
//! When few requests are in flight, the pager asks for the next page as
//! soon as this one's paging fields are read, and parses this one (on a
//! blocking thread) while the next travels; with many in flight the chains
//! overlap each other already, and a second page per chain would only cost
//! memory. The paging fields read first are a guess: the next page is the
//! one the whole page, checked, says to ask for, and a page fetched from
//! a header that said otherwise is dropped unread (a server that writes
//! `EncodingType` after the entries, or a marker in another encoding than
//! the keys, makes the two differ).

use model::Entry;

use crate::client::RawListPage;
use crate::listing::{check_page, ListPage, ListRequest};
use crate::pacer::Retry;
use crate::{S3Error, S3};

/// Requests in flight at or under which a chain fetches its next page while
/// parsing the current one.
const OVERLAP_BELOW: usize = 8;

/// The pages of one prefix, from a starting point.
pub struct VersionPager {
    s3: S3,
    bucket: String,
    page_size: i32,
    /// Where the next page starts.
    at: ListRequest,
    /// The next page, fetched while the last one was parsed.
    fetched: Option<Result<RawListPage, S3Error>>,
    /// The last entry handed out, which the next page must not repeat.
    last: Option<(String, String)>,
    finished: bool,
}

impl S3 {
    /// The pages of `prefix` in `bucket`, starting after the given markers
    /// (none: at the prefix's beginning), `page_size` entries a page.
    pub fn pager(&self, bucket: &str, start: ListRequest, page_size: i32) -> VersionPager {
        VersionPager {
            s3: self.clone(),
            bucket: bucket.to_owned(),
            page_size,
            at: start,
            fetched: None,
            last: None,
            finished: false,
        }
    }
}

impl VersionPager {
    /// Entries to ask for from the next request on (at most S3's 1,000):
    /// fewer near a range's end, so that a page does not bring back what
    /// lies past it.
    pub fn set_page_size(&mut self, page_size: i32) {
        self.page_size = page_size.clamp(1, 1000);
    }

    /// The next page, `None` after the last. An error ends the chain: what
    /// was handed out before it stands, and the failed page is not used.
    pub async fn next_page(&mut self) -> Result<Option<ListPage>, S3Error> {
        if self.finished {
            return Ok(None);
        }
        let raw = match self.fetched.take() {
            Some(raw) => Some(raw?),
            None if self.overlap() => Some(self.fetch_raw(&self.at).await?),
            None => None,
        };
        if let Some(raw) = raw {
            if let Some(page) = self.overlapped(raw).await? {
                return Ok(Some(page));
            }
        }
        // Parsed where it is fetched, so that a page cut short is fetched again.
        let page = self
            .s3
            .list_page(&self.bucket, &self.at, self.page_size)
            .await?;
        let at = self.at.clone();
        self.accept(page, &at).map(Some)
    }

    fn overlap(&self) -> bool {
        self.s3.pacer.in_flight() < OVERLAP_BELOW
    }

    /// A fetched page, parsed while the page after it is fetched (when its
    /// paging fields come first, as on AWS). `None`: it must be fetched and
    /// parsed again the plain way.
    async fn overlapped(&mut self, raw: RawListPage) -> Result<Option<ListPage>, S3Error> {
        // A header that gives no next request (its marker not forward,
        // read in the wrong encoding): the whole page says what it is worth.
        let next_at = match raw.header() {
            Some(h) if h.is_truncated && self.overlap() => self.at.after(&h).ok(),
            _ => None,
        };
        let next_at = match next_at {
            Some(next_at) => next_at,
            None => {
                return match raw.parse() {
                    Ok(page) => {
                        let at = self.at.clone();
                        self.accept(page, &at).map(Some)
                    }
                    Err(e) if e.is_retryable() => Ok(None),
                    Err(e) => Err(e),
                }
            }
        };
        let parse = tokio::task::spawn_blocking(move || raw.parse());
        let (parsed, next) = tokio::join!(parse, self.fetch_raw(&next_at));
        match parsed {
            Ok(Ok(page)) => {
                let at = self.at.clone();
                let page = self.accept(page, &at)?;
                // Fetched from where the header said; kept only if that is
                // where the whole page says to go on.
                if !self.finished && self.at == next_at {
                    self.fetched = Some(next);
                }
                Ok(Some(page))
            }
            Ok(Err(e)) if !e.is_retryable() => Err(e),
            _ => Ok(None),
        }
    }

    /// Checks a page of the request `at` and moves the chain past it.
    fn accept(&mut self, page: ListPage, at: &ListRequest) -> Result<ListPage, S3Error> {
        check_page(
            &page,
            at,
            self.last.as_ref().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        if page.is_truncated {
            self.at = at.after(&page)?;
        } else {
            self.finished = true;
        }
        if let Some(Entry {
            key, version_id, ..
        }) = page.entries.last()
        {
            self.last = Some((key.clone(), version_id.clone()));
        }
        Ok(page)
    }

    async fn fetch_raw(&self, at: &ListRequest) -> Result<RawListPage, S3Error> {
        self.s3
            .pacer
            .call(&at.prefix, Retry::Idempotent, || {
                self.s3.list_once(&self.bucket, at, self.page_size)
            })
            .await
    }
}
