//! REST connector, configuration edge: the shape of a `kind = "rest"` connection in
//! `ferry.toml` — how it signs in (`[connections.<name>.auth]`), each resource's endpoints,
//! body shapes, pagination and change feed (`[connections.<name>.resources.<object>]`) and
//! how its webhooks are verified and routed (`[connections.<name>.webhook]`). Every key has a
//! default fitting the most common JSON API shape, so a small app needs a few lines.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// How requests are signed in. The secret (token, key, password or client secret) is read
/// from the connection's `token_env`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default)]
    pub kind: AuthKind,
    /// `header`: the header carrying the key (`X-API-Key`); `query`: the parameter name
    /// (`api_key`); `login`: the header the session token goes in (`Authorization`).
    pub name: Option<String>,
    /// Text before the secret in the header (`login`: `Bearer ` by default; `header`: none).
    pub prefix: Option<String>,
    /// `basic` and `login`: the user name; `client_credentials`: the client id.
    pub username: Option<String>,
    /// `client_credentials`: the token endpoint (a path under `base_url` or a full URL);
    /// `login`: the login call's path.
    pub url: Option<String>,
    /// `client_credentials`: the scope asked for, if any.
    pub scope: Option<String>,
    /// `login`: the JSON body sent; `{username}` and `{secret}` in its strings are replaced.
    /// Default `{"username": "{username}", "password": "{secret}"}`.
    pub body: Option<toml::Table>,
    /// `login`: a JSON pointer to the session token in the answer (default `/token`).
    pub token: Option<String>,
    /// `login`: how long a session lasts when the answer does not say (`expires_in`);
    /// default 30 minutes. The session is renewed on a 401 too.
    pub ttl: Option<String>,
    /// `login` and `client_credentials`: a JSON pointer to the session's lifetime in the
    /// answer (default `/expires_in`), in `expires_unit`.
    pub expires: Option<String>,
    /// `s` (default) or `ms` (Directus' `/data/expires`).
    #[serde(default)]
    pub expires_unit: ExpiresUnit,
}

/// `auth.expires_unit`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum ExpiresUnit {
    #[default]
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "ms")]
    Milliseconds,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// `Authorization: Bearer <secret>`.
    #[default]
    Bearer,
    /// The secret in the header `name`, after `prefix`.
    Header,
    /// The secret in the query parameter `name`.
    Query,
    /// HTTP basic with `username` and the secret as password.
    Basic,
    /// OAuth 2.0 client credentials at `url`: client id `username`, client secret the secret.
    ClientCredentials,
    /// A login call at `url` whose answer holds a session token.
    Login,
}

/// One resource (a mapping's `object`): a collection of records under `path`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The collection (`/contacts`): listed with GET, created into with POST.
    pub path: String,
    /// The listing's path when it is not `path` (a search endpoint taking its cursor and
    /// filters in a JSON body: `pages.cursor_in_body`).
    pub list_path: Option<String>,
    /// One record; `{id}` is replaced (default `{path}/{id}`).
    pub item_path: Option<String>,
    /// Property path of the record's id in a record (default `id`); numbers and strings both.
    #[serde(default = "default_id")]
    pub id: String,
    /// Property path of the last-modified time (default `updated_at`); RFC 3339, or Unix
    /// seconds / milliseconds as numbers.
    #[serde(default = "default_updated_at")]
    pub updated_at: String,
    /// Property path of the creation time, read when `updated_at` is null (default
    /// `created_at`).
    #[serde(default = "default_created_at")]
    pub created_at: String,
    /// JSON pointer to the records in a list answer (`/data`); empty: the body is the array.
    #[serde(default)]
    pub records: String,
    /// JSON pointer to the record in a single answer (get, create, update); empty: the body.
    #[serde(default)]
    pub record: String,
    /// Write bodies wrapped in this key (`data` → `{"data": {...}}`); unset: bare.
    pub wrap: Option<String>,
    /// Static query parameters of every list call (`{ include = "all" }`).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Property path of a tombstone: a record where it is true or a time is a deletion.
    pub deleted: Option<String>,
    /// A deleted-records feed: a listing of the records deleted since a time, read by each
    /// change poll after the changed records.
    pub deletions: Option<Deletions>,
    #[serde(default)]
    pub pages: Pages,
    #[serde(default)]
    pub changes: Changes,
    #[serde(default)]
    pub update: Update,
    /// How records are found by a property's value (exact creates after a crash).
    pub find: Option<Find>,
    /// Statuses of a get that mean the record is gone (default 404 and 410; some apps
    /// answer 403).
    #[serde(default = "default_gone")]
    pub gone: Vec<u16>,
    /// The app gives a deleted record's id to a new record: ferry keys each record by its id
    /// and creation time (`created_at` must be in every record) so a new record never lands on
    /// the hub row of the old one, and checks the creation time before each update or delete.
    #[serde(default)]
    pub reused_ids: bool,
    /// Whether ferry writes this resource (default true).
    #[serde(default = "yes")]
    pub writable: bool,
}

/// How a listing pages.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pages {
    #[serde(default)]
    pub style: PageStyle,
    /// Records asked for per page (default 100).
    #[serde(default = "default_page_size")]
    pub size: usize,
    /// The page-size parameter (default `limit`; empty: not sent).
    #[serde(default = "default_size_param")]
    pub size_param: String,
    /// `offset`: the offset parameter (default `offset`); `page`: the page-number parameter
    /// (default `page`); `cursor`: the cursor parameter (default `cursor`).
    pub param: Option<String>,
    /// `page`: the first page's number (default 1).
    #[serde(default = "default_first_page")]
    pub first_page: u64,
    /// `cursor`: a JSON pointer to the next cursor in the body (default `/next_cursor`).
    pub cursor: Option<String>,
    /// `cursor`: read the next cursor from this response header instead.
    pub cursor_header: Option<String>,
    /// Send the page parameters (and the change filter) in the JSON body of a POST to
    /// `list_path` (`{"cursor": …, "limit": …}`) instead of the query of a GET.
    #[serde(default)]
    pub cursor_in_body: bool,
    /// `next_url`: a JSON pointer to the next page's URL (default `/next`).
    pub next: Option<String>,
    /// A JSON pointer to a has-more flag; false stops.
    pub has_more: Option<String>,
    /// A JSON pointer to the total count; reaching it stops.
    pub total: Option<String>,
    /// Pages read in one listing at most (a guard against pages that never end).
    #[serde(default = "default_max_pages")]
    pub max_pages: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PageStyle {
    /// `?offset=200&limit=100`.
    Offset,
    /// `?page=3&limit=100`.
    Page,
    /// `?cursor=<from the previous page>`.
    #[default]
    Cursor,
    /// The previous page names the next page's URL.
    NextUrl,
    /// RFC 8288 `Link: <…>; rel="next"`.
    Link,
    /// One call returns everything.
    None,
}

/// How ferry asks for the records changed since its last poll.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    #[serde(default)]
    pub style: ChangeStyle,
    /// `filter`: the query parameter taking the lower bound (`updated_since`; the app must
    /// compare with `>=`).
    pub param: Option<String>,
    /// How the bound is written: `rfc3339` (default), `unix`, `unix_ms`.
    #[serde(default)]
    pub format: TimeFormat,
    /// Extra query parameters of change polls (`{ sort = "-updated_at" }` for `newest_first`);
    /// `{since}` in a value is the lower bound (for a filter that names it more than once,
    /// as an `_or` of the update and creation times).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStyle {
    /// A list filtered on updated-at `>=` the watermark (minus the overlap window).
    Filter,
    /// A list sorted newest first, read until a record older than the watermark.
    NewestFirst,
    /// No change feed: changes come by webhook and the reconcile.
    #[default]
    None,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// `2024-05-01T10:00:00.000Z`.
    #[default]
    Rfc3339,
    /// `2024-05-01T10:00:00Z` (GitHub's `since`).
    Rfc3339Seconds,
    Unix,
    UnixMs,
}

/// How an update is sent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// `PATCH` (default) or `PUT`.
    #[serde(default = "default_update_method")]
    pub method: String,
    /// Send the whole record (the app replaces it: read, merged, written) instead of only the
    /// changed fields.
    #[serde(default)]
    pub full: bool,
}

impl Default for Update {
    fn default() -> Self {
        Update {
            method: default_update_method(),
            full: false,
        }
    }
}

/// Finding records by a property: `GET {path}?{param}={value}` answering a list.
/// `[resources.<name>.deletions]`: where the app lists what was deleted (Zoho's
/// `/Leads/deleted`, a `/deleted_contacts` log). Paged like the resource's listing.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deletions {
    /// The listing (`/deleted_contacts`).
    pub path: String,
    /// JSON pointer to the entries in its answer (default: the resource's `records`).
    pub records: Option<String>,
    /// Property path of the deleted record's id in an entry (default `id`).
    #[serde(default = "default_id")]
    pub id: String,
    /// Property path of when it was deleted (default `deleted_at`); entries without one are
    /// applied all the same.
    #[serde(default = "default_deleted_at")]
    pub at: String,
    /// The query parameter taking the lower bound, as `changes.format` writes it (default:
    /// `changes.param`; neither: every entry at every poll).
    pub param: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Find {
    /// The property the engine matches creates on (the mapping's match key's property).
    pub property: String,
    /// The query parameter filtering on it (default: the property's name).
    pub param: Option<String>,
}

/// How webhook deliveries are verified and read.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    #[serde(default)]
    pub scheme: WebhookScheme,
    /// The header carrying the secret or signature (defaults: `secret` → `X-Webhook-Secret`,
    /// `hmac` → `X-Signature`, `jwt` → `Authorization`).
    pub header: Option<String>,
    /// `hmac`: `sha256` (default) or `sha512`.
    #[serde(default)]
    pub algorithm: HmacAlgorithm,
    /// `hmac`: `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: SignatureEncoding,
    /// `hmac`: text before the signature in the header (`sha256=`).
    #[serde(default)]
    pub prefix: String,
    /// `hmac`: what is signed; `{body}` is the raw body and `{timestamp}` the timestamp
    /// header's value (default `{body}`).
    #[serde(default = "default_signed")]
    pub signed: String,
    /// `hmac`: the header holding the timestamp (Unix seconds) named by `{timestamp}`.
    pub timestamp_header: Option<String>,
    /// How far a delivery's timestamp may be from now (default 5 minutes).
    pub tolerance: Option<String>,
    /// A JSON pointer to the events in the body (empty: the body is one event or an array).
    #[serde(default)]
    pub events: String,
    /// A JSON pointer, in an event, to the resource name (or use `resource`).
    pub resource_from: Option<String>,
    /// The resource every event is about when the event does not say.
    pub resource: Option<String>,
    /// A JSON pointer to the record's id in an event (default `/data/id`), or a list of them
    /// tried in order (Directus: `["/keys", "/key"]`); an array there names several records.
    #[serde(default, deserialize_with = "one_or_many")]
    pub id: Option<Vec<String>>,
    /// A JSON pointer to the event's own id (replays are dropped by it); `webhook-id` is read
    /// under the Standard Webhooks scheme.
    pub event_id: Option<String>,
    /// A header carrying the delivery's id (`X-GitHub-Delivery`), used as the event id when
    /// the event has none at `event_id`.
    pub event_id_header: Option<String>,
    /// A JSON pointer to the event type (default `/type`).
    #[serde(default = "default_event_type")]
    pub kind: String,
    /// Event types (or suffixes after a `.`: `deleted`) that are deletions.
    #[serde(default = "default_delete_types")]
    pub deletes: Vec<String>,
    /// What an event carries at the record's place (the object holding `id`): `ids`
    /// (default) or `changes` — ferry fetches the record — or `records`, the whole record
    /// after the change, which ferry applies without a fetch when that is safe.
    #[serde(default)]
    pub carries: Carries,
}

/// `webhook.carries`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Carries {
    #[default]
    Ids,
    Changes,
    Records,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookScheme {
    /// No verification (only for apps that sign nothing; a warning at start).
    None,
    /// A static secret in a header.
    Secret,
    /// HMAC of the body (or a template) in a header.
    #[default]
    Hmac,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`.
    Standard,
    /// A JWT (HS256) signed with the secret, in a header.
    Jwt,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    #[default]
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

impl Default for Pages {
    fn default() -> Self {
        Pages {
            style: PageStyle::default(),
            size: default_page_size(),
            size_param: default_size_param(),
            param: None,
            first_page: default_first_page(),
            cursor: None,
            cursor_header: None,
            cursor_in_body: false,
            next: None,
            has_more: None,
            total: None,
            max_pages: default_max_pages(),
        }
    }
}

impl Resource {
    /// The path of one record (`key`: ferry's key of it).
    pub fn item(&self, key: &str) -> String {
        let id = crate::connectors::wire::encode(super::record::app_id(self, key));
        match &self.item_path {
            Some(t) => t.replace("{id}", &id),
            None => format!("{}/{id}", self.path.trim_end_matches('/')),
        }
    }
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(ps) => ps,
    }))
}

impl Webhook {
    /// Where an event's record id may be, in order.
    pub fn id_pointers(&self) -> Vec<&str> {
        match &self.id {
            Some(ps) if !ps.is_empty() => ps.iter().map(String::as_str).collect(),
            _ => vec![super::webhook::DEFAULT_ID],
        }
    }

    pub fn tolerance(&self) -> Duration {
        self.tolerance
            .as_deref()
            .and_then(|t| crate::config::parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(300))
    }
}

fn default_id() -> String {
    "id".into()
}
fn default_deleted_at() -> String {
    "deleted_at".into()
}
fn default_updated_at() -> String {
    "updated_at".into()
}
fn default_created_at() -> String {
    "created_at".into()
}
fn default_gone() -> Vec<u16> {
    vec![404, 410]
}
fn yes() -> bool {
    true
}
fn default_page_size() -> usize {
    100
}
fn default_size_param() -> String {
    "limit".into()
}
fn default_first_page() -> u64 {
    1
}
fn default_max_pages() -> u64 {
    100_000
}
fn default_update_method() -> String {
    "PATCH".into()
}
fn default_signed() -> String {
    "{body}".into()
}
fn default_event_type() -> String {
    "/type".into()
}
fn default_delete_types() -> Vec<String> {
    vec!["deleted".into()]
}
