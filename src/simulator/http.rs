//! The HTTP plumbing the ECS simulator and the identity server share: the
//! accept loop, redirects and the parameters of a form request.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves HTTP/1 on `listener` with `handler` until `stop` turns true (the
/// ECS simulator and the identity server share it).
pub(crate) async fn serve_with<S, H, F>(
    listener: TcpListener,
    state: Arc<S>,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: std::future::Future<Output = Result<Response<Full<Bytes>>, std::convert::Infallible>>
        + Send
        + 'static,
{
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = conn else { continue };
        let state = Arc::clone(&state);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handler(Arc::clone(&state), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

/// `307 Temporary Redirect` to `to`, with an empty body.
pub(crate) fn redirect(to: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(307)
        .header("location", to)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The parameters of an RPC request: its query, then its form body (at
/// most 1 MiB read).
pub(crate) async fn form_params(req: Request<Incoming>) -> Vec<(String, String)> {
    let mut params = parse_form(req.uri().query().unwrap_or(""));
    let body = Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    params.extend(parse_form(&String::from_utf8_lossy(&body)));
    params
}

/// Decodes `k=v&k=v` (percent-encoding, `+` as space as in forms).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let p = parse_form("a=1&b=x%2By%2F%3D&c=a+b&d=%E4%BA%91&e&f=%zz");
        assert_eq!(p[1], ("b".into(), "x+y/=".into()));
        assert_eq!(p[2], ("c".into(), "a b".into()));
        assert_eq!(p[3], ("d".into(), "云".into()));
        assert_eq!(p[4], ("e".into(), "".into()));
        assert_eq!(p[5], ("f".into(), "%zz".into()));
    }
}
