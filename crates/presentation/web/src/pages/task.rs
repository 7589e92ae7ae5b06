//! TODO(page): task.

use axum::Router;

use crate::ctx::Ctx;

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router
}
