//! `--storage-policy` against the lab's two policies (`gold`, the default, and `silver`): containers made with
//! lftp get the policy (and so do the segments of their large files), the root listing shows only containers
//! of it, and the others stay reachable by path.

use crate::common::swift::Fixture;
use crate::common::{TempDir, TestGateway, ok, random};
use std::process::Command;

fn policy_of(fx: &Fixture, container: &str) -> Option<String> {
    fx.block_on(fx.session.head_container(container))
        .unwrap()
        .storage_policy
}

/// The names curl's `LIST` of the root shows.
fn root_names(gw: &TestGateway) -> Vec<String> {
    let out = Command::new("curl")
        .args(["-fsS", "-m", "60", &gw.curl_url("/")])
        .output()
        .unwrap();
    ok(out, "curl LIST /")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(8).map(str::to_owned))
        .collect()
}

#[test]
fn new_containers_get_the_policy_and_only_its_containers_are_listed() {
    let gold = Fixture::new("pol-gold");
    let silver = Fixture::new("pol-silver");
    silver
        .block_on(silver.session.delete_container(&silver.container))
        .unwrap();
    silver
        .block_on(
            silver
                .session
                .put_container(&silver.container, &[("X-Storage-Policy", "silver")]),
        )
        .unwrap();
    gold.put("kept.txt", "still reachable");
    // A container this test makes through the gateway: a fixture handle on its name, to clean it up.
    let made = Fixture::new("pol-made");
    made.block_on(made.session.delete_container(&made.container))
        .unwrap();
    let segments = made.segments();
    segments
        .block_on(segments.session.delete_container(&segments.container))
        .unwrap();

    let gw = TestGateway::start_with(&["--storage-policy", "silver", "--segment-size", "1M"]);
    let local = TempDir::new("policy");
    let body = random(3 * 1024 * 1024 + 5);
    std::fs::write(local.join("big.bin"), &body).unwrap();
    ok(
        gw.lftp(&format!(
            "mkdir {}; put {} -o {}; get {} -o {}",
            made.path(""),
            local.join("big.bin").display(),
            made.path("big.bin"),
            made.path("big.bin"),
            local.join("back.bin").display()
        )),
        "lftp mkdir + put + get",
    );
    assert_eq!(std::fs::read(local.join("back.bin")).unwrap(), body);
    assert_eq!(policy_of(&gold, &made.container).as_deref(), Some("silver"));
    // The large file's segments live under the same policy as the file.
    assert_eq!(
        policy_of(&gold, &segments.container).as_deref(),
        Some("silver")
    );

    let names = root_names(&gw);
    assert!(names.contains(&silver.container), "{names:?}");
    assert!(names.contains(&made.container), "{names:?}");
    assert!(!names.contains(&gold.container), "{names:?}");
    // Hidden is not forbidden: the gold container is still there by its path.
    let out = Command::new("curl")
        .args(["-fsS", &gw.curl_url(&gold.path("kept.txt"))])
        .output()
        .unwrap();
    assert_eq!(
        ok(out, "curl RETR from a gold container"),
        "still reachable"
    );
    // MKD of an existing container of another policy: it exists, success; the policy is untouched.
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd(&format!("MKD {}", gold.path(""))).0, 257);
    assert_eq!(policy_of(&gold, &gold.container).as_deref(), Some("gold"));
    drop(raw);

    // Without the option every container is listed.
    let all = TestGateway::start();
    let names = root_names(&all);
    assert!(names.contains(&gold.container), "{names:?}");
    assert!(names.contains(&silver.container), "{names:?}");
}
