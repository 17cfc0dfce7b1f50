//! One-time flash messages on sealed sessions, with the API of `axum-messages` (which needs
//! tower-sessions): a [`Messages`] extractor that takes the messages left by earlier requests
//! and adds new ones for the next. Messages travel in the sealed cookie, so any node shows
//! them, and a read message is gone from the cookie written with that response.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use sealed_session::Session;
use serde::{Deserialize, Serialize};

/// Session key of the pending messages.
const KEY: &str = "_flash";

/// How important a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// Debugging detail.
    Debug,
    /// Something happened.
    Info,
    /// Something went well.
    Success,
    /// Something may be wrong.
    Warning,
    /// Something went wrong.
    Error,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its level.
    pub level: Level,
    /// Its text.
    pub message: String,
}

/// The messages left for this request (taken out of the session: they show once), and a
/// handle to leave new ones for the next request.
pub struct Messages {
    session: Session,
    incoming: Vec<Message>,
}

impl Messages {
    /// Leaves a message for the next request.
    pub fn push(self, level: Level, message: impl Into<String>) -> Self {
        let mut pending: Vec<Message> = self.session.get(KEY).ok().flatten().unwrap_or_default();
        pending.push(Message {
            level,
            message: message.into(),
        });
        if self.session.insert(KEY, pending).is_err() {
            tracing::error!("a flash message could not be stored");
        }
        self
    }

    /// [`Messages::push`] at [`Level::Info`].
    pub fn info(self, message: impl Into<String>) -> Self {
        self.push(Level::Info, message)
    }

    /// [`Messages::push`] at [`Level::Success`].
    pub fn success(self, message: impl Into<String>) -> Self {
        self.push(Level::Success, message)
    }
}

impl IntoIterator for Messages {
    type Item = Message;
    type IntoIter = std::vec::IntoIter<Message>;

    fn into_iter(self) -> Self::IntoIter {
        self.incoming.into_iter()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Messages {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        // Only a session that holds messages is changed (and written back without them).
        let incoming = match session.contains_key(KEY) {
            true => session
                .remove_as::<Vec<Message>>(KEY)
                .and_then(Result::ok)
                .unwrap_or_default(),
            false => Vec::new(),
        };
        Ok(Messages { session, incoming })
    }
}
