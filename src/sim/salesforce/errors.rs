//! Salesforce simulator: errors — one Salesforce error (`errorCode`, `message`, `fields`),
//! the handle's `SimError`, and `ApiError`, an HTTP status with the JSON array of errors
//! Salesforce answers (`[{"message","errorCode","fields"}]`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::wire::json_response;

/// One Salesforce error. `fields` is None where Salesforce prints no `fields` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SfError {
    pub code: &'static str,
    pub message: String,
    pub fields: Option<Vec<String>>,
}

impl SfError {
    pub fn new(code: &'static str, message: impl Into<String>) -> SfError {
        SfError {
            code,
            message: message.into(),
            fields: None,
        }
    }

    /// A record error naming `fields`.
    pub fn on(code: &'static str, message: impl Into<String>, fields: &[&str]) -> SfError {
        SfError {
            code,
            message: message.into(),
            fields: Some(fields.iter().map(|f| f.to_string()).collect()),
        }
    }

    /// As the REST API prints it (`errorCode`).
    pub fn rest(&self) -> Value {
        let mut v = json!({"message": self.message, "errorCode": self.code});
        if let (Some(fields), Value::Object(m)) = (&self.fields, &mut v) {
            m.insert("fields".into(), json!(fields));
        }
        v
    }

    /// As sObject Collections print it (`statusCode`, `fields` always present).
    pub fn collection(&self) -> Value {
        json!({
            "statusCode": self.code,
            "message": self.message,
            "fields": self.fields.clone().unwrap_or_default(),
        })
    }
}

/// What the handle's app-side edits can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("NOT_FOUND: sObject type '{0}' is not supported")]
    UnknownObject(String),
    #[error("NOT_FOUND: The requested resource does not exist")]
    NotFound,
    #[error("ENTITY_IS_DELETED: entity is deleted")]
    Deleted,
    #[error("{}", .0.iter().map(|e| format!("{}: {}", e.code, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<SfError>),
}

impl SimError {
    /// The Salesforce errors behind this one.
    pub fn errors(&self) -> Vec<SfError> {
        match self {
            SimError::UnknownObject(name) => vec![SfError::new(
                "NOT_FOUND",
                format!("The requested resource does not exist: sObject type '{name}'"),
            )],
            SimError::NotFound => vec![not_found_error()],
            SimError::Deleted => vec![SfError::on("ENTITY_IS_DELETED", "entity is deleted", &[])],
            SimError::Invalid(errs) => errs.clone(),
        }
    }
}

pub(crate) fn not_found_error() -> SfError {
    SfError::new("NOT_FOUND", "The requested resource does not exist")
}

/// An HTTP error answer: a status and Salesforce's array of errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {}", .errors.first().map(|e| e.code).unwrap_or(""))]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<SfError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            errors: vec![SfError::new(code, message)],
        }
    }

    pub fn bad_request(code: &'static str, message: String) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            errors: vec![not_found_error()],
        }
    }

    pub fn records(errors: Vec<SfError>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            errors,
        }
    }
}

impl From<SimError> for ApiError {
    fn from(e: SimError) -> ApiError {
        let status = match e {
            SimError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::NOT_FOUND,
        };
        ApiError {
            status,
            errors: e.errors(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body: Vec<Value> = self.errors.iter().map(SfError::rest).collect();
        json_response(self.status, &Value::Array(body))
    }
}
