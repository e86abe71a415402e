//! A browser-like client of the service (cookie jar, CSRF token), the test
//! accounts' password, and the calls most tests start with.

/// Sign up a new organisation on the service at `address`; returns its
/// owner's browser, signed in.
pub async fn signup_at(address: &str, org: &str, email: &str) -> Browser {
    let body = serde_json::json!({ "organization": org, "email": email, "password": PASSWORD });
    Browser::new(address)
        .start_session("/api/v1/signup", &body, 201)
        .await
}

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// A client with a cookie jar and the CSRF token of its session (a clone
/// shares the jar: the same session).
#[derive(Clone)]
pub struct Browser {
    /// Base URL.
    pub address: String,
    /// The client (cookie store on).
    pub client: reqwest::Client,
    /// CSRF token of the current session.
    pub csrf: String,
}

impl Browser {
    /// A browser for the service at `address`: its own cookie jar, signed out.
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_string(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("client"),
            csrf: String::new(),
        }
    }

    /// POST `body` to a call that starts a session (sign-up, sign-in, joining),
    /// expect `status`, and keep the session's CSRF token.
    pub(super) async fn start_session(
        mut self,
        path: &str,
        body: &serde_json::Value,
        status: u16,
    ) -> Self {
        let res = self.post_json(path, body).await;
        assert_eq!(
            res.status(),
            status,
            "{path} failed: {}",
            res.text().await.unwrap_or_default()
        );
        let answer: serde_json::Value = res.json().await.expect("json");
        self.csrf = answer["csrf_token"]
            .as_str()
            .expect("csrf token")
            .to_string();
        self
    }
    /// GET.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// A request with the session's CSRF header, as state changes need.
    fn with_csrf(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .header("X-CSRF-Token", &self.csrf)
    }

    /// POST JSON with the CSRF header.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        let req = self.with_csrf(reqwest::Method::POST, path).json(body);
        req.send().await.expect("request")
    }

    /// PATCH JSON with the CSRF header.
    pub async fn patch_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        let req = self.with_csrf(reqwest::Method::PATCH, path).json(body);
        req.send().await.expect("request")
    }

    /// DELETE with the CSRF header.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        let req = self.with_csrf(reqwest::Method::DELETE, path);
        req.send().await.expect("request")
    }

    /// Create an API key; returns the JSON answer (with the key).
    pub async fn create_key(&self, body: serde_json::Value) -> serde_json::Value {
        let res = self.post_json("/api/v1/api-keys", &body).await;
        assert_eq!(
            res.status(),
            201,
            "create key: {}",
            res.text().await.unwrap_or_default()
        );
        res.json().await.expect("json")
    }
}

/// The pre-session token (login CSRF) of a page's signed-out form.
pub fn login_token_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("name=\"login_token\" value=\"")
        .expect("a login_token field");
    rest.split('"').next().unwrap().to_string()
}

/// Open `page` with `client` (which keeps cookies) for its pre-session
/// token, then POST `fields` and that token to `action`, as a browser
/// sends a signed-out form (sign-in, sign-up, reset, joining).
pub async fn post_signed_out_form(
    client: &reqwest::Client,
    address: &str,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = client
        .get(format!("{address}{page}"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("page");
    let token = login_token_of(&html);
    let mut fields = fields.to_vec();
    fields.push(("login_token", &token));
    client
        .post(format!("{address}{action}"))
        .form(&fields)
        .send()
        .await
        .expect("request")
}

/// GET `path` on `address` with an API key.
pub async fn get_with_key(address: &str, path: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{address}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
}

/// Ask for "refresh now" of `appid` until it is tried: a refusal (429, "refresh
/// now" went past a retry time moments ago) waits its `Retry-After`.
pub async fn refresh_now(owner: &Browser, appid: &str) -> reqwest::Response {
    loop {
        let res = owner
            .post_json(
                &format!("/api/v1/apps/{appid}/refresh"),
                &serde_json::json!({}),
            )
            .await;
        if res.status() != 429 {
            return res;
        }
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}
