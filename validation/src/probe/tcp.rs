//! TCP probe: a connection to the address is accepted.

use crate::ValidationError;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TcpProbe {
    /// `host:port`.
    pub address: String,
    pub connect_timeout: Duration,
}

impl TcpProbe {
    pub async fn check(&self) -> Result<String, ValidationError> {
        // Resolved apart from connecting: only a malformed address is the plan's error. A
        // connect can fail with EINVAL too (a blackhole route), and that is the probe failing.
        let addresses: Vec<std::net::SocketAddr> = match tokio::net::lookup_host(&self.address).await {
            Ok(found) => found.collect(),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                return Err(ValidationError::Invalid(format!(
                    "invalid address `{}`: {e}; use host:port",
                    self.address
                )));
            }
            Err(e) => return Err(ValidationError::NotPassing(format!("resolving {}: {e}", self.address))),
        };
        match tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(&addresses[..])).await {
            Ok(Ok(stream)) => Ok(format!(
                "connected to {}",
                stream.peer_addr().map_or(self.address.clone(), |a| a.to_string())
            )),
            Ok(Err(e)) => Err(ValidationError::NotPassing(format!("connecting to {}: {e}", self.address))),
            Err(_) => Err(ValidationError::NotPassing(format!(
                "connecting to {} timed out after {:?}",
                self.address, self.connect_timeout
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(address: &str) -> TcpProbe {
        TcpProbe {
            address: address.into(),
            connect_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn a_malformed_address_is_the_plans_error_and_a_refused_connection_is_a_failing_check() {
        assert!(matches!(probe("127.0.0.1").check().await, Err(ValidationError::Invalid(_))));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(matches!(
            probe(&closed.to_string()).check().await,
            Err(ValidationError::NotPassing(_))
        ));
    }
}
