//! Stopping a run from outside: the binary turns SIGINT and SIGTERM into a
//! [`Cancel`], which the engine checks between steps and awaits during each.

/// Asks a running repair or rollback to stop: set by the binary on SIGINT
/// or SIGTERM, checked between steps and awaited during each.
#[derive(Debug, Clone)]
pub struct Cancel {
    sender: std::sync::Arc<tokio::sync::watch::Sender<Option<String>>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            sender: std::sync::Arc::new(tokio::sync::watch::channel(None).0),
        }
    }
}

impl Cancel {
    /// A token nobody has cancelled yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the run to stop; `by` says why ("SIGINT").
    pub fn cancel(&self, by: &str) {
        self.sender.send_replace(Some(by.to_string()));
    }

    /// Why the run was asked to stop, if it was.
    pub fn reason(&self) -> Option<String> {
        self.sender.borrow().clone()
    }

    /// Resolves once the run is asked to stop, with why.
    pub async fn cancelled(&self) -> String {
        let mut receiver = self.sender.subscribe();
        let by = receiver
            .wait_for(Option::is_some)
            .await
            .map(|by| by.clone().unwrap_or_default());
        match by {
            Ok(by) => by,
            // The sender lives in `self`: never dropped while awaited.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_says_why_to_every_clone_and_only_once_asked() {
        let cancel = Cancel::new();
        let run = cancel.clone();
        assert_eq!(run.reason(), None, "nobody asked yet");
        cancel.cancel("SIGTERM");
        assert_eq!(run.reason().as_deref(), Some("SIGTERM"));
        assert_eq!(run.cancelled().await, "SIGTERM");
    }
}
