//! The numbers Telnyx has for sale, per area code: deterministic, never in exchange 555,
//! with some friendly endings (0000, 5000, 4000, 2500, …) among ordinary ones. Inventory
//! exchanges are 600–999 (minus the runbook's own), so they never meet synthetic lines.

use super::world::hex_digest;

/// Endings that make a number easy to say, placed in the first exchange of each area code.
const FRIENDLY_LINES: [&str; 8] = [
    "0000", "5000", "4000", "2500", "3400", "1200", "7100", "6000",
];
/// More round endings in the second exchange.
const ROUND_LINES: [&str; 4] = ["1000", "8500", "6400", "9200"];
/// Ordinary endings per exchange.
const ORDINARY_PER_EXCHANGE: usize = 8;
/// Exchanges the runbook world already uses in the 600–999 range.
const RESERVED_EXCHANGES: [u32; 5] = [603, 615, 728, 825, 883];
/// Area codes searched when a search names none.
pub const DEFAULT_AREA_CODES: [&str; 4] = ["312", "415", "512", "720"];
/// The same for `filter[country_code]=CA`.
pub const DEFAULT_CANADIAN_AREA_CODES: [&str; 4] = ["416", "514", "604", "226"];

/// Canadian area codes, for `country_iso_alpha2` and region information.
const CANADIAN_AREA_CODES: [&str; 24] = [
    "204", "226", "236", "249", "250", "289", "306", "343", "365", "403", "416", "418", "431",
    "437", "438", "450", "506", "514", "519", "548", "581", "587", "604", "613",
];

/// Whether `npa` can be a NANP area code (three digits, first one 2–9).
pub fn is_area_code(npa: &str) -> bool {
    npa.len() == 3 && npa.bytes().all(|b| b.is_ascii_digit()) && !npa.starts_with(['0', '1'])
}

/// ISO country of a NANP area code (US unless it is a Canadian one).
pub fn country_of(npa: &str) -> &'static str {
    if CANADIAN_AREA_CODES.contains(&npa) {
        "CA"
    } else {
        "US"
    }
}

/// Whether the area code is toll-free.
pub fn is_toll_free(npa: &str) -> bool {
    matches!(npa, "800" | "833" | "844" | "855" | "866" | "877" | "888")
}

/// Whether any number is for sale in `npa`: an area code the NANP has assigned or could
/// assign to a place, or a toll-free one. None in N11 (service codes such as 911), N9X, 37X and
/// 96X (held back for expansion), 555, or the other N00 codes (500, 600, 700, 900: personal,
/// Canadian and premium services no local search sells). The NANPA's rules, kept apart from
/// cwa's own validate so the two can disagree and a test find it.
pub fn sells_in(npa: &str) -> bool {
    let b = npa.as_bytes();
    is_area_code(npa)
        && !(b[1] == b'1' && b[2] == b'1')
        && b[1] != b'9'
        && !npa.starts_with("37")
        && !npa.starts_with("96")
        && npa != "555"
        && !(b[1] == b'0' && b[2] == b'0' && !is_toll_free(npa))
}

/// Every number for sale in `npa`, before removing those already sold, in a fixed order.
pub fn numbers_in(npa: &str) -> Vec<String> {
    if !sells_in(npa) {
        return Vec::new();
    }
    let [first, second] = exchanges(npa);
    let mut out: Vec<String> = Vec::new();
    let mut push = |exchange: u32, line: &str| {
        let number = format!("+1{npa}{exchange:03}{line}");
        if !out.contains(&number) {
            out.push(number);
        }
    };
    for (i, line) in FRIENDLY_LINES.iter().enumerate() {
        push(first, line);
        push(first, &ordinary_line(npa, first, i));
    }
    for (i, line) in ROUND_LINES.iter().enumerate() {
        push(second, line);
        push(second, &ordinary_line(npa, second, i));
    }
    for i in ROUND_LINES.len()..ORDINARY_PER_EXCHANGE {
        push(second, &ordinary_line(npa, second, i));
    }
    out
}

fn exchanges(npa: &str) -> [u32; 2] {
    let seed = u32::from_str_radix(&hex_digest(&format!("inventory:{npa}"), 6), 16).unwrap_or(0);
    let pick = |offset: u32| {
        let mut exchange = 600 + (seed.wrapping_add(offset)) % 400;
        while RESERVED_EXCHANGES.contains(&exchange) {
            exchange = 600 + (exchange - 600 + 1) % 400;
        }
        exchange
    };
    let first = pick(0);
    let mut second = pick(173);
    if second == first {
        second = 600 + (first - 600 + 1) % 400;
        while RESERVED_EXCHANGES.contains(&second) {
            second = 600 + (second - 600 + 1) % 400;
        }
    }
    [first, second]
}

fn ordinary_line(npa: &str, exchange: u32, i: usize) -> String {
    let hex = hex_digest(&format!("inventory:{npa}:{exchange}:{i}"), 8);
    let value = u32::from_str_radix(&hex, 16).unwrap_or(0) % 10_000;
    format!("{value:04}")
}

/// Rate center and state of well-known area codes (`None` when unknown).
pub fn region_of(npa: &str) -> Option<(&'static str, &'static str)> {
    Some(match npa {
        "212" | "646" => ("NEW YORK CITY", "NY"),
        "213" => ("LOS ANGELES", "CA"),
        "226" => ("LONDON", "ON"),
        "305" => ("MIAMI", "FL"),
        "312" | "773" => ("CHICAGO", "IL"),
        "404" => ("ATLANTA", "GA"),
        "414" => ("MILWAUKEE", "WI"),
        "415" => ("SAN FRANCISCO", "CA"),
        "469" | "972" | "214" => ("DALLAS", "TX"),
        "503" => ("PORTLAND", "OR"),
        "512" => ("AUSTIN", "TX"),
        "602" => ("PHOENIX", "AZ"),
        "617" => ("BOSTON", "MA"),
        "704" => ("CHARLOTTE", "NC"),
        "713" => ("HOUSTON", "TX"),
        "720" => ("DENVER", "CO"),
        "747" => ("BURBANK", "CA"),
        "813" => ("TAMPA", "FL"),
        "858" => ("SAN DIEGO", "CA"),
        "916" => ("SACRAMENTO", "CA"),
        "416" | "647" => ("TORONTO", "ON"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_is_deterministic_and_never_fiction() {
        for npa in ["312", "414", "469", "720", "226"] {
            let numbers = numbers_in(npa);
            assert_eq!(numbers, numbers_in(npa));
            assert!(numbers.len() >= 20, "{npa}: {}", numbers.len());
            for n in &numbers {
                assert!(n.starts_with(&format!("+1{npa}")));
                assert_ne!(&n[5..8], "555");
                let exchange: u32 = n[5..8].parse().unwrap();
                assert!(exchange >= 600 && !RESERVED_EXCHANGES.contains(&exchange));
            }
            assert!(numbers.iter().any(|n| n.ends_with("0000")));
            assert!(numbers.iter().any(|n| n.ends_with("5000")));
        }
        assert!(numbers_in("055").is_empty());
    }

    #[test]
    fn nothing_is_sold_where_no_place_has_numbers() {
        for npa in [
            "911", "411", "299", "390", "370", "379", "960", "555", "500", "900",
        ] {
            assert!(numbers_in(npa).is_empty(), "{npa}");
        }
        for npa in ["212", "800", "888", "416", "469"] {
            assert!(!numbers_in(npa).is_empty(), "{npa}");
        }
    }
}
