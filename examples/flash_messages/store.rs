//! `actix-web-flash-messages` on sealed sessions: its `FlashMessageStore` trait implemented
//! over this crate's [`Session`](sealed_session::Session). Copy this file into your app (the
//! compatibility tests include it as is).

use actix_web::HttpRequest;
use actix_web::dev::ResponseHead;
use actix_web_flash_messages::FlashMessage;
use actix_web_flash_messages::storage::{FlashMessageStore, LoadError, StoreError};
use sealed_session::SessionExt;

/// Keeps the outgoing flash messages in the sealed session under one key, like the crate's own
/// `SessionMessageStore` does on actix-session. Wrap the app in the flash messages framework
/// first and in [`SessionMiddleware`](sealed_session::SessionMiddleware) last (outermost), so
/// the session is sealed after the messages are stored.
#[derive(Clone, Debug)]
pub struct SealedFlashStore {
    key: String,
}

impl SealedFlashStore {
    /// Messages are kept under `key`.
    pub fn new(key: String) -> Self {
        SealedFlashStore { key }
    }
}

impl Default for SealedFlashStore {
    /// The key `_flash`, as `SessionMessageStore`.
    fn default() -> Self {
        SealedFlashStore::new("_flash".to_owned())
    }
}

impl FlashMessageStore for SealedFlashStore {
    fn load(&self, request: &HttpRequest) -> Result<Vec<FlashMessage>, LoadError> {
        request
            .get_session()
            .get::<Vec<FlashMessage>>(&self.key)
            .map(Option::unwrap_or_default)
            .map_err(|e| LoadError::DeserializationError(e.into()))
    }

    /// Called on every response: no messages removes the key (a no-op, and so no
    /// `Set-Cookie`, when there was none).
    fn store(
        &self,
        messages: &[FlashMessage],
        request: HttpRequest,
        _response: &mut ResponseHead,
    ) -> Result<(), StoreError> {
        let session = request.get_session();
        if messages.is_empty() {
            session.remove(&self.key);
            Ok(())
        } else {
            session
                .insert(self.key.as_str(), messages)
                .map_err(|e| StoreError::SerializationError(e.into()))
        }
    }
}
