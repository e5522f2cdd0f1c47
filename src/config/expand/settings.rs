//! The file-wide sections: `version`, `[policy]`, `[defaults]`, `[livekit]` and
//! `[protected]`.

use super::*;

impl Expander<'_> {
    /// `first_char` is the byte length of the file's first character, the anchor of a missing
    /// version.
    pub(super) fn check_version(&mut self, first_char: usize) {
        match &self.raw.version {
            Some(v) if *v.get_ref() == 1 => {}
            Some(v) => self.push(
                Problem::error(
                    ProblemKind::Version,
                    span_of(v),
                    "unsupported version",
                    format!("lines.toml version {} is not supported", v.get_ref()),
                )
                .with_help("this cwa reads `version = 1`"),
            ),
            None => self.push(
                Problem::error(
                    ProblemKind::Version,
                    SourceSpan::new(0, first_char),
                    "no version",
                    "lines.toml has no `version`",
                )
                .with_help("add `version = 1` as the first line"),
            ),
        }
    }

    pub(super) fn policy(&mut self) {
        let raw = &self.raw.policy;
        if let Some(t) = &raw.twilio {
            match t.get_ref().as_str() {
                "read-only" => self.policy.twilio_writes = false,
                "read-write" => self.policy.twilio_writes = true,
                _ => self.push(
                    Problem::error(
                        ProblemKind::Policy,
                        span_of(t),
                        "unknown policy",
                        format!("twilio policy `{}` is not known", t.get_ref()),
                    )
                    .with_help("use \"read-only\" (legacy numbers are verified, never written) or \"read-write\""),
                ),
            }
        }
        if let Some(a) = &raw.auto_add {
            match a.get_ref().as_str() {
                "pr" => self.policy.auto_add = crate::model::AutoAdd::Pr,
                "apply" => self.policy.auto_add = crate::model::AutoAdd::Apply,
                _ => self.push(
                    Problem::error(
                        ProblemKind::Policy,
                        span_of(a),
                        "unknown policy",
                        format!("auto_add `{}` is not known", a.get_ref()),
                    )
                    .with_help("use \"pr\" (the provisioning workflow opens a pull request, the default) or \"apply\" (it applies the new church alone)"),
                ),
            }
        }
        if let Some(r) = &raw.require_emergency_address {
            self.policy.require_emergency_address = *r.get_ref();
        }
        if let Some(share) = &raw.max_delete_share {
            let v = *share.get_ref();
            if (0.0..=1.0).contains(&v) {
                self.policy.max_delete_share = v;
            } else {
                self.push(
                    Problem::error(
                        ProblemKind::Policy,
                        span_of(share),
                        "out of range",
                        format!("max_delete_share {v} is not a share"),
                    )
                    .with_help("a share between 0.0 and 1.0, e.g. 0.25"),
                );
            }
        }
    }

    pub(super) fn defaults(&mut self) {
        let raw = &self.raw.defaults;
        let d = &mut self.defaults;
        if let Some(a) = &raw.agent {
            d.line.agent = a.get_ref().clone();
            d.agent_span = Some(span_of(a));
        }
        if let Some(p) = text(&raw.room_prefix) {
            d.line.room_prefix = p;
        }
        if let Some(k) = flag(&raw.krisp) {
            d.line.krisp = k;
        }
        if let Some(c) = text(&raw.country) {
            d.country = c.to_ascii_uppercase();
        }
        if let Some(e) = strings(&raw.friendly_endings) {
            d.endings = e;
        }
        if let Some(list) = &raw.friendly_endings {
            for e in list.get_ref() {
                if e.get_ref().is_empty() || !e.get_ref().bytes().all(|b| b.is_ascii_digit()) {
                    self.problems.push(
                        Problem::error(
                            ProblemKind::InvalidValue,
                            span_of(e),
                            "not digits",
                            format!(
                                "friendly ending `{}` is not a string of digits",
                                e.get_ref()
                            ),
                        )
                        .with_help("endings are the last digits tried in order, e.g. \"0000\""),
                    );
                }
            }
        }
    }

    pub(super) fn settings(&mut self) -> Settings {
        let raw = &self.raw.livekit;
        let project_id = text(&raw.project_id).unwrap_or_default();
        let expected_host = project_id
            .strip_prefix("p_")
            .map(|id| format!("{id}.sip.livekit.cloud"));
        if let Some(p) = &raw.project_id {
            if expected_host.is_none() {
                self.push(
                    Problem::error(
                        ProblemKind::SipHost,
                        span_of(p),
                        "not a project id",
                        format!("`{}` is not a LiveKit project id", p.get_ref()),
                    )
                    .with_help("the project id starts with `p_` (e.g. p_5u9xu5ysoly); the project name (cwa-voice-…) is not an id"),
                );
            }
        }
        let sip_host = match (&raw.sip_host, &expected_host) {
            (Some(h), Some(expected)) if h.get_ref() != expected => {
                self.push(
                    Problem::error(
                        ProblemKind::SipHost,
                        span_of(h),
                        format!("expected {expected}"),
                        format!("sip_host `{}` is not the project-id SIP host", h.get_ref()),
                    )
                    .with_help("LiveKit's SIP endpoint is <project id without p_>.sip.livekit.cloud; a project-NAME host answers \"404 No trunk found\""),
                );
                h.get_ref().clone()
            }
            (Some(h), _) => h.get_ref().clone(),
            (None, Some(expected)) => expected.clone(),
            (None, None) => String::new(),
        };
        Settings {
            livekit_project_id: project_id,
            livekit_sip_host: sip_host,
            agent_name: String::new(),
            outbound_countries: None,
        }
    }

    pub(super) fn protected(&mut self) -> Vec<ProtectedId> {
        let mut out = Vec::new();
        for (id, reason) in &self.raw.protected {
            if reason.get_ref().trim().is_empty() {
                self.push(
                    Problem::error(
                        ProblemKind::MissingField,
                        span_of(reason),
                        "empty reason",
                        format!("protected id `{}` has no reason", id.get_ref()),
                    )
                    .with_help(
                        "say why it is locked, so the next person knows before asking to unlock it",
                    ),
                );
            }
            out.push(ProtectedId {
                id: id.get_ref().clone(),
                reason: reason.get_ref().clone(),
                span: Some(span_of(id)),
            });
        }
        out
    }
}
