//! A person's mails are in their language: the page language they signed
//! up or joined in (or the API body's `language`), changed on the account
//! page. Over real HTTP, PostgreSQL and a real SMTP server.

use base64::Engine as _;
use serde_json::json;

use crate::account_security::{app_with_sink, link_token};
use crate::helpers::{Browser, PASSWORD};

const ZH_SUBJECT: &str = "验证您在 tokenvault 的邮箱地址";
const ZH_BODY: &str = "请确认此地址属于您的 tokenvault 账户";
const EN_SUBJECT: &str = "Verify your email address for tokenvault";

/// `message` with its base64 and quoted-printable parts and its encoded
/// header words decoded (enough to read a mail's words).
fn readable(message: &str) -> String {
    let mut out = String::new();
    let mut encoding = "";
    let mut in_body = false;
    let mut chunk = String::new();
    let flush = |out: &mut String, chunk: &mut String, encoding: &str| {
        let decoded = match encoding {
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(chunk.replace(['\r', '\n'], ""))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            "quoted-printable" => quoted_printable(chunk),
            _ => chunk.clone(),
        };
        out.push_str(&decoded);
        chunk.clear();
    };
    for line in message.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.starts_with("--") {
            flush(&mut out, &mut chunk, encoding);
            in_body = false;
            encoding = "";
        } else if in_body {
            chunk.push_str(line);
            chunk.push('\n');
        } else if line.is_empty() {
            in_body = true;
        } else {
            let lower = line.to_ascii_lowercase();
            if let Some(e) = lower.strip_prefix("content-transfer-encoding: ") {
                encoding = if e.trim() == "base64" {
                    "base64"
                } else if e.trim() == "quoted-printable" {
                    "quoted-printable"
                } else {
                    ""
                };
            }
            out.push_str(&encoded_words(line));
            out.push('\n');
        }
    }
    flush(&mut out, &mut chunk, encoding);
    out
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A header line with its `=?utf-8?b?…?=` words decoded.
fn encoded_words(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let word = &rest[start + 2..];
        let parts: Vec<&str> = word.splitn(3, '?').collect();
        let Some(end) = parts.get(2).and_then(|p| p.find("?=")) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let payload = &parts[2][..end];
        let decoded = if parts[1].eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD
                .decode(payload)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        } else {
            quoted_printable(&payload.replace('_', " "))
        };
        out.push_str(&decoded);
        rest = &parts[2][end + 2..];
        rest = rest.trim_start();
    }
    out.push_str(rest);
    out
}

/// Sign up on the page, reading it in `lang` (the form's pre-session token
/// fetched first, as a browser has it).
async fn signup_on_page(address: &str, lang: &str, email: &str) -> reqwest::Response {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("lang={lang}"), &address.parse().expect("address"));
    let client = reqwest::Client::builder()
        .cookie_provider(jar)
        .build()
        .expect("client");
    crate::helpers::post_signed_out_form(
        &client,
        address,
        "/signup",
        "/signup",
        &[
            ("organization", "语言 Org"),
            ("email", email),
            ("password", PASSWORD),
        ],
    )
    .await
}

#[tokio::test]
async fn a_chinese_sign_up_gets_its_verification_mail_in_chinese() {
    let Some((sink, app)) = app_with_sink().await else {
        return;
    };
    let res = signup_on_page(&app.address, "zh-CN", "zh@lang.test").await;
    assert!(res.status().is_success(), "{}", res.status());
    let mail = readable(&sink.wait_for(1).await[0]);
    assert!(mail.contains(ZH_SUBJECT), "{mail}");
    assert!(mail.contains(ZH_BODY), "{mail}");
    assert!(!mail.contains(EN_SUBJECT));

    // The API: English unless the body names a language.
    let en = app.signup("English Org", "en@lang.test").await;
    let mails = sink.wait_for(2).await;
    assert!(readable(&mails[1]).contains(EN_SUBJECT));
    let res = Browser::new(&app.address)
        .post_json(
            "/api/v1/signup",
            &json!({ "organization": "Api Org", "email": "api@lang.test",
                     "password": PASSWORD, "language": "zh-CN" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mails = sink.wait_for(3).await;
    assert!(readable(&mails[2]).contains(ZH_SUBJECT));
    let res = Browser::new(&app.address)
        .post_json(
            "/api/v1/signup",
            &json!({ "organization": "Bad Org", "email": "bad@lang.test",
                     "password": PASSWORD, "language": "fr" }),
        )
        .await;
    assert_eq!(res.status(), 422, "an unknown language is refused");

    // On the account page, the English owner chooses Chinese: the next
    // mail is in Chinese, and its link works.
    let res = en
        .client
        .post(format!("{}/account/language", en.address))
        .form(&[("csrf_token", en.csrf.as_str()), ("language", "zh-CN")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<option value=\"zh-CN\" selected"), "{html}");
    let res = en.post_json("/api/v1/email-verification", &json!({})).await;
    assert_eq!(res.status(), 202);
    let mails = sink.wait_for(4).await;
    let mail = readable(&mails[3]);
    assert!(mail.contains(ZH_SUBJECT), "{mail}");
    assert!(mail.contains("X-Envelope-To: en@lang.test"));
    let token = link_token(&mail, "verify-email");
    let res = app
        .browser()
        .post_json(
            "/api/v1/email-verification/confirm",
            &json!({ "token": token }),
        )
        .await;
    assert_eq!(res.status(), 204);
}

#[test]
fn the_decoder_reads_both_encodings() {
    assert_eq!(
        encoded_words("Subject: =?utf-8?b?5L2g5aW9?="),
        "Subject: 你好"
    );
    assert_eq!(quoted_printable("a=3Db=\nc"), "a=bc");
    let message = "Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\n5L2g5aW9\r\n--b--\r\n";
    assert!(readable(message).contains("你好"));
}
