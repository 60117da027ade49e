//! The Swift client on its own, against the real Swift: login, 401 re-login, paging, limits.

use crate::common::swift::{Fixture, login};
use crate::common::{KEY, USER, auth_url};
use futures_util::TryStreamExt;
use swiftftp::swift::{
    AuthMethod, Client, ClientConfig, Credentials, ErrorKind, ObjectEntry, Secret,
};

#[test]
fn wrong_key_is_unauthenticated() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = Client::new(&ClientConfig::default()).unwrap();
    let auth = AuthMethod::V1 {
        auth_url: auth_url().parse().unwrap(),
    };
    let err = rt
        .block_on(client.login(
            &auth,
            Credentials::V1 {
                user: USER.into(),
                key: Secret::new("nope"),
            },
            None,
        ))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(!err.to_string().contains("nope"));
}

#[test]
fn info_reports_the_cluster_limits() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let session = rt.block_on(login(USER, KEY));
    let info = rt.block_on(session.info()).unwrap();
    assert_eq!(info.max_object_name_length, 1024);
    assert_eq!(info.max_container_name_length, 256);
    assert!(info.max_file_size >= 5 * 1024 * 1024 * 1024);
}

#[test]
fn listing_pages_with_a_small_page_size_until_empty() {
    let fx = Fixture::new("paging");
    let keys: Vec<String> = (0..25).map(|i| format!("p/{i:02}")).collect();
    fx.put_many(keys.clone(), b"z", 8);
    fx.put("p/05/sub", "s");
    // Page by hand with limit=7 (the stream uses the cluster's own page size).
    let mut marker: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = fx
            .block_on(fx.session.list_objects_page(
                &fx.container,
                "p/",
                Some('/'),
                marker.as_deref(),
                Some(7),
            ))
            .unwrap();
        pages += 1;
        let Some(last) = page.last() else { break };
        marker = Some(last.marker().to_owned());
        seen.extend(page.iter().map(|e| e.marker().to_owned()));
    }
    assert_eq!(pages, 5); // 26 entries in pages of 7, then the empty page
    assert_eq!(seen.len(), 26);
    assert!(seen.contains(&"p/05/".to_owned()));
    let all: Vec<ObjectEntry> = fx
        .block_on(
            fx.session
                .list_objects(&fx.container, "p/", Some('/'))
                .try_collect(),
        )
        .unwrap();
    assert_eq!(all.len(), 26);
}

/// `may_hold` lists the names under a prefix once and then trusts them for a while, so that the per-upload look
/// for a partial upload's record costs no request, also where records of other files exist; what its own
/// session writes there, it looks up each time.
#[test]
fn the_names_under_a_prefix_are_remembered_until_the_session_writes_under_it() {
    let fx = Fixture::new("may-hold");
    fx.put("other/x", "x");
    let may_hold = |prefix: &str, name: &str| {
        fx.block_on(fx.session.may_hold(&fx.container, prefix, name))
            .unwrap()
    };
    assert!(!may_hold("records/", "records/a"));
    assert!(may_hold("other/", "other/x"));
    // Another name beside one that is there: known absent, no lookup of its own needed.
    assert!(!may_hold("other/", "other/y"));
    // Written by someone else: this session trusts what it saw (the documented window)...
    fx.put("records/a", "a");
    assert!(!may_hold("records/", "records/a"));
    // ...until it writes there itself: then any name may be there (a listing could miss it).
    fx.session.wrote_under(&fx.container, "records/");
    assert!(may_hold("records/", "records/a"));
    assert!(may_hold("records/", "records/b"));
    // What was there is trusted too: no listing before each of the caller's own lookups.
    fx.block_on(fx.session.delete_object(&fx.container, "other/x"))
        .unwrap();
    assert!(may_hold("other/", "other/x"));
    // Too many names to keep: any name may be there.
    for i in 0..100 {
        fx.put(&format!("many/{i:03}"), "m");
    }
    assert!(may_hold("many/", "many/not-there"));
    // A missing container holds nothing.
    assert!(
        !fx.block_on(
            fx.session
                .may_hold("no-such-container-may-hold", "x/", "x/a")
        )
        .unwrap()
    );
}

#[test]
fn an_invalid_token_is_renewed_once() {
    let fx = Fixture::new("relogin");
    fx.put("a", "1");
    // Invalidate the token server-side: tempauth tokens live in memcache, so ask Swift to forget it by
    // presenting a session whose token is garbage. The session logs in again on the 401 and the call succeeds.
    // Through a recording proxy, to count the logins.
    let proxy = crate::common::faulty::FaultProxy::start(crate::common::faulty::swift_addr());
    let client = Client::new(&ClientConfig::default()).unwrap();
    let auth = AuthMethod::V1 {
        auth_url: proxy.auth_url().parse().unwrap(),
    };
    let session = fx
        .block_on(client.login(
            &auth,
            Credentials::V1 {
                user: USER.to_owned(),
                key: Secret::new(KEY),
            },
            None,
        ))
        .unwrap();
    let logins = || proxy.auth_requests();
    assert_eq!(logins(), 1);
    session.set_token(Secret::new("AUTH_tk-not-a-valid-token"));
    let head = fx
        .block_on(session.head_object(&fx.container, "a"))
        .unwrap();
    assert_eq!(head.content_length, 1);
    // Renewed once: one more login, and the next request uses the new token without another.
    assert_eq!(logins(), 2);
    fx.block_on(session.head_object(&fx.container, "a"))
        .unwrap();
    assert_eq!(logins(), 2);
}
