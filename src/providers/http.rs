//! http client.
