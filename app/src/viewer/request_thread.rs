//! The UI's side of a background service that only ever computes the
//! newest request (the analysis and the timeline threads): requests are
//! numbered, one asking for the same work as the last is not sent again,
//! and polling keeps only the newest outcome.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};

/// A request to such a service.
pub trait LatestRequest: Clone {
    /// Whether `other` asks for the same result as `self` (ignoring the
    /// generation).
    fn same_work(&self, other: &Self) -> bool;
    /// The request's generation.
    fn generation(&self) -> u64;
    /// Numbers the request.
    fn set_generation(&mut self, generation: u64);
}

/// A result of such a service, numbered as the request it answers.
pub trait LatestResult {
    /// The generation of the request it answers.
    fn generation(&self) -> u64;
}

/// A request's outcome: a result, or the request's generation and why
/// there is no result.
pub type Outcome<T> = Result<T, (u64, String)>;

/// The UI's handle: the channels to the thread and the last request sent.
pub struct Latest<R, T> {
    requests: Sender<R>,
    results: Receiver<Outcome<T>>,
    last_request: Option<R>,
    generation: u64,
    /// Names the service in "the … stopped unexpectedly".
    name: &'static str,
}

impl<R: LatestRequest, T> Latest<R, T> {
    /// A handle on the thread at the other end of these channels.
    pub fn new(requests: Sender<R>, results: Receiver<Outcome<T>>, name: &'static str) -> Self {
        Latest {
            requests,
            results,
            last_request: None,
            generation: 0,
            name,
        }
    }

    /// The generation of the last request sent.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Sends a request unless it asks for the same work as the last one;
    /// `before_send` sees it numbered, just before the thread can.
    /// Returns whether it was sent.
    pub fn request(&mut self, mut request: R, before_send: impl FnOnce(&R)) -> bool {
        if self
            .last_request
            .as_ref()
            .is_some_and(|last| last.same_work(&request))
        {
            return false;
        }
        self.generation += 1;
        request.set_generation(self.generation);
        before_send(&request);
        self.last_request = Some(request.clone());
        // The thread only stops when this handle is dropped.
        let _ = self.requests.send(request);
        true
    }

    /// Forgets the last request, so that the next one is sent even if it
    /// asks for the same work.
    pub fn reset(&mut self) {
        self.last_request = None;
    }

    /// The newest outcome that arrived, if any.
    pub fn poll(&mut self) -> Option<Outcome<T>> {
        let mut newest = None;
        loop {
            match self.results.try_recv() {
                Ok(outcome) => newest = Some(outcome),
                Err(TryRecvError::Empty) => return newest,
                // The thread is gone (it panicked): say so rather than wait
                // forever.
                Err(TryRecvError::Disconnected) => {
                    return newest.or_else(|| {
                        self.last_request.take().map(|r| {
                            Err((
                                r.generation(),
                                format!("the {} stopped unexpectedly", self.name),
                            ))
                        })
                    });
                }
            }
        }
    }

    /// Blocks until the outcome of the last request sent arrives, skipping
    /// older ones. For benchmarks and tests: the window never waits, it
    /// polls.
    pub fn wait(&mut self) -> Outcome<T>
    where
        T: LatestResult,
    {
        loop {
            match self.results.recv() {
                Ok(Ok(result)) if result.generation() != self.generation => {}
                Ok(Err((generation, _))) if generation != self.generation => {}
                Ok(outcome) => return outcome,
                Err(_) => {
                    return Err((
                        self.generation,
                        format!("the {} stopped unexpectedly", self.name),
                    ));
                }
            }
        }
    }
}
