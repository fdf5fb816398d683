//! What every service shares at its edges: configuration, JSON logs, the clock, the HTTP
//! server loop ([`http::serve`]) and its `/metrics`, `/healthz` and `/readyz`, supervised background tasks, and shutdown on
//! SIGTERM or Ctrl-C. One way to do each, so services differ only in their work.

#![warn(missing_docs)]

mod clock;
mod config;
pub mod http;
mod logging;
mod operations;
mod settings;
mod shutdown;
mod tasks;

pub use clock::{clock, Clock, GuardedClock, JumpGuard, ManualClock, RunningClock, SystemClock};
pub use config::{load_config, load_file, ConfigFile, ServiceCommand};
pub use logging::init_logging;
pub use operations::{
    database_failure, operations_router, serve_operations, serve_operations_on, DatabaseAndBroker,
    Readiness, Writes,
};
pub use secrecy::{ExposeSecret, SecretString};
pub use settings::{
    Checked, ClockSettings, Connections, DatabaseSettings, HashSecret, MigrateSettings,
};
pub use shutdown::shutdown_signal;
pub use tasks::{periodically, repeatedly, Supervisor};
