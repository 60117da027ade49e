//! FTP login name → Swift credentials, the way ftp-cloudfs split them, plus application credentials.
//!
//! | auth | FTP login | credentials |
//! |---|---|---|
//! | v1 | `account:user` | `X-Auth-User: account:user` |
//! | Keystone v2.0 | `TENANT.USER` | tenant `TENANT`, user `USER` (split at the first separator) |
//! | Keystone v3 | `PROJECT[@PDOMAIN].USER[@UDOMAIN]` | project and user, each in its domain (default `Default`) |
//! | Keystone v3 | `.appcred.ID` | application credential `ID`, its secret as the password |
//!
//! `.` is `--keystone-tenant-separator` and `@` is `--keystone-domain-separator`; both may be any string (a `\`
//! separator works, and so does a tenant name with spaces). Names are split at the first separator, so a tenant
//! (or project) cannot contain the tenant separator, while a user name can. An application-credential login
//! starts with the tenant separator, i.e. has an empty project part, which no user login can have: the two forms
//! cannot be mistaken for each other. A login without a tenant separator is refused with a clear reason (the
//! old tool crashed on it).
//!
//! The owner name `LIST` shows is the user part without its domain (`appcred` for application credentials).

use crate::swift::{Credentials, Secret};

/// Which kind of login names to expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginScheme {
    /// Swift v1: the login is passed as it is.
    V1,
    /// Keystone v2.0: `TENANT<sep>USER`.
    KeystoneV2 {
        /// The tenant separator.
        tenant_sep: String,
    },
    /// Keystone v3: `PROJECT[@D]<sep>USER[@D]`, or `<sep>appcred<sep>ID`.
    KeystoneV3 {
        /// The tenant (project) separator.
        tenant_sep: String,
        /// The domain separator.
        domain_sep: String,
    },
}

/// The domain Keystone names `Default` (id `default`).
pub const DEFAULT_DOMAIN: &str = "Default";

/// Why a login name cannot be used (said in the log; the user gets a plain 530).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// No tenant separator: the tenant or project part is missing.
    #[error("the login has no {sep:?} between tenant (project) and user: expected TENANT{sep}USER")]
    NoTenant {
        /// The separator looked for.
        sep: String,
    },
    /// An empty part.
    #[error("the login has an empty {0}")]
    Empty(&'static str),
}

/// The credentials and the owner name `LIST` shows, for a login name and password.
pub fn parse_login(
    scheme: &LoginScheme,
    login: &str,
    password: &str,
) -> Result<(Credentials, String), LoginError> {
    let secret = Secret::new(password);
    match scheme {
        LoginScheme::V1 => {
            let owner = login
                .split_once(':')
                .map_or(login, |(_, user)| user)
                .to_owned();
            non_empty(&owner, "user")?;
            Ok((
                Credentials::V1 {
                    user: login.to_owned(),
                    key: secret,
                },
                owner,
            ))
        }
        LoginScheme::KeystoneV2 { tenant_sep } => {
            let (tenant, user) = split(login, tenant_sep).ok_or_else(|| LoginError::NoTenant {
                sep: tenant_sep.clone(),
            })?;
            non_empty(tenant, "tenant")?;
            non_empty(user, "user")?;
            Ok((
                Credentials::V2 {
                    tenant: tenant.to_owned(),
                    user: user.to_owned(),
                    password: secret,
                },
                user.to_owned(),
            ))
        }
        LoginScheme::KeystoneV3 {
            tenant_sep,
            domain_sep,
        } => {
            let app_prefix = format!("{tenant_sep}appcred{tenant_sep}");
            if let Some(id) = login.strip_prefix(&app_prefix) {
                non_empty(id, "application credential id")?;
                return Ok((
                    Credentials::V3ApplicationCredential {
                        id: id.to_owned(),
                        secret,
                    },
                    "appcred".to_owned(),
                ));
            }
            let (project_part, user_part) =
                split(login, tenant_sep).ok_or_else(|| LoginError::NoTenant {
                    sep: tenant_sep.clone(),
                })?;
            let (project, project_domain) =
                split(project_part, domain_sep).unwrap_or((project_part, DEFAULT_DOMAIN));
            let (user, user_domain) =
                split(user_part, domain_sep).unwrap_or((user_part, DEFAULT_DOMAIN));
            non_empty(project, "project")?;
            non_empty(project_domain, "project domain")?;
            non_empty(user, "user")?;
            non_empty(user_domain, "user domain")?;
            Ok((
                Credentials::V3Password {
                    project: project.to_owned(),
                    project_domain: project_domain.to_owned(),
                    user: user.to_owned(),
                    user_domain: user_domain.to_owned(),
                    password: secret,
                },
                user.to_owned(),
            ))
        }
    }
}

fn split<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    s.split_once(sep)
}

fn non_empty(s: &str, what: &'static str) -> Result<(), LoginError> {
    if s.is_empty() {
        Err(LoginError::Empty(what))
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v2(sep: &str) -> LoginScheme {
        LoginScheme::KeystoneV2 {
            tenant_sep: sep.into(),
        }
    }

    fn v3() -> LoginScheme {
        LoginScheme::KeystoneV3 {
            tenant_sep: ".".into(),
            domain_sep: "@".into(),
        }
    }

    #[test]
    fn v1_logins_pass_through() {
        let (c, owner) = parse_login(&LoginScheme::V1, "test:tester", "pw").unwrap();
        assert_eq!(
            c,
            Credentials::V1 {
                user: "test:tester".into(),
                key: Secret::new("pw")
            }
        );
        assert_eq!(owner, "tester");
        // An empty user part names nobody (and would leave LIST without an owner).
        assert_eq!(
            parse_login(&LoginScheme::V1, "test:", "pw").unwrap_err(),
            LoginError::Empty("user")
        );
    }

    #[test]
    fn v2_splits_at_the_first_separator() {
        let cases = [
            (".", "demo.alice", "demo", "alice"),
            (".", "space tenant.bob", "space tenant", "bob"),
            (".", "t.first.last", "t", "first.last"),
            ("\\", "dot.tenant\\dave", "dot.tenant", "dave"),
            ("::", "a::b::c", "a", "b::c"),
        ];
        for (sep, login, tenant, user) in cases {
            let (c, owner) = parse_login(&v2(sep), login, "pw").unwrap();
            assert_eq!(
                c,
                Credentials::V2 {
                    tenant: tenant.into(),
                    user: user.into(),
                    password: Secret::new("pw")
                },
                "{login}"
            );
            assert_eq!(owner, user);
        }
        assert_eq!(
            parse_login(&v2("."), "alice", "pw").unwrap_err(),
            LoginError::NoTenant { sep: ".".into() }
        );
        assert_eq!(
            parse_login(&v2("."), ".alice", "pw").unwrap_err(),
            LoginError::Empty("tenant")
        );
        assert_eq!(
            parse_login(&v2("."), "demo.", "pw").unwrap_err(),
            LoginError::Empty("user")
        );
    }

    #[test]
    fn every_spelling_of_one_identity_is_one_identity() {
        let id = |login: &str| parse_login(&v3(), login, "pw").unwrap().0.identity();
        let alice = id("demo.alice");
        for spelling in [
            "demo@Default.alice",
            "demo.alice@Default",
            "demo@Default.alice@Default",
        ] {
            assert_eq!(id(spelling), alice, "{spelling}");
        }
        assert_ne!(id("demo.bob"), alice);
        // The project only scopes the token, and Keystone finds names whatever their case.
        assert_eq!(id("other.alice"), alice);
        assert_eq!(id("demo@Other.ALICE@default"), alice);
        assert_ne!(id("demo.alice@Other"), alice);
        let v2 = |login: &str| {
            parse_login(
                &LoginScheme::KeystoneV2 {
                    tenant_sep: ".".into(),
                },
                login,
                "pw",
            )
            .unwrap()
            .0
            .identity()
        };
        assert_eq!(v2("t1.Alice"), v2("t2.alice"));
        let v1 = |login: &str| {
            parse_login(&LoginScheme::V1, login, "pw")
                .unwrap()
                .0
                .identity()
        };
        assert_eq!(v1("test:tester"), v1("test:tester"));
        assert_ne!(v1("test:tester"), v1("test:tester2"));
    }

    #[test]
    fn v3_takes_projects_users_and_domains() {
        let (c, owner) = parse_login(&v3(), "demo.alice", "pw").unwrap();
        assert_eq!(
            c,
            Credentials::V3Password {
                project: "demo".into(),
                project_domain: "Default".into(),
                user: "alice".into(),
                user_domain: "Default".into(),
                password: Secret::new("pw")
            }
        );
        assert_eq!(owner, "alice");
        let (c, _) = parse_login(&v3(), "proj2@example-org.carol@example-org", "pw").unwrap();
        assert_eq!(
            c,
            Credentials::V3Password {
                project: "proj2".into(),
                project_domain: "example-org".into(),
                user: "carol".into(),
                user_domain: "example-org".into(),
                password: Secret::new("pw")
            }
        );
        // Domains with dots need another tenant separator.
        let scheme = LoginScheme::KeystoneV3 {
            tenant_sep: "/".into(),
            domain_sep: "@".into(),
        };
        let (c, _) = parse_login(&scheme, "proj2@example.org/carol@example.org", "pw").unwrap();
        assert!(
            matches!(c, Credentials::V3Password { ref project_domain, .. } if project_domain == "example.org")
        );
        assert_eq!(
            parse_login(&v3(), "alice", "pw").unwrap_err(),
            LoginError::NoTenant { sep: ".".into() }
        );
        assert_eq!(
            parse_login(&v3(), "demo@.alice", "pw").unwrap_err(),
            LoginError::Empty("project domain")
        );
    }

    #[test]
    fn application_credentials_cannot_be_mistaken_for_users() {
        let (c, owner) = parse_login(&v3(), ".appcred.0123abcd", "s3cret").unwrap();
        assert_eq!(
            c,
            Credentials::V3ApplicationCredential {
                id: "0123abcd".into(),
                secret: Secret::new("s3cret")
            }
        );
        assert_eq!(owner, "appcred");
        // A user login always has a project before the separator, so it never starts with one.
        let (c, _) = parse_login(&v3(), "appcred.0123abcd", "pw").unwrap();
        assert!(
            matches!(c, Credentials::V3Password { ref project, ref user, .. } if project == "appcred" && user == "0123abcd")
        );
        assert_eq!(
            parse_login(&v3(), ".appcred.", "pw").unwrap_err(),
            LoginError::Empty("application credential id")
        );
        assert_eq!(
            parse_login(&v3(), ".alice", "pw").unwrap_err(),
            LoginError::Empty("project")
        );
    }
}
