//! Listings as streams: each page is fetched when the previous one is used up, with `marker` set to the last
//! name seen, until Swift returns an **empty** page.
//!
//! Never assume a page size: a cluster's `container_listing_limit` may be anything, and stopping at a short page
//! would silently truncate listings on clusters with a small limit (ftp-cloudfs's bug). The cost is one extra
//! request per listing, saved where the caller knows the cluster's limit (from `/info`) and asks for pages of
//! exactly that size ([`Session::list_objects_paged`]): Swift fills every page but the last, so a shorter one is
//! the end. Memory holds one page at a time; what the caller collects is the caller's business.

use super::{ContainerInfo, Error, ObjectEntry, Session};
use futures_util::stream::{self, Stream, TryStreamExt};

impl Session {
    /// Every container of the account, in name order.
    pub fn list_account(&self) -> impl Stream<Item = Result<ContainerInfo, Error>> + Send + '_ {
        paginate(move |marker| async move {
            let page = self.list_account_page(marker.as_deref()).await?;
            let next = page.last().map(|c| c.name.clone());
            Ok((page, next))
        })
    }

    /// Every entry of `container` under `prefix`, rolled up at `delimiter` when given, in name order.
    pub fn list_objects<'a>(
        &'a self,
        container: &'a str,
        prefix: &'a str,
        delimiter: Option<char>,
    ) -> impl Stream<Item = Result<ObjectEntry, Error>> + Send + 'a {
        self.list_objects_paged(container, prefix, delimiter, None)
    }

    /// [`Session::list_objects`] in pages of `page` entries, the cluster's `container_listing_limit` (Swift
    /// refuses more): a page with fewer is the last, and the listing ends without asking for an empty one.
    /// `None`: the cluster's own page size, unknown here, so the listing ends at an empty page.
    pub fn list_objects_paged<'a>(
        &'a self,
        container: &'a str,
        prefix: &'a str,
        delimiter: Option<char>,
        page: Option<u32>,
    ) -> impl Stream<Item = Result<ObjectEntry, Error>> + Send + 'a {
        paginate(move |marker| async move {
            let entries = self
                .list_objects_page(container, prefix, delimiter, marker.as_deref(), page)
                .await?;
            let next = match page {
                Some(size) if entries.len() < size as usize => None,
                _ => entries.last().map(|e| e.marker().to_owned()),
            };
            Ok((entries, next))
        })
    }
}

/// Turns a page fetcher (`marker -> (entries, marker to go on from)`) into a stream of entries that ends after
/// the first page with no marker to go on from (an empty page, or one the fetcher knows is the last).
fn paginate<T, F, Fut>(mut fetch: F) -> impl Stream<Item = Result<T, Error>> + Send
where
    T: Send,
    F: FnMut(Option<String>) -> Fut + Send,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), Error>> + Send,
{
    // State: Some(marker) while there may be more pages; None once an empty page was seen.
    stream::try_unfold(Some(None::<String>), move |state| {
        let fut = state.map(&mut fetch);
        async move {
            let Some(fut) = fut else {
                return Ok(None);
            };
            let (page, last) = fut.await?;
            let next_state = last.map(Some);
            Ok(Some((stream::iter(page.into_iter().map(Ok)), next_state)))
        }
    })
    .try_flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn pages_until_an_empty_page() {
        let pages = [vec![1, 2], vec![3], vec![]];
        let calls = Arc::new(AtomicUsize::new(0));
        let seen_markers = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, m) = (Arc::clone(&calls), Arc::clone(&seen_markers));
        let items: Vec<i32> = paginate(move |marker: Option<String>| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            m.lock().unwrap().push(marker);
            let page = pages[n].clone();
            async move {
                let last = page.last().map(|v: &i32| v.to_string());
                Ok((page, last))
            }
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(items, vec![1, 2, 3]);
        // A short page (one entry) did not stop the listing: only the empty page did.
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            *seen_markers.lock().unwrap(),
            vec![None, Some("2".to_owned()), Some("3".to_owned())]
        );
    }
}
