//! Parses lines.toml into the desired resource graph, with diagnostics that point into the file.
