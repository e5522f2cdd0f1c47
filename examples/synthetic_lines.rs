//! Prints the lines.toml of a `synthetic:N` sandbox world:
//! `cargo run --example synthetic_lines -- 1000 > lines.toml`, then
//! `cwa sandbox reset --world synthetic:1000` and `cwa --sandbox plan`.

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    print!("{}", cwa::synthetic::lines_toml(n));
}
