//! One method per Swift operation on a logged-in [`Session`]: accounts, containers and objects (listings' paging
//! is in `list.rs`, uploads in `upload.rs` and `large/`). Each builds its request and reads its answer; sending,
//! re-authenticating and retrying are [`Session::send`]'s (`client.rs`).
//!
//! Not here: what any of it means to FTP (the `ftp` module).

use super::client::{Replay, Session, read_body};
use super::download::body_of;
use super::error::{Error, ErrorKind, Op};
use super::urls::{container_url, object_url, object_url_with};
use super::{AccountHead, ContainerHead, ContainerInfo, ObjectEntry, ObjectHead, ObjectRef};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::{Method, Response, Url};

/// Deletes in flight at once when removing segments.
const DELETE_CONCURRENCY: usize = 8;

impl Session {
    /// One page of the account's containers after `marker` (Swift's own page size).
    pub async fn list_account_page(
        &self,
        marker: Option<&str>,
    ) -> Result<Vec<ContainerInfo>, Error> {
        let op = Op::ListAccount;
        let resp = self
            .send(&op, Replay::Retry, |http, base| {
                let mut url = base.clone();
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("format", "json");
                    if let Some(m) = marker {
                        q.append_pair("marker", m);
                    }
                }
                http.get(url)
            })
            .await?;
        let body = read_body(&op, resp, self.idle_timeout()).await?;
        serde_json::from_slice::<Vec<super::RawContainer>>(&body)
            .map(|v| v.into_iter().map(ContainerInfo::from).collect())
            .map_err(|e| Error::protocol(op, format!("bad listing JSON: {e}")))
    }

    /// One page of a container listing after `marker`. With `delimiter`, names below `prefix` that contain it
    /// come back rolled up as [`ObjectEntry::Subdir`].
    pub async fn list_objects_page(
        &self,
        container: &str,
        prefix: &str,
        delimiter: Option<char>,
        marker: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<ObjectEntry>, Error> {
        let op = Op::ListContainer {
            container: container.to_owned(),
        };
        let resp = self
            .send(&op, Replay::Retry, |http, base| {
                let mut url = container_url(base, container);
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("format", "json");
                    if !prefix.is_empty() {
                        q.append_pair("prefix", prefix);
                    }
                    if let Some(d) = delimiter {
                        q.append_pair("delimiter", d.encode_utf8(&mut [0; 4]));
                    }
                    if let Some(m) = marker {
                        q.append_pair("marker", m);
                    }
                    if let Some(l) = limit {
                        q.append_pair("limit", &l.to_string());
                    }
                }
                http.get(url)
            })
            .await?;
        let body = read_body(&op, resp, self.idle_timeout()).await?;
        serde_json::from_slice::<Vec<super::RawObjectEntry>>(&body)
            .map(|v| v.into_iter().map(ObjectEntry::from).collect())
            .map_err(|e| Error::protocol(op, format!("bad listing JSON: {e}")))
    }

    /// `HEAD` of a container: its object count, bytes and creation time.
    pub async fn head_container(&self, container: &str) -> Result<ContainerHead, Error> {
        let op = Op::HeadContainer {
            container: container.to_owned(),
        };
        let resp = self
            .send(&op, Replay::Retry, |http, base| {
                http.head(container_url(base, container))
            })
            .await?;
        Ok(ContainerHead::from_headers(resp.headers()))
    }

    /// `PUT` of a container (creates it, or updates its metadata), with extra headers such as an ACL.
    pub async fn put_container(
        &self,
        container: &str,
        headers: &[(&str, &str)],
    ) -> Result<(), Error> {
        let op = Op::PutContainer {
            container: container.to_owned(),
        };
        self.send_headers(&op, reqwest::Method::PUT, headers, |base| {
            container_url(base, container)
        })
        .await
    }

    /// A body-less request of `method` to the URL `url` makes from the storage URL, carrying `headers`.
    async fn send_headers(
        &self,
        op: &Op,
        method: reqwest::Method,
        headers: &[(&str, &str)],
        url: impl Fn(&Url) -> Url,
    ) -> Result<(), Error> {
        self.send(op, Replay::Retry, |http, base| {
            headers
                .iter()
                .fold(http.request(method.clone(), url(base)), |r, (k, v)| {
                    r.header(*k, *v)
                })
        })
        .await?;
        Ok(())
    }

    /// `POST` of an object: replaces its metadata (and `Content-Type`) with `headers`; see
    /// [`ObjectHead::kept_on_post`] for what must be sent again.
    pub async fn post_object(
        &self,
        container: &str,
        key: &str,
        headers: &[(&str, &str)],
    ) -> Result<(), Error> {
        let op = Op::PostObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        self.send_headers(&op, reqwest::Method::POST, headers, |base| {
            object_url(base, container, key)
        })
        .await
    }

    /// `POST` of a container: sets (or, with `X-Remove-…` headers, removes) metadata and ACLs, leaving the rest.
    pub async fn post_container(
        &self,
        container: &str,
        headers: &[(&str, &str)],
    ) -> Result<(), Error> {
        let op = Op::PostContainer {
            container: container.to_owned(),
        };
        self.send_headers(&op, reqwest::Method::POST, headers, |base| {
            container_url(base, container)
        })
        .await
    }

    /// `HEAD` of the account: its usage and quota.
    pub async fn head_account(&self) -> Result<AccountHead, Error> {
        let op = Op::HeadAccount;
        let resp = self
            .send(&op, Replay::Retry, |http, base| http.head(base.clone()))
            .await?;
        Ok(AccountHead::from_headers(resp.headers()))
    }

    /// `DELETE` of a container; `Conflict` when it still holds objects.
    pub async fn delete_container(&self, container: &str) -> Result<(), Error> {
        let op = Op::DeleteContainer {
            container: container.to_owned(),
        };
        self.send(&op, Replay::Retry, |http, base| {
            http.delete(container_url(base, container))
        })
        .await?;
        Ok(())
    }

    /// `HEAD` of an object.
    pub async fn head_object(&self, container: &str, key: &str) -> Result<ObjectHead, Error> {
        let op = Op::HeadObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let resp = self
            .send(&op, Replay::Retry, |http, base| {
                http.head(object_url(base, container, key))
            })
            .await?;
        Ok(ObjectHead::from_headers(resp.headers()))
    }

    /// `GET` of an object from byte `start` on. The body is not read yet: see [`ObjectDownload`].
    pub async fn get_object(
        &self,
        container: &str,
        key: &str,
        start: u64,
    ) -> Result<ObjectDownload, Error> {
        let op = Op::GetObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let resp = self
            .get_range(&op, container, key, start, None, None)
            .await?;
        Ok(ObjectDownload {
            head: ObjectHead::from_headers(resp.headers()),
            op,
            resp,
        })
    }

    /// `GET` of a small object (a record, a manifest) read whole, within the answer timeout.
    pub async fn get_small_object(&self, container: &str, key: &str) -> Result<Bytes, Error> {
        let op = Op::GetObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        self.fetch_small(&op, |http, base| http.get(object_url(base, container, key)))
            .await
    }

    /// `PUT` of an object from bytes in memory (fixtures, directory markers, manifests). Retried on transient
    /// failures, since the body can be sent again.
    pub async fn put_object(
        &self,
        container: &str,
        key: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<ObjectHead, Error> {
        self.put_object_with(container, key, body, headers, &[])
            .await
    }

    /// [`Session::put_object`] with query parameters (e.g. `multipart-manifest=put`).
    pub(crate) async fn put_object_with(
        &self,
        container: &str,
        key: &str,
        body: Bytes,
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
    ) -> Result<ObjectHead, Error> {
        let op = Op::PutObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let resp = self
            .send(&op, Replay::Retry, |http, base| {
                // An explicit length: hyper sends none for an empty body, and Swift answers 411 to that.
                headers.iter().fold(
                    http.request(Method::PUT, object_url_with(base, container, key, query))
                        .header(reqwest::header::CONTENT_LENGTH, body.len())
                        .body(body.clone()),
                    |r, (k, v)| r.header(*k, *v),
                )
            })
            .await?;
        Ok(ObjectHead::from_headers(resp.headers()))
    }

    /// `DELETE` of an object (of a large object, the manifest alone).
    pub async fn delete_object(&self, container: &str, key: &str) -> Result<(), Error> {
        let op = Op::DeleteObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        self.send(&op, Replay::Retry, |http, base| {
            http.delete(object_url(base, container, key))
        })
        .await?;
        Ok(())
    }

    /// Server-side copy (`PUT` with `X-Copy-From`). Large object manifests are copied as manifests
    /// (`multipart-manifest=get`), so their segments are shared, not duplicated; plain objects are unaffected by
    /// that parameter. Metadata and `Content-Type` travel with the copy.
    pub async fn copy_object(
        &self,
        from_container: &str,
        from_key: &str,
        to_container: &str,
        to_key: &str,
    ) -> Result<(), Error> {
        let op = Op::CopyObject {
            from: format!("{from_container}/{from_key}"),
            container: to_container.to_owned(),
            key: to_key.to_owned(),
        };
        // X-Copy-From is a path, percent-encoded like the URL path of the source.
        let source = {
            let base = Url::parse("http://copy.invalid/")
                .map_err(|e| Error::protocol(op.clone(), e.to_string()))?;
            object_url(&base, from_container, from_key)
                .path()
                .to_owned()
        };
        self.send(&op, Replay::RetryPatient, |http, base| {
            let mut url = object_url(base, to_container, to_key);
            url.query_pairs_mut()
                .append_pair("multipart-manifest", "get");
            http.put(url)
                .header("X-Copy-From", &source)
                .header(reqwest::header::CONTENT_LENGTH, 0)
        })
        .await?;
        Ok(())
    }

    /// Deletes objects (segments, a rename's sources), a few at a time; already gone is fine. Returns those that
    /// could not be deleted (logged: a leftover costs space, never correctness).
    pub async fn delete_objects(&self, objects: Vec<ObjectRef>) -> Vec<ObjectRef> {
        futures_util::stream::iter(objects)
            .map(|s| async move {
                match self.delete_object(&s.container, &s.key).await {
                    Ok(()) => None,
                    Err(e) if e.kind() == ErrorKind::NotFound => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot delete a segment");
                        Some(s)
                    }
                }
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .filter_map(|left| async move { left })
            .collect()
            .await
    }
}

/// An object `GET` whose headers have arrived and whose body is still to be read.
#[derive(Debug)]
pub struct ObjectDownload {
    /// What the `GET` answered in its headers.
    pub head: ObjectHead,
    op: Op,
    resp: Response,
}

impl ObjectDownload {
    /// The body as it arrives, chunk by chunk; a cut connection or an idle timeout is an `Unavailable` error.
    pub fn into_stream(
        self,
    ) -> impl Stream<Item = Result<Bytes, Error>> + Send + Sync + Unpin + 'static {
        body_of(self.resp, self.op)
    }
}
