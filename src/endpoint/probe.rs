//! Asking a running endpoint for a section once, as an SDK would: how
//! `exec --server` learns, before it starts its command, that the daemon's
//! endpoint answers for the section (or why not).

use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;

use super::{Record, route};
use crate::private_file;
use crate::session_cache::RUNTIME_FILE_RULES;

/// Error answers are a line of JSON; anything longer is not ours.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Whether the endpoint in `record` hands out `section`'s credentials now,
/// with the token a process given only that section would use. `Err` says
/// why not, in words fit for the user (the endpoint's own message when it
/// answered). The credentials themselves are not read.
pub async fn probe(record: &Record, section: &str, limit: Duration) -> Result<(), String> {
    match tokio::time::timeout(limit, ask(record, section)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the endpoint at {} did not answer within {} s",
            record.address,
            limit.as_secs()
        )),
    }
}

async fn ask(record: &Record, section: &str) -> Result<(), String> {
    let token_file = record.token_file_of(section);
    let token = match private_file::read(&token_file, RUNTIME_FILE_RULES) {
        Ok(Some(file)) => file.bytes,
        Ok(None) => {
            return Err(format!(
                "its token file {} is missing",
                token_file.display()
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let stream = tokio::net::TcpStream::connect(record.address)
        .await
        .map_err(|e| format!("cannot connect to the endpoint at {}: {e}", record.address))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| format!("the endpoint at {}: {e}", record.address))?;
    let driver = tokio::spawn(connection);
    let request = Request::get(route::path_of(section))
        .header(header::HOST, record.address.to_string())
        .header(header::AUTHORIZATION, token.as_slice())
        .body(Empty::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("the endpoint at {}: {e}", record.address))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // An error answer is the endpoint's JSON, without secrets.
        let body = Limited::new(response.into_body(), MAX_ERROR_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["Message"].as_str().map(str::to_string))
            .unwrap_or_else(|| "no explanation".to_string());
        // Quoted, control characters escaped.
        Err(format!(
            "the endpoint at {} answered {status}: {message:?}",
            record.address
        ))
    }
    .await;
    driver.abort();
    result
}
