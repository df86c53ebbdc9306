//! Bodies as the connection layer wraps them: a request body that must keep arriving, and a
//! response body that tells the connection's watchdog when it is over.

use super::activity::{Activity, MIN_BODY_RATE};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

pub use crate::http::error::BodyTimeout;

pin_project! {
    /// A request body cut off (with [`BodyTimeout`]) when a window of `timeout` passes with less
    /// than `MIN_BODY_RATE` per second of it. The first window starts when the handler first
    /// reads, so a handler that authorizes first is not charged for its own time.
    pub struct Progress<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        window: u64,
        #[pin]
        deadline: Option<Sleep>,
    }
}

impl<B> Progress<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        Progress {
            inner,
            timeout,
            window: 0,
            deadline: None,
        }
    }
}

impl<B> Body for Progress<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if this.deadline.is_none() {
            this.deadline.set(Some(tokio::time::sleep(*this.timeout)));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.window += data.len() as u64;
                    if *this.window >= MIN_BODY_RATE * this.timeout.as_secs().max(1) {
                        *this.window = 0;
                        if let Some(d) = this.deadline.as_mut().as_pin_mut() {
                            d.reset(Instant::now() + *this.timeout);
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other.map(|r| r.map_err(Into::into))),
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .as_pin_mut()
                    .is_some_and(|d| d.poll(cx).is_ready());
                if expired {
                    Poll::Ready(Some(Err(Box::new(BodyTimeout {
                        window: *this.timeout,
                        min_rate: MIN_BODY_RATE,
                    }))))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response body that tells the connection when it has been sent (or dropped).
    pub struct Sent<B> {
        #[pin]
        inner: B,
        activity: Option<Arc<Activity>>,
    }

    impl<B> PinnedDrop for Sent<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(a) = this.project().activity.take() {
                a.done();
            }
        }
    }
}

impl<B> Sent<B> {
    pub fn new(inner: B, activity: Arc<Activity>) -> Self {
        Sent {
            inner,
            activity: Some(activity),
        }
    }
}

impl<B: Body> Body for Sent<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = &polled
            && let Some(a) = this.activity.take()
        {
            a.done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
