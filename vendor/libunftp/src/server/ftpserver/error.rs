//! Contains the error type used by `Server`

use crate::BoxError;

use std::net::AddrParseError;
use thiserror::Error;

/// Error returned by the [`Server.listen`](crate::Server::listen()) method
#[derive(Error, Debug)]
#[error("server error: {msg}")]
pub struct ServerError {
    msg: String,
    #[source]
    source: Option<BoxError>,
}

impl ServerError {
    fn new<E: std::error::Error + Send + Sync + 'static>(msg: impl Into<String>, source: E) -> ServerError {
        ServerError {
            msg: msg.into(),
            source: Some(Box::new(source)),
        }
    }

    // swiftftp patch: the message says what failed, the source why, each once (0.24 put the source's text in the
    // message as well, so a chain printed it twice: "found no private key: found no private key").
    pub(super) fn configuration(msg: impl Into<String>) -> ServerError {
        ServerError { msg: msg.into(), source: None }
    }
}

impl From<AddrParseError> for ServerError {
    fn from(e: AddrParseError) -> Self {
        ServerError::new("could not parse address", e)
    }
}

impl From<std::io::Error> for ServerError {
    fn from(e: std::io::Error) -> Self {
        ServerError::new("io error", e)
    }
}

impl From<super::tls::ConfigError> for ServerError {
    fn from(e: super::tls::ConfigError) -> Self {
        ServerError::new("error with TLS configuration", e)
    }
}

#[derive(Error, Debug)]
#[error("shutdown error: {msg}")]
pub struct ShutdownError {
    pub msg: String,
}

impl From<ShutdownError> for ServerError {
    fn from(e: ShutdownError) -> Self {
        ServerError::new("shutdown error", e)
    }
}

#[derive(Error, Debug)]
#[error("listener error: {msg}")]
pub struct ListenerError {
    pub msg: String,
}

impl From<ListenerError> for ServerError {
    fn from(e: ListenerError) -> Self {
        ServerError::new("listener error", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each text of an error's chain, outermost first.
    fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
        let mut texts = vec![e.to_string()];
        let mut at = e.source();
        while let Some(e) = at {
            texts.push(e.to_string());
            at = e.source();
        }
        texts
    }

    /// swiftftp patch: no text of the chain repeats in the one before it.
    #[test]
    fn an_error_chain_says_each_thing_once() {
        let errors = [
            ServerError::from(crate::server::tls::ConfigError::NoPrivateKey),
            ServerError::from(crate::server::tls::ConfigError::Load(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "No such file",
            ))),
            ServerError::configuration("passive ports out of range"),
        ];
        for e in &errors {
            let texts = chain(e);
            for pair in texts.windows(2) {
                assert!(!pair[0].contains(&pair[1]), "{texts:?}");
            }
        }
    }
}
