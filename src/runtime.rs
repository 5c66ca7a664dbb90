//! The Tokio runtime a command runs on, built in one place for the binary
//! and for the Python package.

use tokio::runtime::{Builder, Runtime};

/// The CPUs this process may use (2 when that cannot be told): a server's
/// or a load generator's worker threads, one per core.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// A runtime with `workers` threads (at least one), or with `None` a
/// runtime on the calling thread alone: a pipe or a dialogue has one
/// connection, and more threads would only hand its wake-ups around.
///
/// # Errors
/// The system refused a thread or the reactor's descriptors.
pub fn build(workers: Option<usize>) -> std::io::Result<Runtime> {
    let mut builder = match workers {
        Some(threads) => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(threads.max(1));
            b
        }
        None => Builder::new_current_thread(),
    };
    builder.enable_all().build()
}
