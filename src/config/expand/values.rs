//! Single values: spans, required keys, secret variable names, E.164 numbers, number specs
//! and the closed sets of words a key accepts.

use super::*;

impl Expander<'_> {
    pub(super) fn mark<T>(&mut self, addr: &Address, key: &str, field: &Opt<T>) {
        if let Some(f) = field {
            self.spans.insert(addr, key, span_of(f));
        }
    }

    pub(super) fn missing(&mut self, addr: &Address, span: SourceSpan, key: &str) {
        self.push(
            Problem::error(
                ProblemKind::MissingField,
                span,
                format!("needs `{key}`"),
                format!("`{addr}` has no `{key}`"),
            )
            .with_help(format!(
                "add `{key} = …` to [{}.{}]",
                section_of(addr.kind),
                addr.name
            )),
        );
    }

    /// The field's value, else the convention's, else a missing-field problem.
    pub(super) fn required(
        &mut self,
        field: &Opt<String>,
        base: Option<String>,
        addr: &Address,
        span: SourceSpan,
        key: &str,
    ) -> Option<String> {
        let v = text(field).or(base);
        if v.is_none() {
            self.missing(addr, span, key);
        }
        v
    }

    pub(super) fn secret_env(&mut self, field: &Opt<String>) -> Option<SecretRef> {
        let f = field.as_ref()?;
        if let Err(refusal) = crate::config::secrets::check_env_name(f.get_ref()) {
            self.push(env_name_problem(span_of(f), f.get_ref(), refusal));
            return None;
        }
        Some(SecretRef::Env(f.get_ref().clone()))
    }

    /// A strict E.164 number that is not a 555 fiction number.
    pub(super) fn e164(&mut self, value: &Spanned<String>) -> Option<E164> {
        let span = span_of(value);
        match E164::parse(value.get_ref()) {
            Err(e) => {
                self.push(
                    Problem::error(ProblemKind::E164, span, "not E.164", e.to_string()).with_help(
                        "write numbers in E.164 with the leading +, e.g. \"+14144007103\"",
                    ),
                );
                None
            }
            Ok(n) if n.is_fiction() => {
                self.push(
                    Problem::error(
                        ProblemKind::FictionNumber,
                        span,
                        "555 fiction number",
                        format!("{n} is a 555 number reserved for fiction; it can never ring"),
                    )
                    .with_help("numbers matching ^\\+1\\d{3}555\\d{4}$ are placeholders; use the real number of this line"),
                );
                None
            }
            Ok(n) => Some(n),
        }
    }

    pub(super) fn number_spec(
        &mut self,
        line: &RawLine,
        endings: Option<Vec<String>>,
        addr: &Address,
        span: SourceSpan,
    ) -> Option<NumberSpec> {
        let Some(number) = &line.number else {
            self.push(
                Problem::error(
                    ProblemKind::MissingField,
                    span,
                    "needs `number`",
                    format!("`{}` has no `number`", addr.name),
                )
                .with_help("add number = \"+1…\" (or number = \"auto\" with area_code = \"…\")"),
            );
            return None;
        };
        self.spans.insert(addr, "number", span_of(number));
        if number.get_ref() != "auto" {
            if let Some(a) = &line.area_code {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(a),
                        "only for \"auto\"",
                        "area_code applies only to number = \"auto\"",
                    )
                    .with_help(
                        "remove area_code, or write number = \"auto\" to have cwa buy a number",
                    ),
                );
            }
            return self.e164(number).map(|number| NumberSpec::Fixed { number });
        }
        let Some(area) = &line.area_code else {
            self.push(
                Problem::error(
                    ProblemKind::MissingField,
                    span_of(number),
                    "auto needs an area code",
                    "number = \"auto\" has no area_code",
                )
                .with_help("add area_code = \"414\" (the area code to buy in)"),
            );
            return None;
        };
        if area.get_ref().len() != 3 || !area.get_ref().bytes().all(|b| b.is_ascii_digit()) {
            self.push(
                Problem::error(
                    ProblemKind::InvalidValue,
                    span_of(area),
                    "three digits",
                    format!("area code `{}` is not three digits", area.get_ref()),
                )
                .with_help("e.g. area_code = \"414\""),
            );
            return None;
        }
        Some(NumberSpec::Auto {
            country: text(&line.country)
                .map(|c| c.to_ascii_uppercase())
                .unwrap_or_else(|| self.defaults.country.clone()),
            area_code: area.get_ref().clone(),
            endings: endings.unwrap_or_else(|| self.defaults.endings.clone()),
        })
    }

    /// A key that takes one word of `set`, compared in lower case: its value, or the set's
    /// default when it is absent. Any other word is a problem at the value naming the set.
    pub(super) fn word(&mut self, field: &Opt<String>, set: &Words) -> String {
        let Words {
            key,
            default,
            allowed,
            help,
        } = *set;
        let Some(f) = field else {
            return default.to_string();
        };
        let value = f.get_ref().to_ascii_lowercase();
        if !allowed.contains(&value.as_str()) {
            let words = match allowed.split_last() {
                Some((last, [])) => last.to_string(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            self.push(
                Problem::error(
                    ProblemKind::InvalidValue,
                    span_of(f),
                    words.clone(),
                    format!("{key} `{}` is not {words}", f.get_ref()),
                )
                .with_help(help),
            );
        }
        value
    }
}

/// A key that takes one word of a closed set, with its default and the help shown for any
/// other word.
pub(super) struct Words {
    pub key: &'static str,
    pub default: &'static str,
    pub allowed: &'static [&'static str],
    pub help: &'static str,
}

/// `[livekit.outbound_trunk] transport`.
pub(super) const TRANSPORT: Words = Words {
    key: "transport",
    default: "tcp",
    allowed: &["auto", "udp", "tcp", "tls"],
    help: "transport = \"tcp\" (the default) for Telnyx",
};

/// `[telnyx.texml_application] voice_method`.
pub(super) const VOICE_METHOD: Words = Words {
    key: "voice_method",
    default: "post",
    allowed: &["get", "post"],
    help: "voice_method = \"post\" (the default) or \"get\"",
};

/// `[telnyx.fqdn] dns_record_type`.
pub(super) const DNS_RECORD_TYPE: Words = Words {
    key: "dns_record_type",
    default: "a",
    allowed: &["a", "srv"],
    help: "dns_record_type = \"a\" (the default) or \"srv\"",
};

/// The diagnostic for a `*_env` value that may not be read: a value where a name belongs is
/// masked in the snippet (it may be a secret); a refused name is shown.
fn env_name_problem(
    span: SourceSpan,
    name: &str,
    refusal: crate::config::secrets::EnvNameRefusal,
) -> Problem {
    use crate::config::secrets::EnvNameRefusal;
    let p = Problem::error(
        ProblemKind::SecretEnvName,
        span,
        match refusal {
            EnvNameRefusal::NotUpperSnake => "not an environment variable name",
            _ => "this variable may not be read as a secret",
        },
        refusal.reason(name),
    );
    match refusal {
        EnvNameRefusal::NotUpperSnake => p
            .with_help("e.g. password_env = \"TELNYX_FQDN_PASSWORD\"; if a secret was written here, remove it and rotate it")
            .masking(span),
        _ => p.with_help("give the SIP password a variable of its own, e.g. password_env = \"TELNYX_FQDN_PASSWORD\" (docs/lines-toml.md lists the refused names)"),
    }
}
