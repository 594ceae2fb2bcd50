//! A router that keeps the paths it routes, so the API document is checked against the routes
//! really served (each path's methods are probed on the built router) rather than against a
//! reading of the source.

use axum::routing::MethodRouter;
use axum::Router;

pub struct Routes<S> {
    router: Router<S>,
    paths: Vec<&'static str>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self { router: Router::new(), paths: vec![] }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `path` to `handler`, as [`Router::route`], and remembers the path.
    pub fn route(mut self, path: &'static str, handler: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, handler);
        self.paths.push(path);
        self
    }

    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    /// Applies layers (or anything else that keeps the routes) to the router.
    pub fn map(mut self, f: impl FnOnce(Router<S>) -> Router<S>) -> Self {
        self.router = f(self.router);
        self
    }

    pub fn into_parts(self) -> (Router<S>, Vec<&'static str>) {
        (self.router, self.paths)
    }
}
