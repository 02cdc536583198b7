//! The PBX hand-back of a `notify` transfer (PROTOCOLS.md §5, seed 001): the trunk's JSON
//! template with its placeholders filled from the call (`{crt}`, `{did}`, `{call_id}`,
//! `{from}`, `{to}`, `{target}`), POSTed with the trunk's headers through the one signed POST.
//!
//! Owns: rendering the template. Must not: decide what the answer means (the call machine
//! does) or log header values (they hold the PBX's credentials).

use std::sync::Arc;
use std::time::Duration;

use super::Ctx;
use crate::config::{TemplateValue, TransferConfig};
use crate::core::call::CallView;
use crate::io::http;

/// A PBX notification taking longer than this counts as failed (the agent keeps the call).
const TIMEOUT: Duration = Duration::from_secs(10);

/// The values placeholders stand for.
pub struct Fields<'a> {
    pub view: &'a CallView,
    pub target: &'a str,
}

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        let v = self.view;
        Some(match name {
            "crt" => v.crt.as_deref().unwrap_or(""),
            "did" => v.did.as_deref().unwrap_or(""),
            "call_id" => &v.call_id,
            "from" => v.from.as_deref().unwrap_or(""),
            "to" => v.to.as_deref().unwrap_or(""),
            "target" => self.target,
            _ => return None,
        })
    }

    /// `{name}` replaced by its value; unknown names are left as written.
    pub fn fill(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}').and_then(|close| {
                let name = &after[..close];
                self.get(name).map(|v| (v, close))
            }) {
                Some((value, close)) => {
                    out.push_str(value);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The template as JSON, placeholders filled in every string.
pub fn render(t: &TemplateValue, f: &Fields<'_>) -> serde_json::Value {
    use serde_json::Value;
    match t {
        TemplateValue::Bool(b) => Value::Bool(*b),
        TemplateValue::Int(i) => Value::from(*i),
        TemplateValue::Float(x) => {
            serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
        }
        TemplateValue::Str(s) => Value::String(f.fill(s)),
        TemplateValue::Array(items) => Value::Array(items.iter().map(|i| render(i, f)).collect()),
        TemplateValue::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), render(v, f)))
                .collect(),
        ),
    }
}

/// POSTs the notification; `Ok(status)` for any answer (the machine judges it).
pub async fn send(
    ctx: &Arc<Ctx>,
    cfg: &TransferConfig,
    view: &CallView,
    target: &str,
) -> Result<u16, String> {
    let Some(url) = cfg.url.as_deref() else {
        return Err("no PBX notification url".into());
    };
    let fields = Fields { view, target };
    let body = match &cfg.body {
        Some(t) => render(t, &fields),
        None => {
            serde_json::json!({"call_id": view.call_id, "crt": view.crt, "did": view.did, "target": target})
        }
    };
    let headers: Vec<(String, String)> = cfg
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), fields.fill(v)))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    match http::signed_post(
        &ctx.http,
        url,
        "application/json",
        &headers,
        bytes,
        None,
        Some(TIMEOUT),
    )
    .await
    {
        Ok(resp) => Ok(resp.status().as_u16()),
        Err(e) => Err(e.without_url().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::call::Direction;

    #[test]
    fn placeholders_fill_every_string() {
        let mut view = CallView::new("CA01", Direction::Inbound, "t".into());
        view.crt = Some("crt-9".into());
        view.did = Some("+48123".into());
        let f = Fields {
            view: &view,
            target: "+4999",
        };
        let t = TemplateValue::Object(vec![
            ("notificationId".into(), TemplateValue::Str("95".into())),
            ("uniqueId".into(), TemplateValue::Str("{crt}".into())),
            ("callResponse".into(), TemplateValue::Bool(true)),
            (
                "properties".into(),
                TemplateValue::Object(vec![(
                    "x".into(),
                    TemplateValue::Str("{did}/{call_id}->{target} {unknown} {".into()),
                )]),
            ),
        ]);
        assert_eq!(
            render(&t, &f),
            serde_json::json!({"notificationId":"95","uniqueId":"crt-9","callResponse":true,
                "properties":{"x":"+48123/CA01->+4999 {unknown} {"}})
        );
    }
}
