//! placeholder lib while modules are written
#![allow(missing_docs)]
pub mod clock;
pub mod credentials;
pub mod fault;
pub mod money;
pub mod optty;
pub mod server;
pub mod state;
pub mod wire;
pub use fault::*;
pub use state::*;
pub use server::ProviderHandle;

pub async fn start_optty() -> std::io::Result<optty::OpttyServer> {
    optty::start(0, std::time::Duration::from_secs(86400)).await
}
