//! A server of the harness (proxy, API stand-in) running on its own thread with its own
//! tokio runtime, told to stop and joined when dropped.

use std::future::Future;

use tokio::sync::oneshot;

pub struct Background {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Runs `serve(stopped)` on a thread named `name` with `workers` runtime threads (0: a
    /// current-thread runtime). `stopped` resolves when the `Background` is dropped; dropping
    /// the runtime after `serve` returns ends every connection still open.
    pub fn start<F, Fut>(name: &str, workers: usize, serve: F) -> Background
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (shutdown, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let runtime = match workers {
                    0 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
                    n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
                }
                .expect("background server runtime");
                runtime.block_on(serve(stopped));
            })
            .expect("start a background server thread");
        Background { shutdown: Some(shutdown), thread: Some(thread) }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
