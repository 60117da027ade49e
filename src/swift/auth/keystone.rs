//! Keystone (v2.0 and v3): the v3 request body, and the service catalog the answers carry, read for Swift's
//! endpoint by service type, region and interface.
//!
//! Not here: sending the request (`mod.rs`) or splitting FTP login names (`ftp/login.rs`).

use super::{Credentials, Secret, Token};
use crate::swift::error::{Error, Op};
use chrono::DateTime;
use reqwest::Url;
use serde::Deserialize;
use serde_json::json;
use std::fmt;
use std::time::SystemTime;

/// Which catalog interface to take Swift's URL from (`--keystone-endpoint-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `publicURL` / `public`.
    Public,
    /// `internalURL` / `internal`.
    Internal,
    /// `adminURL` / `admin`.
    Admin,
}

impl Interface {
    fn v3_name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Admin => "admin",
        }
    }
}

/// How Swift's endpoint is picked from a Keystone catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogFilter {
    /// Service type, e.g. `object-store`.
    pub service_type: String,
    /// Region; any region when `None`.
    pub region: Option<String>,
    /// Interface.
    pub interface: Interface,
}

impl fmt::Display for CatalogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service type {:?}, {} interface, region {}",
            self.service_type,
            self.interface.v3_name(),
            self.region
                .as_deref()
                .map_or_else(|| "any".to_owned(), |r| format!("{r:?}"))
        )
    }
}

pub(super) fn v3_body(creds: &Credentials) -> serde_json::Value {
    match creds {
        Credentials::V3ApplicationCredential { id, secret } => json!({"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret.expose()}}}}),
        Credentials::V3Password {
            project,
            project_domain,
            user,
            user_domain,
            password,
        } => json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": user_domain}, "password": password.expose()}}},
            "scope": {"project": {"name": project, "domain": {"name": project_domain}}}}}),
        Credentials::V1 { .. } | Credentials::V2 { .. } => json!({}),
    }
}

fn parse_time(s: &str) -> Option<SystemTime> {
    // Keystone writes `2026-11-29T03:00:00Z` (v2) or `2026-11-29T03:00:00.000000Z` (v3).
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(SystemTime::from)
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| SystemTime::from(t.and_utc()))
        })
}

fn no_endpoint(catalog: &CatalogFilter) -> Error {
    Error::protocol(
        Op::Authenticate,
        format!("the Keystone catalog has no endpoint for {catalog}"),
    )
}

fn storage_url(url: &str) -> Result<Url, Error> {
    Url::parse(url)
        .map_err(|_| Error::protocol(Op::Authenticate, "the catalog's Swift URL is not a URL"))
}

pub(super) fn parse_v2(body: &[u8], catalog: &CatalogFilter) -> Result<Token, Error> {
    #[derive(Deserialize)]
    struct Resp {
        access: Access,
    }
    #[derive(Deserialize)]
    struct Access {
        token: TokenV2,
        #[serde(rename = "serviceCatalog", default)]
        service_catalog: Vec<ServiceV2>,
    }
    #[derive(Deserialize)]
    struct TokenV2 {
        id: String,
        expires: Option<String>,
    }
    #[derive(Deserialize)]
    struct ServiceV2 {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        endpoints: Vec<EndpointV2>,
    }
    #[derive(Deserialize)]
    struct EndpointV2 {
        region: Option<String>,
        #[serde(rename = "publicURL")]
        public: Option<String>,
        #[serde(rename = "internalURL")]
        internal: Option<String>,
        #[serde(rename = "adminURL")]
        admin: Option<String>,
    }
    let resp: Resp = serde_json::from_slice(body)
        .map_err(|e| Error::protocol(Op::Authenticate, format!("bad Keystone v2.0 answer: {e}")))?;
    let url = resp
        .access
        .service_catalog
        .iter()
        .filter(|s| s.kind == catalog.service_type)
        .flat_map(|s| &s.endpoints)
        .filter(|e| catalog.region.is_none() || e.region == catalog.region)
        .find_map(|e| match catalog.interface {
            Interface::Public => e.public.clone(),
            Interface::Internal => e.internal.clone(),
            Interface::Admin => e.admin.clone(),
        })
        .ok_or_else(|| no_endpoint(catalog))?;
    Ok(Token {
        storage_url: storage_url(&url)?,
        token: Secret::new(resp.access.token.id),
        expires_at: resp.access.token.expires.as_deref().and_then(parse_time),
        issued_at: SystemTime::now(),
    })
}

pub(super) fn parse_v3(
    body: &[u8],
    token: String,
    catalog: &CatalogFilter,
) -> Result<Token, Error> {
    #[derive(Deserialize)]
    struct Resp {
        token: TokenV3,
    }
    #[derive(Deserialize)]
    struct TokenV3 {
        expires_at: Option<String>,
        #[serde(default)]
        catalog: Vec<ServiceV3>,
    }
    #[derive(Deserialize)]
    struct ServiceV3 {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        endpoints: Vec<EndpointV3>,
    }
    #[derive(Deserialize)]
    struct EndpointV3 {
        interface: String,
        region: Option<String>,
        region_id: Option<String>,
        url: String,
    }
    let resp: Resp = serde_json::from_slice(body)
        .map_err(|e| Error::protocol(Op::Authenticate, format!("bad Keystone v3 answer: {e}")))?;
    let url = resp
        .token
        .catalog
        .iter()
        .filter(|s| s.kind == catalog.service_type)
        .flat_map(|s| &s.endpoints)
        .filter(|e| e.interface == catalog.interface.v3_name())
        .find(|e| match &catalog.region {
            None => true,
            Some(r) => e.region.as_ref() == Some(r) || e.region_id.as_ref() == Some(r),
        })
        .map(|e| e.url.clone())
        .ok_or_else(|| no_endpoint(catalog))?;
    Ok(Token {
        storage_url: storage_url(&url)?,
        token: Secret::new(token),
        expires_at: resp.token.expires_at.as_deref().and_then(parse_time),
        issued_at: SystemTime::now(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn filter(region: Option<&str>, interface: Interface) -> CatalogFilter {
        CatalogFilter {
            service_type: "object-store".into(),
            region: region.map(str::to_owned),
            interface,
        }
    }

    #[test]
    fn v2_catalog_picks_type_region_and_interface() {
        let body = br#"{"access": {"token": {"id": "tok", "expires": "2026-11-29T03:00:00Z"},
            "serviceCatalog": [
              {"type": "compute", "endpoints": [{"region": "R1", "publicURL": "http://nova"}]},
              {"type": "object-store", "endpoints": [
                {"region": "R1", "publicURL": "http://r1-pub/v1/AUTH_t", "internalURL": "http://r1-int/v1/AUTH_t"},
                {"region": "R2", "publicURL": "http://r2-pub/v1/AUTH_t", "adminURL": "http://r2-adm/v1/AUTH_t"}]}]}}"#;
        let t = parse_v2(body, &filter(None, Interface::Public)).unwrap();
        assert_eq!(t.storage_url.as_str(), "http://r1-pub/v1/AUTH_t");
        assert_eq!(t.token.expose(), "tok");
        assert_eq!(
            t.expires_at.unwrap().duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_secs(1_795_921_200)
        );
        let t = parse_v2(body, &filter(Some("R2"), Interface::Admin)).unwrap();
        assert_eq!(t.storage_url.as_str(), "http://r2-adm/v1/AUTH_t");
        let t = parse_v2(body, &filter(Some("R1"), Interface::Internal)).unwrap();
        assert_eq!(t.storage_url.as_str(), "http://r1-int/v1/AUTH_t");
        let err = parse_v2(body, &filter(Some("R3"), Interface::Public)).unwrap_err();
        assert!(err.to_string().contains("region \"R3\""), "{err}");
        assert!(parse_v2(body, &filter(Some("R2"), Interface::Internal)).is_err());
    }

    #[test]
    fn v3_catalog_picks_type_region_and_interface() {
        let body = br#"{"token": {"expires_at": "2026-11-29T03:00:00.000000Z", "catalog": [
            {"type": "object-store", "endpoints": [
              {"interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": "http://int/v1/KEY_p"},
              {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "http://pub/v1/KEY_p"}]}]}}"#;
        let t = parse_v3(
            body,
            "tok".into(),
            &filter(Some("RegionOne"), Interface::Public),
        )
        .unwrap();
        assert_eq!(t.storage_url.as_str(), "http://pub/v1/KEY_p");
        assert!(t.expires_at.is_some());
        let t = parse_v3(body, "tok".into(), &filter(None, Interface::Internal)).unwrap();
        assert_eq!(t.storage_url.as_str(), "http://int/v1/KEY_p");
        assert!(
            parse_v3(
                body,
                "tok".into(),
                &filter(Some("RegionTwo"), Interface::Public)
            )
            .is_err()
        );
        assert!(parse_v3(body, "tok".into(), &filter(None, Interface::Admin)).is_err());
    }
}
