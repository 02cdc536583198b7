//! The load tool's webhook responder: every inbound-call webhook is answered with the echo
//! agent's URL (JSON answer), so the gateway bridges each call to it.

use std::net::SocketAddr;

use axum::routing::post;
use axum::{Json, Router};

pub async fn serve(addr: SocketAddr, agent: SocketAddr, dialect: &str) -> std::io::Result<()> {
    let answer = serde_json::json!({
        "websocket_url": format!("ws://{agent}/agent"),
        "dialect": dialect,
        "sample_rate": 8000,
    });
    let app = Router::new().route("/webhook", post(move || async move { Json(answer) }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}
