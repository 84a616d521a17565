//! Request extractors whose refusals are the API's own JSON errors, with the statuses the
//! OpenAPI document declares: a malformed body or query is 400, a body that is not JSON is
//! 415, a JSON body of the wrong shape is 422.

use super::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A required JSON body.
pub struct Body<T>(pub T);

/// A JSON body that may be left out (then `T::default()`).
pub struct OptionalBody<T>(pub T);

/// The query string.
pub struct Params<T>(pub T);

fn json_refusal(rejection: JsonRejection) -> ApiError {
    let status = match &rejection {
        JsonRejection::MissingJsonContentType(_) => 415,
        JsonRejection::JsonDataError(_) => 422,
        _ => 400,
    };
    ApiError::new(status, format!("the request body: {}", rejection.body_text()))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| Body(v))
            .map_err(json_refusal)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|e| ApiError::bad_request(format!("the request body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        Body::<T>::from_request(req, state).await.map(|Body(v)| OptionalBody(v))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Params(v))
            .map_err(|e: QueryRejection| ApiError::bad_request(format!("the query string: {}", e.body_text())))
    }
}
