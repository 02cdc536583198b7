//! Transfers asked by the agent (its dialect's `transfer` event) or the API
//! (`POST /v1/calls/{id}/transfer`), as plans the machine steps through (ARCHITECTURE §3):
//! - `refer`: REFER to the caller's side (RFC 3515); 202 then NOTIFY `message/sipfrag`
//!   progress; a 2xx sipfrag → BYE, `transferred`. A refused REFER, a failing sipfrag or no
//!   final NOTIFY within `refer_timeout` → the fallback.
//! - `notify` (PBX hand-back, PROTOCOLS §5): the driver POSTs the trunk's template; on a 2xx
//!   the agent stream stops and we wait for the PBX's BYE up to `await_bye`, then BYE
//!   ourselves; `transferred` either way.
//! - `bridge`: a second, outbound leg to `to` ([`super::bridge`]); the caller hears ringback
//!   (or the target's early media); on its answer the agent leaves and the two SIP legs are
//!   bridged; busy, no answer within `ring_timeout` or any failure → the agent resumes.
//!
//! Every outcome goes to the agent (a `transfer` message in its dialect), to the view (the
//! record, `GET /v1/calls/{id}`) and as [`Notice::Transfer`] (the `call.transfer` callback).
//! The caller is never dropped by a failed transfer: the fallback is `resume`, or `bridge`
//! after a failed REFER (the same target, dialled as a bridged leg).
//!
//! Must not: build SIP messages or HTTP bodies (the endpoint and the driver do), or read a
//! clock.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::leg::WsState;
use super::{Call, EndReason, Notice, Output, Phase};
use crate::core::sip::endpoint::CallCommand;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Refer,
    Bridge,
    Notify,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "refer" => Some(Mode::Refer),
            "bridge" => Some(Mode::Bridge),
            "notify" => Some(Mode::Notify),
            _ => None,
        }
    }
}

/// What a failed transfer falls back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    Bridge,
    /// The agent keeps the call (and is told the transfer failed).
    Resume,
}

impl Fallback {
    pub fn parse(s: &str) -> Option<Fallback> {
        match s {
            "bridge" => Some(Fallback::Bridge),
            "resume" => Some(Fallback::Resume),
            _ => None,
        }
    }
}

/// A transfer asked for; unset fields come from the call's [`Policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// A number (E.164) or a SIP URI.
    pub to: String,
    pub mode: Option<Mode>,
    pub fallback: Option<Fallback>,
}

/// The call's transfer settings (its trunk's `transfer = {…}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub mode: Mode,
    /// `notify`: how long the PBX has to send its BYE.
    pub await_bye: Duration,
    /// `refer`: how long the REFER has to reach a final NOTIFY.
    pub refer_timeout: Duration,
    /// `bridge`: how long the target may ring.
    pub ring_timeout: Duration,
    /// The trunk has a PBX notification URL (`notify` is possible).
    pub notify_configured: bool,
    /// The host a number becomes a SIP URI on (`sip:+…@host`).
    pub refer_host: String,
    /// Our own identity for Referred-By.
    pub referred_by: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Refer,
            await_bye: Duration::from_secs(30),
            refer_timeout: Duration::from_secs(30),
            ring_timeout: Duration::from_secs(30),
            notify_configured: false,
            refer_host: "localhost".into(),
            referred_by: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Trying,
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Trying => "trying",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
}

/// A transfer's latest state: the `call.transfer` callback's body and the view's `transfer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub mode: Mode,
    pub to: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// REFER sent (`accepted` once a 2xx came); the final NOTIFY is due by `deadline`.
    Referring { deadline: Instant, accepted: bool },
    /// The PBX notification is being POSTed.
    Notifying,
    /// Handed back: the PBX's BYE is due by `deadline`.
    AwaitingBye { deadline: Instant },
    /// The target is being dialled as a bridged leg (its own deadlines).
    Bridging,
}

#[derive(Debug)]
pub(super) struct Active {
    mode: Mode,
    to: String,
    stage: Stage,
    fallback: Fallback,
}

impl Call {
    /// A transfer asked for by the agent or the API.
    pub(super) fn start_transfer(&mut self, now: Instant, req: Request) {
        let policy = self.setup.transfer.clone();
        let mode = req.mode.unwrap_or(policy.mode);
        if self.phase != Phase::Answered || self.hung_up.is_some() || !valid_target(&req.to) {
            return self.transfer_failed(mode, &req.to, None);
        }
        let bridged = self.bridge.as_ref().is_some_and(|b| b.holds_first_leg());
        if self.transfer.is_some() || bridged {
            // One at a time: the running one goes on; this one is refused.
            return self.report_transfer(mode, &req.to, Outcome::Failed, Some(491));
        }
        let stage = match mode {
            Mode::Refer => {
                let refer = CallCommand::Refer {
                    refer_to: refer_uri(&req.to, &policy.refer_host),
                    referred_by: policy.referred_by.clone(),
                };
                // The dialog takes a REFER once confirmed: an inbound call's caller may not
                // have acknowledged our 200 yet (an agent can ask at once).
                if self.confirmed {
                    self.sip(refer);
                } else {
                    self.deferred_refer = Some(refer);
                }
                Stage::Referring {
                    deadline: now + policy.refer_timeout,
                    accepted: false,
                }
            }
            Mode::Notify if policy.notify_configured => {
                self.out.push_back(Output::NotifyPbx { to: req.to.clone() });
                Stage::Notifying
            }
            Mode::Bridge => Stage::Bridging,
            Mode::Notify => return self.transfer_failed(mode, &req.to, None),
        };
        self.transfer = Some(Active {
            mode,
            to: req.to.clone(),
            stage,
            fallback: req.fallback.unwrap_or(Fallback::Resume),
        });
        self.report_transfer(mode, &req.to, Outcome::Trying, None);
        if mode == Mode::Bridge {
            self.start_bridge(
                &req.to,
                super::bridge::Purpose::Transfer,
                policy.ring_timeout,
            );
        }
    }

    /// The caller acknowledged our 200: a REFER asked for before goes now.
    pub(super) fn on_confirmed(&mut self) {
        self.confirmed = true;
        if let Some(refer) = self.deferred_refer.take() {
            self.sip(refer);
        }
    }

    /// The REFER's final response.
    pub(super) fn on_refer_result(&mut self, status: u16) {
        let Some(t) = &mut self.transfer else { return };
        let Stage::Referring { accepted, .. } = &mut t.stage else {
            return;
        };
        if (200..300).contains(&status) {
            *accepted = true;
        } else {
            self.fail_running(Some(status));
        }
    }

    /// A NOTIFY of the REFER's progress (its sipfrag's status).
    pub(super) fn on_refer_progress(&mut self, status: u16, terminated: bool) {
        let Some(t) = &mut self.transfer else { return };
        let Stage::Referring { accepted, .. } = &mut t.stage else {
            return;
        };
        // A NOTIFY can overtake the 202.
        *accepted = true;
        match status {
            200..=299 => {
                let (mode, to) = (t.mode, t.to.clone());
                self.transfer = None;
                self.report_transfer(mode, &to, Outcome::Succeeded, Some(status));
                self.close_agent("transferred");
                self.hangup(EndReason::Transferred);
            }
            300..=699 => self.fail_running(Some(status)),
            _ if terminated => self.fail_running(None),
            _ => {}
        }
    }

    /// The PBX notification's outcome (`Ok(status)` of the POST, `Err` when it failed).
    pub(super) fn on_notify_result(&mut self, now: Instant, result: Result<u16, String>) {
        let Some(t) = &mut self.transfer else { return };
        if t.stage != Stage::Notifying {
            return;
        }
        match result {
            Ok(status) if (200..300).contains(&status) => {
                t.stage = Stage::AwaitingBye {
                    deadline: now + self.setup.transfer.await_bye,
                };
                let (mode, to) = (t.mode, t.to.clone());
                self.report_transfer(mode, &to, Outcome::Succeeded, None);
                // The PBX takes the caller back: the agent stream stops, the caller hears
                // nothing more from it.
                self.close_agent("transferred");
                if let Some(m) = &mut self.media {
                    m.pacer.clear();
                }
            }
            Ok(status) => self.fail_running(Some(status)),
            Err(_) => self.fail_running(None),
        }
    }

    /// Handed back, waiting for the PBX's BYE.
    pub(super) fn handed_back(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| matches!(t.stage, Stage::AwaitingBye { .. }))
    }

    pub(super) fn transfer_deadline(&self) -> Option<Instant> {
        match self.transfer.as_ref()?.stage {
            Stage::Referring { deadline, .. } | Stage::AwaitingBye { deadline } => Some(deadline),
            Stage::Notifying | Stage::Bridging => None,
        }
    }

    pub(super) fn transfer_timeout(&mut self, now: Instant) {
        match self.transfer.as_ref().map(|t| t.stage) {
            Some(Stage::Referring { deadline, .. }) if now >= deadline => {
                self.fail_running(Some(408))
            }
            Some(Stage::AwaitingBye { deadline }) if now >= deadline => {
                self.transfer = None;
                self.hangup(EndReason::Transferred);
            }
            _ => {}
        }
    }

    /// The running transfer failed: the agent keeps the call, or (`fallback = bridge` after a
    /// REFER) the target is dialled as a bridged leg.
    fn fail_running(&mut self, status: Option<u16>) {
        self.deferred_refer = None;
        let Some(t) = self.transfer.take() else {
            return;
        };
        self.transfer_failed(t.mode, &t.to, status);
        if t.fallback == Fallback::Bridge && t.mode != Mode::Bridge && self.hung_up.is_none() {
            let now = self.answered_at.unwrap_or(self.started);
            let req = Request {
                to: t.to,
                mode: Some(Mode::Bridge),
                fallback: Some(Fallback::Resume),
            };
            self.start_transfer(now, req);
        }
    }

    fn transfer_failed(&mut self, mode: Mode, to: &str, status: Option<u16>) {
        self.report_transfer(mode, to, Outcome::Failed, status);
    }

    /// Tells the agent, the view and the driver.
    pub(super) fn report_transfer(
        &mut self,
        mode: Mode,
        to: &str,
        outcome: Outcome,
        status: Option<u16>,
    ) {
        let progress = Progress {
            mode,
            to: to.to_string(),
            outcome,
            sip_status: status,
        };
        self.last_transfer = Some(progress.clone());
        let now_ms = self.wall_ms(self.answered_at.unwrap_or(self.started));
        if let Some(agent) = self.agent_leg() {
            if agent.state == WsState::Up {
                let msg = agent.codec.transfer(to, outcome.as_str(), now_ms);
                self.out.push_back(Output::AgentSend {
                    leg: super::leg::ANSWERER,
                    msg,
                });
            }
        }
        self.notice(Notice::Transfer(progress));
    }
}

/// Whether `to` can name a transfer target: 1 to 256 characters, no controls (a CR LF would
/// end the Refer-To header), no `<` or `>` (the URI is bracketed). The one rule for the API
/// and the agent's `transfer` event.
pub fn valid_target(to: &str) -> bool {
    !to.is_empty() && to.len() <= 256 && !to.chars().any(|c| c.is_control() || c == '<' || c == '>')
}

/// A number becomes `sip:<number>@<host>`; a SIP/SIPS/TEL URI is used as given.
pub fn refer_uri(to: &str, host: &str) -> String {
    let lower = to.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") || lower.starts_with("tel:") {
        to.to_string()
    } else {
        format!("sip:{to}@{host}")
    }
}
