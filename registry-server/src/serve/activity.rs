//! What one connection is doing, as its watchdog needs it: waiting for a request (idle, or
//! receiving headers), handling one (the handler's own business; the request body watches
//! itself), or sending a response body (which must keep moving). The socket wrapper reports the
//! bytes, the service reports requests and responses.

use pin_project_lite::pin_project;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// A body must move at least this many bytes per second on average over each body timeout.
pub const MIN_BODY_RATE: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Between requests, since `since`; `head` is when the next request's first byte came.
    Waiting {
        since: Instant,
        head: Option<Instant>,
    },
    Handling,
    /// A response body is being sent: `bytes` written since `window`.
    Sending {
        window: Instant,
        bytes: u64,
    },
}

/// The timeouts the watchdog applies.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub headers: Duration,
    pub keep_alive: Duration,
    pub body: Duration,
}

/// What the watchdog does next.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Look again at this instant (or when the phase changes).
    Until(Option<Instant>),
    /// A body that moved enough: a new window starts now.
    NewWindow,
    Close(&'static str),
}

/// The watchdog's rule, given the phase and the time: pure.
pub fn judge(phase: Phase, t: &Timeouts, now: Instant) -> Verdict {
    let (deadline, why) = match phase {
        Phase::Waiting { head: Some(h), .. } => (h + t.headers, "request headers not received in time"),
        Phase::Waiting { since, head: None } => (since + t.keep_alive, "idle connection"),
        Phase::Handling => return Verdict::Until(None),
        Phase::Sending { window, bytes } => {
            let deadline = window + t.body;
            if now < deadline {
                return Verdict::Until(Some(deadline));
            }
            return if bytes >= MIN_BODY_RATE * t.body.as_secs().max(1) {
                Verdict::NewWindow
            } else {
                Verdict::Close("response body not read by the client")
            };
        }
    };
    if now < deadline {
        Verdict::Until(Some(deadline))
    } else {
        Verdict::Close(why)
    }
}

pub struct Activity {
    phase: Mutex<Phase>,
    pub changed: Notify,
    /// Asked to close (the server is full): see `clients::Open::reclaim`.
    reclaimed: AtomicBool,
}

impl Activity {
    /// A new connection: its first request's headers are due within the headers timeout.
    pub fn new() -> Self {
        let now = Instant::now();
        Activity {
            phase: Mutex::new(Phase::Waiting {
                since: now,
                head: Some(now),
            }),
            changed: Notify::new(),
            reclaimed: AtomicBool::new(false),
        }
    }

    /// Asks the connection to close as soon as it is not serving a request.
    pub fn reclaim(&self) {
        self.reclaimed.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    /// Whether the connection should close now: it was asked to and is between requests (no
    /// byte of a next request received: one that began is served first).
    pub fn gives_way(&self) -> bool {
        self.reclaimed.load(Ordering::Acquire) && matches!(self.phase(), Phase::Waiting { head: None, .. })
    }

    pub fn phase(&self) -> Phase {
        *self.phase.lock().expect("not poisoned")
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().expect("not poisoned") = phase;
        self.changed.notify_one();
    }

    pub fn handling(&self) {
        self.set(Phase::Handling);
    }

    pub fn sending(&self) {
        self.set(Phase::Sending {
            window: Instant::now(),
            bytes: 0,
        });
    }

    /// The response is out (or dropped): waiting for the next request.
    pub fn done(&self) {
        self.set(Phase::Waiting {
            since: Instant::now(),
            head: None,
        });
    }

    pub fn new_window(&self) {
        if let Phase::Sending { window, bytes } = &mut *self.phase.lock().expect("not poisoned") {
            *window = Instant::now();
            *bytes = 0;
        }
    }

    fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut phase = self.phase.lock().expect("not poisoned");
        if let Phase::Waiting { head: head @ None, .. } = &mut *phase {
            *head = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn wrote(&self, n: usize) {
        if let Phase::Sending { bytes, .. } = &mut *self.phase.lock().expect("not poisoned") {
            *bytes += n as u64;
        }
    }
}

pin_project! {
    /// The connection's socket, reporting the bytes it moves to its [`Activity`].
    pub struct Watched<T> {
        #[pin]
        inner: T,
        activity: std::sync::Arc<Activity>,
    }
}

impl<T> Watched<T> {
    pub fn new(inner: T, activity: std::sync::Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<T: AsyncRead> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        this.activity.read(buf.filled().len() - before);
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            this.activity.wrote(*n);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled {
            this.activity.wrote(*n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        headers: Duration::from_secs(10),
        keep_alive: Duration::from_secs(60),
        body: Duration::from_secs(30),
    };

    #[test]
    fn each_phase_has_its_deadline() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let idle = Phase::Waiting { since: t0, head: None };
        assert_eq!(judge(idle, &T, t0 + s(59)), Verdict::Until(Some(t0 + s(60))));
        assert_eq!(judge(idle, &T, t0 + s(60)), Verdict::Close("idle connection"));
        let head = Phase::Waiting {
            since: t0,
            head: Some(t0 + s(50)),
        };
        assert_eq!(judge(head, &T, t0 + s(59)), Verdict::Until(Some(t0 + s(60))));
        assert!(matches!(judge(head, &T, t0 + s(60)), Verdict::Close(_)));
        assert_eq!(judge(Phase::Handling, &T, t0 + s(1000)), Verdict::Until(None));
        let slow = Phase::Sending {
            window: t0,
            bytes: 1000,
        };
        assert_eq!(judge(slow, &T, t0 + s(29)), Verdict::Until(Some(t0 + s(30))));
        assert!(matches!(judge(slow, &T, t0 + s(30)), Verdict::Close(_)));
        let moving = Phase::Sending {
            window: t0,
            bytes: 30 * 1024,
        };
        assert_eq!(judge(moving, &T, t0 + s(30)), Verdict::NewWindow);
    }
}
