//! Go modules: the GOPROXY protocol and the Go checksum database
//! (sum.golang.org's dialect of a transparency log).
//!
//! So far the pure pieces: module paths and versions with their case
//! encoding and GOPROXY request paths ([`module`]), the `h1:` hash of module
//! zips and go.mod files ([`dirhash`]), and the checksum database's wire
//! formats ([`sumdb`]). The GOPROXY front and the verifier build on these.

pub mod dirhash;
pub mod front;
pub mod module;
pub mod sumdb;
pub mod verifier;
pub mod zipread;
