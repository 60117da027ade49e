//! A handle on the real test Swift for fixtures: one container per test, written through the Swift API (with
//! swiftftp's own Swift client) and deleted when the handle drops.

use bytes::Bytes;
use futures_util::TryStreamExt;
use futures_util::stream::{self, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use swiftftp::swift::{
    AuthMethod, Client, ClientConfig, Credentials, ErrorKind, ObjectEntry, ObjectHead, Secret,
    Session,
};

/// Panics with the command to run when the test Swift does not answer.
pub fn ensure_lab() {
    let url = super::auth_url();
    let ok = std::process::Command::new("curl")
        .args(["-fsS", "-m", "5", "-o", "/dev/null", "-H"])
        .arg(format!("X-Auth-User: {}", super::USER))
        .args(["-H", &format!("X-Auth-Key: {}", super::KEY), &url])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the test Swift at {url} does not answer: run `tests/swift-lab.sh start` first"
    );
}

/// One test's container in the real Swift.
pub struct Fixture {
    pub container: String,
    pub session: Session,
    rt: tokio::runtime::Runtime,
    keep: bool,
}

impl Fixture {
    /// Logs in as the test admin and creates a container named after `name`, unique per process and call.
    pub fn new(name: &str) -> Self {
        Self::new_as(name, super::USER, super::KEY)
    }

    /// The same as another user.
    pub fn new_as(name: &str, user: &str, key: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let container = format!(
            "t-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        Self::exact(container, user, key)
    }

    /// This fixture's `<container>_segments` (the large-object segments convention), emptied and deleted on drop
    /// like any fixture.
    pub fn segments(&self) -> Self {
        Self::exact(
            format!("{}_segments", self.container),
            super::USER,
            super::KEY,
        )
    }

    fn exact(container: String, user: &str, key: &str) -> Self {
        ensure_lab();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let session = rt.block_on(login(user, key));
        rt.block_on(session.put_container(&container, &[])).unwrap();
        Self {
            container,
            session,
            rt,
            keep: false,
        }
    }

    /// A container kept between runs for read-only tests whose set-up is slow: `fill` runs only when the
    /// container does not hold `objects` objects yet.
    pub fn persistent(name: &str, objects: u64, fill: impl FnOnce(&Self)) -> Self {
        ensure_lab();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let session = rt.block_on(login(super::USER, super::KEY));
        let container = format!("keep-{name}");
        let fx = Self {
            container,
            session,
            rt,
            keep: true,
        };
        let count = fx
            .block_on(fx.session.head_container(&fx.container))
            .map(|h| h.count);
        if count.as_ref().ok() != Some(&objects) {
            fx.block_on(fx.session.put_container(&fx.container, &[]))
                .unwrap();
            fill(&fx);
        }
        fx
    }

    /// Runs a future on the fixture's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Writes an object.
    pub fn put(&self, key: &str, body: impl Into<Bytes>) {
        self.put_with(key, body, &[]);
    }

    /// Writes an object with headers.
    pub fn put_with(&self, key: &str, body: impl Into<Bytes>, headers: &[(&str, &str)]) {
        self.rt
            .block_on(
                self.session
                    .put_object(&self.container, key, body.into(), headers),
            )
            .unwrap();
    }

    /// Writes many small objects with up to `concurrency` PUTs in flight.
    pub fn put_many(&self, keys: Vec<String>, body: &'static [u8], concurrency: usize) {
        let session = &self.session;
        let container = &self.container;
        self.rt.block_on(async {
            stream::iter(keys)
                .map(|k| async move {
                    session
                        .put_object(container, &k, Bytes::from_static(body), &[])
                        .await
                })
                .buffer_unordered(concurrency)
                .try_collect::<Vec<_>>()
                .await
                .unwrap();
        });
    }

    /// `HEAD` of an object, `None` when it does not exist.
    pub fn head(&self, key: &str) -> Option<ObjectHead> {
        match self
            .rt
            .block_on(self.session.head_object(&self.container, key))
        {
            Ok(h) => Some(h),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => panic!("HEAD {key}: {e}"),
        }
    }

    /// The content of an object.
    pub fn get(&self, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let d = self
                .session
                .get_object(&self.container, key, 0)
                .await
                .unwrap();
            let chunks: Vec<Bytes> = d.into_stream().try_collect().await.unwrap();
            chunks.concat()
        })
    }

    /// Every object name in the container, in order.
    pub fn names(&self) -> Vec<String> {
        self.try_names().unwrap()
    }

    fn try_names(&self) -> Result<Vec<String>, swiftftp::swift::Error> {
        self.rt.block_on(async {
            self.session
                .list_objects(&self.container, "", None)
                .try_filter_map(|e| async move {
                    Ok(match e {
                        ObjectEntry::Object(o) => Some(o.name),
                        ObjectEntry::Subdir(_) => None,
                    })
                })
                .try_collect()
                .await
        })
    }

    /// The FTP path of an object in this fixture's container.
    pub fn path(&self, key: &str) -> String {
        if key.is_empty() {
            format!("/{}", self.container)
        } else {
            format!("/{}/{key}", self.container)
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let names = self.try_names().unwrap_or_default();
        let session = &self.session;
        let container = &self.container;
        self.rt.block_on(async {
            let _ = stream::iter(names)
                .map(|n| async move { session.delete_object(container, &n).await })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await;
            let _ = session.delete_container(container).await;
        });
    }
}

/// A Swift session of `user`.
pub async fn login(user: &str, key: &str) -> Session {
    let client = Client::new(&ClientConfig::default()).unwrap();
    let auth = AuthMethod::V1 {
        auth_url: super::auth_url().parse().unwrap(),
    };
    client
        .login(
            &auth,
            Credentials::V1 {
                user: user.to_owned(),
                key: Secret::new(key),
            },
            None,
        )
        .await
        .unwrap()
}
