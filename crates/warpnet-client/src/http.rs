//! A small HTTP/1.1 client for a node's API (`cluster status`, `user ...`, the benchmark and
//! tests): one keep-alive connection per [`Connection`].

use std::net::{IpAddr, SocketAddr};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL {0:?}: use http://host:port/path")]
    Url(String),
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
}

/// Splits `http://host:port/path` into its authority and path (`/` if none).
pub fn split_url(url: &str) -> Result<(&str, &str), HttpError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| HttpError::Url(url.into()))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// A keep-alive connection to one node.
pub struct Connection {
    authority: String,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to `authority` (`host:port`).
    pub async fn open(authority: &str) -> Result<Self, HttpError> {
        Self::open_from(authority, None).await
    }

    /// Connects to `authority` from the local address `from` (e.g. another loopback address,
    /// to be another client as far as the node's per-client limits go).
    pub async fn open_from(authority: &str, from: Option<IpAddr>) -> Result<Self, HttpError> {
        let fail = |e: &dyn std::fmt::Display| HttpError::Unreachable {
            url: format!("http://{authority}"),
            detail: e.to_string(),
        };
        let stream = match from {
            None => TcpStream::connect(authority).await.map_err(|e| fail(&e))?,
            Some(ip) => {
                let to = tokio::net::lookup_host(authority)
                    .await
                    .map_err(|e| fail(&e))?
                    .find(|a| a.is_ipv4() == ip.is_ipv4())
                    .ok_or_else(|| fail(&"no address of the same family"))?;
                let socket = if ip.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
                    .map_err(|e| fail(&e))?;
                socket.bind(SocketAddr::new(ip, 0)).map_err(|e| fail(&e))?;
                socket.connect(to).await.map_err(|e| fail(&e))?
            }
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { authority: authority.into(), sender })
    }

    /// Sends one request (a JSON body if given) and reads the whole answer: status and body.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), HttpError> {
        self.send(method, path, body).await.map(|r| (r.status, r.body))
    }

    /// Sends one request (a JSON body if given) and reads the whole answer, headers included.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, HttpError> {
        let url = format!("http://{}{path}", self.authority);
        let fail = |e: &dyn std::fmt::Display| HttpError::Unreachable {
            url: url.clone(),
            detail: e.to_string(),
        };
        self.sender.ready().await.map_err(|e| fail(&e))?;
        let mut req = Request::builder().method(method).uri(path).header("host", &self.authority);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req =
            req.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| fail(&e))?;
        let resp = self.sender.send_request(req).await.map_err(|e| fail(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.map_err(|e| fail(&e))?.to_bytes();
        Ok(Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }
}

/// A whole answer.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `Retry-After` header, in seconds.
    pub fn retry_after_s(&self) -> Option<u64> {
        self.headers.get("retry-after")?.to_str().ok()?.parse().ok()
    }
}

/// GETs `url` (`http://host:port/path`) on a new connection; returns the status and body.
pub async fn get(url: &str) -> Result<(u16, String), HttpError> {
    let (authority, path) = split_url(url)?;
    Connection::open(authority).await?.request(Method::GET, path, None).await
}

/// POSTs a JSON body to `url` on a new connection; returns the status and body.
pub async fn post_json(url: &str, body: &serde_json::Value) -> Result<(u16, String), HttpError> {
    let (authority, path) = split_url(url)?;
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Connection::open(authority).await?.request(Method::POST, path, Some(bytes)).await
}
