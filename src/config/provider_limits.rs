//! LiveKit and Twilio value rules that the servers enforce (or silently apply) and lines.toml
//! must respect before anything is sent.
//!
//! - `allowed_addresses` masks, as livekit/protocol `sip/sip.go` reads them (`isValidMask`,
//!   `matchAddrMask`): an entry holding any of `()+*;,` or whitespace, or `://`, is dropped
//!   by the server, and a trunk whose entries are all dropped accepts calls from anywhere; an
//!   entry with `/` that is not an IP prefix matches no source IP (and no SIP host, which has
//!   no `/`). Both are errors at the entry. Anything else is an IP, or a host compared with
//!   the INVITE's From host.
//! - (Two inbound trunks on one number are a runbook rule: [`crate::checks::trunk`].)
//! - Twilio origination URLs: `Weight` 1–65535 and `Priority` 0–65535 (twilio-oai
//!   `twilio_trunking_v1.json`, `CreateOriginationUrlRequest`). `u16` already bounds both
//!   from above and refuses negatives, so only `weight = 0` is left to refuse here.

use std::net::IpAddr;

use super::error::{Problem, ProblemKind};
use super::expand::Expanded;
use crate::model::Spec;

/// Runs every rule of this module, appending errors.
pub fn run(x: &Expanded, problems: &mut Vec<Problem>) {
    allowed_addresses(x, problems);
    origination_weights(x, problems);
}

/// Why LiveKit would not use an `allowed_addresses` entry, or `None` when it would.
pub fn mask_problem(mask: &str) -> Option<&'static str> {
    if mask.contains(['(', ')', '+', '*', ';', ',', ' ', '\t', '\n', '\r']) {
        return Some("LiveKit drops an entry holding ( ) + * ; , or whitespace");
    }
    if mask.contains("://") {
        return Some("LiveKit drops an entry holding ://; give the IP, CIDR or host alone");
    }
    if let Some((ip, bits)) = mask.split_once('/') {
        let max = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => 32,
            Ok(IpAddr::V6(_)) => 128,
            Err(_) => {
                return Some("the part before / is not an IP address, so it matches no caller")
            }
        };
        let valid_bits = !bits.is_empty()
            && bits.bytes().all(|b| b.is_ascii_digit())
            && (bits.len() == 1 || !bits.starts_with('0'))
            && bits.parse::<u32>().is_ok_and(|b| b <= max);
        if !valid_bits {
            return Some(
                "the prefix length is not 0-32 (IPv4) or 0-128 (IPv6), so it matches no caller",
            );
        }
    }
    None
}

fn allowed_addresses(x: &Expanded, problems: &mut Vec<Problem>) {
    for res in x.desired.resources.values() {
        let Spec::LivekitInboundTrunk(s) = &res.spec else {
            continue;
        };
        for mask in &s.allowed_addresses {
            let Some(why) = mask_problem(mask) else {
                continue;
            };
            let span = x
                .spans
                .get(&res.addr, &format!("allowed_addresses[{mask}]"))
                .or_else(|| x.spans.get(&res.addr, "allowed_addresses"))
                .unwrap_or(res.span);
            let unusable = s
                .allowed_addresses
                .iter()
                .all(|m| mask_problem(m).is_some());
            let consequence = if unusable {
                "; with no usable entry left, the trunk accepts calls from any address"
            } else {
                ""
            };
            problems.push(
                Problem::error(
                    ProblemKind::InvalidValue,
                    span,
                    why,
                    format!("`{mask}` in {} is not an address LiveKit can use{consequence}", res.addr),
                )
                .with_help("write an IP (203.0.113.5), a CIDR (192.76.120.0/24) or a host name (sip.telnyx.com)"),
            );
        }
    }
}

fn origination_weights(x: &Expanded, problems: &mut Vec<Problem>) {
    for res in x.desired.resources.values() {
        let Spec::TwilioTrunk(t) = &res.spec else {
            continue;
        };
        for (i, u) in t.origination_urls.iter().enumerate() {
            if u.weight >= 1 {
                continue;
            }
            let span = x
                .spans
                .get(
                    &res.addr,
                    &format!("origination_urls[{}].weight", u.sip_url),
                )
                .or_else(|| x.spans.get(&res.addr, &format!("origination_urls.{i}")))
                .unwrap_or(res.span);
            problems.push(
                Problem::error(
                    ProblemKind::InvalidValue,
                    span,
                    "Twilio takes 1-65535",
                    format!("origination URL `{}` of {} has weight 0", u.sip_url, res.addr),
                )
                .with_help("weight is the share of calls within one priority; use 1 or more (Twilio's default is 10)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_read_as_the_server_reads_them() {
        for ok in [
            "203.0.113.5",
            "192.76.120.0/24",
            "0.0.0.0/0",
            "2001:db8::/32",
            "::1",
            "sip.telnyx.com",
        ] {
            assert_eq!(mask_problem(ok), None, "{ok}");
        }
        for bad in [
            "192.76.120.0/24, 10.0.0.0/8",
            "sip://sip.telnyx.com",
            "10.0.0.*",
            "10.0.0.0 /8",
            "+14144007103",
            "10.0.0.0/33",
            "10.0.0.0/x",
            "host.example/24",
            "::/129",
            "10.0.0.0/",
        ] {
            assert!(mask_problem(bad).is_some(), "{bad}");
        }
    }
}
