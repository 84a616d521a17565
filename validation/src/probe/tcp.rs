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
        match tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(&self.address)).await {
            Ok(Ok(stream)) => Ok(format!(
                "connected to {}",
                stream.peer_addr().map_or(self.address.clone(), |a| a.to_string())
            )),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => Err(ValidationError::Invalid(format!(
                "invalid address `{}`: {e}; use host:port",
                self.address
            ))),
            Ok(Err(e)) => Err(ValidationError::NotPassing(format!("connecting to {}: {e}", self.address))),
            Err(_) => Err(ValidationError::NotPassing(format!(
                "connecting to {} timed out after {:?}",
                self.address, self.connect_timeout
            ))),
        }
    }
}
