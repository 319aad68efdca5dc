//! A small HTTP/1.1 client for the command line (`cluster status`) and tests.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL {0:?}: use http://host:port/path")]
    Url(String),
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
}

/// GETs `url` (`http://host:port/path`); returns the status and body.
pub async fn get(url: &str) -> Result<(u16, String), HttpError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| HttpError::Url(url.into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fail = |e: &dyn std::fmt::Display| HttpError::Unreachable {
        url: url.into(),
        detail: e.to_string(),
    };
    let stream = TcpStream::connect(authority).await.map_err(|e| fail(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| fail(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get(path)
        .header("host", authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| fail(&e))?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| fail(&e))?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
