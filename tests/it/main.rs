//! The integration tests: the real binary, real sockets on loopback, real
//! peers. One test binary (ripgrep's layout) so the crate links once.

mod util;

mod abuse;
mod bad_input;
mod bench;
mod broker;
mod compat;
mod connect;
mod demo;
mod exec;
mod interop;
mod listen;
mod nc;
mod ping;
mod proxy;
mod relay;
mod resolve;
mod scan;
mod script;
mod seeds;
mod serve;
mod sniff;
mod tls;
