//! REST simulator: the profile — the TOML file that shapes the simulated API's wire: how
//! clients sign in, each resource's paths, ids, bodies, timestamps and pages (with the lies
//! some apps' pages tell), its filters and update style, and how webhooks are signed and
//! shaped (`profile_webhooks.rs`). Every key but `resources.<name>.path` has a default;
//! unknown keys are refused. The checks are in `checks.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

pub use super::profile_webhooks::{
    Algorithm, Encoding, EventKinds, EventShape, Payload, Scheme, WebhookProfile,
};

/// The API secret (token, key, password or client secret) when neither the profile nor
/// `--secret` names one.
pub const DEFAULT_SECRET: &str = "sim-secret";
/// The webhook secret when neither the profile nor `--webhook-secret` names one.
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec-sim";
/// The `standard` scheme's default secret: the Standard Webhooks specification's example key.
pub const DEFAULT_STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A simulated app's wire shape.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    pub auth: AuthProfile,
    /// The resources by name (the name is used in webhook event types).
    pub resources: BTreeMap<String, ResourceProfile>,
    pub webhooks: WebhookProfile,
    /// `100/10s`: requests per rolling window (on the sim clock), 429 + `Retry-After` beyond;
    /// unset or `none` = unlimited.
    pub rate_limit: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// Everything is let in.
    None,
    /// `Authorization: Bearer <secret>`.
    #[default]
    Bearer,
    /// The secret in the header `name` (default `X-API-Key`).
    Header,
    /// The secret in the query parameter `name` (default `api_key`).
    Query,
    /// HTTP basic: `username` and the secret as password.
    Basic,
    /// OAuth 2.0 client credentials at `url`; access tokens live `ttl`.
    ClientCredentials,
    /// A JSON login at `url` answering a session token (at `token`) that lives `ttl`.
    Login,
}

impl AuthKind {
    /// The profile's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::None => "none",
            AuthKind::Bearer => "bearer",
            AuthKind::Header => "header",
            AuthKind::Query => "query",
            AuthKind::Basic => "basic",
            AuthKind::ClientCredentials => "client_credentials",
            AuthKind::Login => "login",
        }
    }
}

/// `[auth]`: how API calls are signed in.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthProfile {
    pub kind: AuthKind,
    /// `header`: the header name; `query`: the parameter name; `login`: the header the session
    /// token comes in (as `Bearer <token>`, or the bare token).
    pub name: Option<String>,
    /// The secret accepted (default: `--secret`, else `sim-secret`).
    pub secret: Option<String>,
    /// `basic` user, `client_credentials` client id, `login` user name (default `ferry`).
    pub username: Option<String>,
    /// `client_credentials` token endpoint (default `/oauth/token`); `login` endpoint (default
    /// `/login`).
    pub url: Option<String>,
    /// `login`: the JSON pointer of the session token in the login answer (default `/token`).
    pub token: Option<String>,
    /// Lifetime of issued tokens on the sim clock (default `30m`).
    pub ttl: Option<String>,
    /// `login`: the JSON body the login call takes, `{username}` and `{secret}` filled in
    /// its strings; every value must match, other keys are ignored (default
    /// `{ username = "{username}", password = "{secret}" }`; Directus:
    /// `{ email = "{username}", password = "{secret}" }`).
    pub body: Option<Value>,
    /// `login`: the JSON pointer of the token's lifetime in the login answer (Directus:
    /// `/data/expires`); unset: the answer does not say.
    pub expires: Option<String>,
    /// The unit of `expires`: `s` (default) or `ms`.
    pub expires_unit: TimeUnit,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds.
    #[default]
    #[serde(rename = "s")]
    Seconds,
    /// Milliseconds.
    #[serde(rename = "ms")]
    Millis,
}

impl AuthProfile {
    /// The header or query parameter the credential comes in.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(match self.kind {
            AuthKind::Header => "X-API-Key",
            AuthKind::Query => "api_key",
            _ => "Authorization",
        })
    }

    pub fn secret(&self) -> &str {
        self.secret.as_deref().unwrap_or(DEFAULT_SECRET)
    }

    pub fn username(&self) -> &str {
        self.username.as_deref().unwrap_or("ferry")
    }

    /// The sim's own sign-in endpoint (`client_credentials` and `login` only).
    pub fn endpoint(&self) -> Option<&str> {
        match self.kind {
            AuthKind::ClientCredentials => Some(self.url.as_deref().unwrap_or("/oauth/token")),
            AuthKind::Login => Some(self.url.as_deref().unwrap_or("/login")),
            _ => None,
        }
    }

    /// The login body with `{username}` and `{secret}` filled in.
    pub fn login_body(&self) -> Value {
        let template = self
            .body
            .clone()
            .unwrap_or_else(|| json!({"username": "{username}", "password": "{secret}"}));
        fill(&template, self.username(), self.secret())
    }

    pub fn token_pointer(&self) -> &str {
        self.token.as_deref().unwrap_or("/token")
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
            .as_deref()
            .and_then(|t| crate::config::parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(30 * 60))
    }
}

/// `template` with `{username}` and `{secret}` replaced in its strings.
fn fill(template: &Value, user: &str, secret: &str) -> Value {
    match template {
        Value::String(s) => json!(s.replace("{username}", user).replace("{secret}", secret)),
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, user, secret)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), fill(v, user, secret)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// 1, 2, 3… as JSON numbers.
    #[default]
    Integer,
    /// Random 20-character document ids as JSON strings.
    String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// `2024-05-01T12:00:00.123Z` (milliseconds).
    #[default]
    Rfc3339,
    /// `2024-05-01T12:00:00Z` (whole seconds).
    Rfc3339Seconds,
    /// Unix seconds, a number.
    Unix,
    /// Unix milliseconds, a number.
    UnixMs,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeleteKind {
    /// The record is gone.
    #[default]
    Hard,
    /// The record stays (listed, gettable) with its tombstone field set to the time.
    Tombstone,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UpdateKind {
    /// `PATCH` merges top-level fields (nested objects one level); `PUT` answers 405.
    #[default]
    Patch,
    /// `PUT` replaces the record; `PATCH` answers 405.
    Put,
    /// `PUT` merges like `PATCH` does (Strapi 5's PUT updates only the fields sent); `PATCH`
    /// answers 405.
    PutPartial,
}

/// `[resources.<name>]`: one collection of records.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceProfile {
    /// The collection (required): GET lists, POST creates, `{path}/{id}` is one record.
    pub path: String,
    pub ids: IdKind,
    /// The field the record's id is kept and rendered under, which item paths
    /// (`{path}/{id}`) name: GitHub's issue `number`, Strapi's `documentId` (default `id`).
    pub id_field: String,
    /// Also a numeric `id` (1, 2, 3… in creation order, never reused) beside `id_field`
    /// (Strapi 5's `id` beside its `documentId`); needs `id_field` other than `id`.
    pub also_numeric_id: bool,
    /// Integer ids: a create takes the lowest id freed by a hard delete.
    pub reuse_ids: bool,
    /// JSON pointer of the array in list answers (default `/data`; empty: a bare array).
    pub records: String,
    /// JSON pointer of the record in single answers (default empty: the bare record).
    pub record: String,
    /// Write bodies must be `{"<wrap>": {...}}`.
    pub wrap: Option<String>,
    pub timestamps: TimeFormat,
    /// The maintained last-change field (default `updated_at`).
    pub updated_at: String,
    /// The maintained creation field (default `created_at`).
    pub created_at: String,
    /// A created record's `updated_at` is null until its first update.
    pub null_updated_on_insert: bool,
    /// Status of a get, update or delete of a missing id (default 404).
    pub missing_status: u16,
    pub delete: DeleteKind,
    /// The tombstone field (default `deleted_at`).
    pub tombstone: String,
    /// A deleted-records feed: each hard delete also adds `{"record_id": <id>, "deleted_at":
    /// <time>}` to this other resource (list it with its `since_param` for the deletions
    /// since a time, as Zoho's `/deleted` or an audit log serves them).
    pub deleted_log: Option<String>,
    pub update: UpdateKind,
    /// List filter: changed at or after the value (in the resource's time format).
    pub since_param: Option<String>,
    /// List order: `updated_at` or `-updated_at`.
    pub sort_param: Option<String>,
    /// The record fields a list can be filtered on by equality, as `?<field>=v` or in the
    /// bracket forms `filters[<field>][$eq]=v` (Strapi) and `filter[<field>][_eq]=v`
    /// (Directus); other parameters are ignored (GitHub's `state=all`). Unset: any parameter
    /// naming a field of a listed record, and any bracket form. Whatever this says,
    /// `filters[<f>][$gte]=t` and `filter[<f>][_gte]=t` on the `updated_at` field keep
    /// records updated at or after `t` (a null update time never passes, unlike
    /// `since_param`), on the `created_at` field records created at or after `t`; an "any
    /// of" group (`filter[_or][<i>][<f>][_gte]`, `filters[$or][<i>][<f>][$gte]`) keeps
    /// records passing one of its members.
    pub filters: Option<Vec<String>>,
    /// POST endpoint taking the list parameters and filters in a JSON body.
    pub search_path: Option<String>,
    /// Fields every live record must have (not null): creates and replacements without them
    /// answer 422.
    pub required: Vec<String>,
    /// Fields unique among live records (422 on a duplicate).
    pub unique: Vec<String>,
    pub pages: Pages,
}

impl Default for ResourceProfile {
    fn default() -> Self {
        ResourceProfile {
            path: String::new(),
            ids: IdKind::default(),
            id_field: "id".into(),
            also_numeric_id: false,
            reuse_ids: false,
            records: "/data".into(),
            record: String::new(),
            wrap: None,
            timestamps: TimeFormat::default(),
            updated_at: "updated_at".into(),
            created_at: "created_at".into(),
            null_updated_on_insert: false,
            missing_status: 404,
            delete: DeleteKind::default(),
            tombstone: "deleted_at".into(),
            deleted_log: None,
            update: UpdateKind::default(),
            since_param: None,
            sort_param: None,
            filters: None,
            search_path: None,
            required: Vec::new(),
            unique: Vec::new(),
            pages: Pages::default(),
        }
    }
}

impl ResourceProfile {
    /// The fields the sim maintains (ignored when clients send them).
    pub fn maintained(&self) -> Vec<&str> {
        let mut out = vec![
            self.id_field.as_str(),
            self.created_at.as_str(),
            self.updated_at.as_str(),
        ];
        if self.also_numeric_id {
            out.push("id");
        }
        if self.delete == DeleteKind::Tombstone {
            out.push(self.tombstone.as_str());
        }
        out
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PageStyle {
    /// `?offset=100&limit=50`.
    Offset,
    /// `?page=3&limit=50`.
    Page,
    /// An opaque cursor in the body (or a header), passed back as `?cursor=`.
    #[default]
    Cursor,
    /// The absolute URL of the next page in the body.
    NextUrl,
    /// RFC 8288 `Link: <…>; rel="next"`.
    Link,
    /// One answer has everything.
    None,
}

/// `[resources.<name>.pages]`: how lists page.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Pages {
    pub style: PageStyle,
    /// The page-size parameter (default `limit`).
    pub size_param: String,
    pub default_size: usize,
    /// Larger sizes asked for are capped to this.
    pub max_size: usize,
    /// The offset / page / cursor parameter (defaults `offset`, `page`, `cursor`).
    pub param: Option<String>,
    /// `page`: the first page's number.
    pub first_page: u64,
    /// `cursor`: pointer of the next cursor in the body (default `/next_cursor` unless
    /// `cursor_header` is set); null on the last page.
    pub cursor: Option<String>,
    /// `cursor`: the header carrying the next cursor (absent on the last page).
    pub cursor_header: Option<String>,
    /// `next_url`: pointer of the next page's URL (default `/next`); null at the end.
    pub next: Option<String>,
    /// Pointer of a has-more flag.
    pub has_more: Option<String>,
    /// Pointer of the count of matching records.
    pub total: Option<String>,
    /// The last page claims more; the page after it is empty and says no more.
    pub has_more_lies: bool,
    /// The last page's next cursor / URL repeats the request's own (a loop).
    pub repeat_cursor: bool,
    /// Accepted, changes nothing: a last page that is exactly full always works (the next
    /// request answers an empty page).
    pub exact_last_page: bool,
}

impl Default for Pages {
    fn default() -> Self {
        Pages {
            style: PageStyle::default(),
            size_param: "limit".into(),
            default_size: 50,
            max_size: 100,
            param: None,
            first_page: 1,
            cursor: None,
            cursor_header: None,
            next: None,
            has_more: None,
            total: None,
            has_more_lies: false,
            repeat_cursor: false,
            exact_last_page: false,
        }
    }
}

impl Pages {
    /// The position parameter (none for `style = "none"`).
    pub fn param(&self) -> Option<&str> {
        let default = match self.style {
            PageStyle::None => return None,
            PageStyle::Offset => "offset",
            PageStyle::Page => "page",
            _ => "cursor",
        };
        Some(self.param.as_deref().unwrap_or(default))
    }

    /// Whether the position is an opaque token the sim hands out (cursor, next_url, link).
    pub fn tokens(&self) -> bool {
        matches!(
            self.style,
            PageStyle::Cursor | PageStyle::NextUrl | PageStyle::Link
        )
    }

    /// `cursor` style: where the next cursor goes in the body, if anywhere.
    pub fn cursor_pointer(&self) -> Option<&str> {
        if self.style != PageStyle::Cursor {
            return None;
        }
        match (&self.cursor, &self.cursor_header) {
            (Some(p), _) => Some(p),
            (None, None) => Some("/next_cursor"),
            (None, Some(_)) => None,
        }
    }

    /// `next_url` style: where the next page's URL goes.
    pub fn next_pointer(&self) -> Option<&str> {
        (self.style == PageStyle::NextUrl).then(|| self.next.as_deref().unwrap_or("/next"))
    }
}

impl Profile {
    /// Reads a profile from TOML text and checks it.
    pub fn parse(text: &str) -> Result<Profile, String> {
        let profile: Profile = toml::from_str(text).map_err(|e| format!("profile: {e}"))?;
        profile.check()?;
        Ok(profile)
    }

    /// Reads and checks the profile file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading profile {}: {e}", path.display()))?;
        Profile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn resource(&self, name: &str) -> Option<&ResourceProfile> {
        self.resources.get(name)
    }

    /// The rate limit as (requests, window); None = unlimited.
    pub fn rate_limit(&self) -> Result<Option<(u32, Duration)>, String> {
        match self.rate_limit.as_deref() {
            None => Ok(None),
            Some(spec) => crate::sim::core::budget::limit_arg(spec).map_err(|e| e.to_string()),
        }
    }
}
