//! The Swift client on its own: log in with v1 auth and list the account, a container, or a pseudo-directory.
//!
//! ```text
//! cargo run --example swift_ls -- http://127.0.0.1:8080/auth/v1.0 test:tester testing [container [prefix/]]
//! ```

use futures_util::TryStreamExt;
use swiftftp::swift::{AuthMethod, Client, ClientConfig, Credentials, ObjectEntry, Secret};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [auth_url, user, key, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: swift_ls AUTH_URL USER KEY [CONTAINER [PREFIX]]");
    };
    let client = Client::new(&ClientConfig::default())?;
    let auth = AuthMethod::V1 {
        auth_url: auth_url.parse()?,
    };
    let creds = Credentials::V1 {
        user: user.clone(),
        key: Secret::new(key.clone()),
    };
    let session = client.login(&auth, creds, None).await?;
    match rest {
        [] => {
            let mut containers = std::pin::pin!(session.list_account());
            while let Some(c) = containers.try_next().await? {
                println!("{:>10} {:>14} {}/", c.count, c.bytes, c.name);
            }
        }
        [container, prefix @ ..] => {
            let prefix = prefix.first().map_or("", String::as_str);
            let mut entries = std::pin::pin!(session.list_objects(container, prefix, Some('/')));
            while let Some(e) = entries.try_next().await? {
                match e {
                    ObjectEntry::Subdir(p) => println!("{:>14} {p}", "-"),
                    ObjectEntry::Object(o) => println!("{:>14} {}", o.bytes, o.name),
                }
            }
        }
    }
    Ok(())
}
