//! WeChat's token errcodes: what each means, how tokenvault treats it, and
//! the fix to show the app's owner — in English and Chinese.

pub mod wecom;

use serde::Serialize;

use super::FetchFailure;
use crate::domain::AppKind;
pub use crate::domain::ErrorClass;

/// One errcode explained.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Errcode {
    /// WeChat's errcode.
    pub code: i64,
    /// How tokenvault treats it.
    pub class: ErrorClass,
    /// What it means, in English.
    pub meaning_en: &'static str,
    /// What it means, in Chinese.
    pub meaning_zh: &'static str,
    /// What to do, in English.
    pub fix_en: &'static str,
    /// What to do, in Chinese.
    pub fix_zh: &'static str,
}

const fn e(
    code: i64,
    class: ErrorClass,
    meaning_en: &'static str,
    meaning_zh: &'static str,
    fix_en: &'static str,
    fix_zh: &'static str,
) -> Errcode {
    Errcode {
        code,
        class,
        meaning_en,
        meaning_zh,
        fix_en,
        fix_zh,
    }
}

use ErrorClass::{Bug, Configuration, Quota, Transient};

/// Every errcode of the token endpoints that tokenvault knows.
pub const ERRCODES: &[Errcode] = &[
    e(
        -1,
        Transient,
        "WeChat is busy.",
        "系统繁忙。",
        "Nothing to do: tokenvault retries with backoff.",
        "无需操作：tokenvault 会自动退避重试。",
    ),
    e(
        40001,
        Configuration,
        "The AppSecret is wrong or does not belong to this AppID.",
        "AppSecret 错误，或不属于该 AppID。",
        "Copy the AppSecret again from the WeChat console (开发管理 → 开发设置) and replace it here. If you just reset it, enter the new one.",
        "请到微信公众平台（开发管理 → 开发设置）重新复制 AppSecret 并在此替换；如刚重置过，请填写新的 AppSecret。",
    ),
    e(
        40002,
        Bug,
        "grant_type must be client_credential.",
        "grant_type 必须为 client_credential。",
        "This is a tokenvault bug; please report it.",
        "这是 tokenvault 的缺陷，请反馈给我们。",
    ),
    e(
        40013,
        Configuration,
        "The AppID is not valid.",
        "AppID 无效。",
        "Check the AppID in the WeChat console and register the app again with the right one.",
        "请在微信公众平台核对 AppID，并用正确的 AppID 重新注册。",
    ),
    e(
        40125,
        Configuration,
        "The AppSecret is not valid.",
        "AppSecret 无效。",
        "Copy the AppSecret again from the WeChat console and replace it here.",
        "请到微信公众平台重新复制 AppSecret 并在此替换。",
    ),
    e(
        40164,
        Configuration,
        "tokenvault's IP address is not on the app's API IP whitelist.",
        "调用接口的 IP 地址不在白名单中。",
        "Add the IP address shown in the message to the IP whitelist in the WeChat console (开发管理 → 开发设置 → IP白名单).",
        "请将提示中的 IP 地址加入微信公众平台的 IP 白名单（开发管理 → 开发设置 → IP白名单）。",
    ),
    e(
        41002,
        Bug,
        "The appid parameter is missing.",
        "缺少 appid 参数。",
        "This is a tokenvault bug; please report it.",
        "这是 tokenvault 的缺陷，请反馈给我们。",
    ),
    e(
        41004,
        Bug,
        "The secret parameter is missing.",
        "缺少 secret 参数。",
        "This is a tokenvault bug; please report it.",
        "这是 tokenvault 的缺陷，请反馈给我们。",
    ),
    e(
        45009,
        Quota,
        "The daily call quota of the token API is used up.",
        "接口调用超过每日限额。",
        "tokenvault waits until the quota resets. If something else fetches tokens for this app, stop it; you can also clear the quota in the WeChat console.",
        "tokenvault 会等待额度重置。如有其他系统也在为该应用获取 token，请停用它；也可在微信公众平台清零调用次数。",
    ),
    e(
        45011,
        Quota,
        "Calls are too frequent (per-minute limit).",
        "API 调用太频繁，请稍候再试。",
        "Nothing to do: tokenvault waits for the next minute.",
        "无需操作：tokenvault 会等待下一分钟再试。",
    ),
    e(
        50004,
        Configuration,
        "This account may not use the token API.",
        "禁止使用 token 接口。",
        "Check the account's status and permissions in the WeChat console.",
        "请在微信公众平台检查账号状态与接口权限。",
    ),
    e(
        50007,
        Configuration,
        "The account is frozen.",
        "账号已冻结。",
        "Unfreeze the account in the WeChat console first.",
        "请先在微信公众平台解冻账号。",
    ),
    e(
        61024,
        Configuration,
        "This app is managed by a third-party platform, which must use its own token API.",
        "该账号已授权给第三方平台，需使用第三方平台的接口获取 token。",
        "Fetch tokens through the third-party platform, or remove its authorisation.",
        "请通过第三方平台获取 token，或取消对第三方平台的授权。",
    ),
    e(
        89501,
        Configuration,
        "An administrator must still confirm this IP address.",
        "此 IP 正在等待管理员确认。",
        "Ask the account administrator to confirm the IP in the WeChat console or the notification on their phone.",
        "请联系管理员在微信公众平台或手机通知中确认该 IP。",
    ),
    e(
        89503,
        Configuration,
        "This IP address needs an administrator's confirmation.",
        "此 IP 调用需要管理员确认。",
        "Ask the account administrator to confirm the IP in the WeChat console.",
        "请联系管理员在微信公众平台确认该 IP。",
    ),
    e(
        89506,
        Configuration,
        "An administrator refused this IP address.",
        "该 IP 已被管理员拒绝调用。",
        "Ask the administrator to allow it, or add it to the IP whitelist; after 24 hours it can be confirmed again.",
        "请联系管理员允许该 IP，或将其加入 IP 白名单；24 小时后可再次申请确认。",
    ),
    e(
        89507,
        Configuration,
        "This IP address is locked after repeated refusals.",
        "该 IP 因多次被拒绝已被锁定。",
        "Add the IP to the whitelist in the WeChat console, or wait until the lock ends.",
        "请将该 IP 加入微信公众平台的白名单，或等待锁定结束。",
    ),
];

/// WeChat's explanation of `code`, if it is known (every explanation goes
/// through [`explain_for`], which chooses the app kind's table).
fn explain(code: i64) -> Option<&'static Errcode> {
    ERRCODES.iter().find(|e| e.code == code)
}

/// What an errcode means and what to do, in both languages, as answers
/// carry it (`explanation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    /// What it means, in English.
    pub meaning_en: &'static str,
    /// What it means, in Chinese.
    pub meaning_zh: &'static str,
    /// What to do, in English.
    pub fix_en: &'static str,
    /// What to do, in Chinese.
    pub fix_zh: &'static str,
}

/// What `code` means for an app of `kind`: the one place an errcode is
/// explained (each platform has its table, and the numbers overlap: 40001
/// is a rejected token at WeChat, a wrong secret at WeCom). The 503 reason
/// of a read, API and page explanations, registration checks, alerts and
/// ticket failures all go through it.
pub fn explain_for(kind: AppKind, code: i64) -> Option<&'static Errcode> {
    match kind {
        AppKind::Wechat => explain(code),
        AppKind::Wecom => wecom::explain(code),
    }
}

/// The explanation of `errcode` for an app of `kind`.
pub fn explanation_for(kind: AppKind, errcode: Option<i64>) -> Option<Explanation> {
    errcode
        .and_then(|c| explain_for(kind, c))
        .map(|e| Explanation {
            meaning_en: e.meaning_en,
            meaning_zh: e.meaning_zh,
            fix_en: e.fix_en,
            fix_zh: e.fix_zh,
        })
}

/// Why a fetch for an app failed, in a sentence for people (the `reason` of
/// a 503): `what` is the credential asked for ("token", "ticket"), the
/// errcode explained by the table of the platform that answered.
pub fn refused(f: &FetchFailure, what: &str) -> String {
    let platform = f.platform.platform();
    match f.errcode.map(|c| (c, explain_for(f.platform, c))) {
        Some((_, Some(e))) => format!("{platform} refused the {what} request: {}", e.meaning_en),
        Some((code, None)) => format!("{platform} refused the {what} request: errcode {code}"),
        None => format!("the {what} request failed: {}", f.errmsg),
    }
}

/// The kind of the app whose id is `appid` (as stored: always well-formed).
pub fn kind_of(appid: &str) -> AppKind {
    crate::domain::AppId::parse("appid", appid).map_or(AppKind::Wechat, |a| a.kind())
}

/// The class of an errcode; unknown codes are treated as transient (retried
/// with backoff) and logged, so a new WeChat code never stops refreshes for good.
pub fn classify(code: i64) -> ErrorClass {
    explain(code).map_or(Transient, |e| e.class)
}

/// Does `code`, answered to a call made with an access token (a ticket
/// fetch), say the token itself is no good (40001 superseded or wrong,
/// 40014 unknown, 42001 expired)? Then the token is refreshed first and
/// the call tried again with the new one.
pub fn rejects_token(code: i64) -> bool {
    matches!(code, 40001 | 40014 | 42001)
}

/// The class of an errcode answered to a ticket call: a rejected token is
/// transient (the token is refreshed, then the ticket), the rest as for
/// tokens.
pub fn classify_ticket(code: i64) -> ErrorClass {
    if rejects_token(code) {
        Transient
    } else {
        classify(code)
    }
}

/// [`rejects_token`] for an app of `kind`: at WeCom 40001 is a wrong
/// secret, and only 40014 (invalid) and 42001 (expired) reject a token.
pub fn rejects_token_for(kind: AppKind, code: i64) -> bool {
    match kind {
        AppKind::Wechat => rejects_token(code),
        AppKind::Wecom => matches!(code, 40014 | 42001),
    }
}

/// [`classify_ticket`] for an app of `kind`.
pub fn classify_ticket_for(kind: AppKind, code: i64) -> ErrorClass {
    match kind {
        AppKind::Wechat => classify_ticket(code),
        AppKind::Wecom => wecom::classify(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_token_is_transient_for_tickets() {
        for code in [40001, 40014, 42001] {
            assert!(rejects_token(code));
            assert_eq!(classify_ticket(code), Transient);
        }
        assert!(!rejects_token(45009));
        assert_eq!(classify_ticket(45009), Quota);
    }

    #[test]
    fn every_row_of_the_api_table_has_its_class() {
        let expected = [
            (-1, Transient),
            (40001, Configuration),
            (40002, Bug),
            (40013, Configuration),
            (40125, Configuration),
            (40164, Configuration),
            (41002, Bug),
            (41004, Bug),
            (45009, Quota),
            (45011, Quota),
            (50004, Configuration),
            (50007, Configuration),
            (61024, Configuration),
            (89501, Configuration),
            (89503, Configuration),
            (89506, Configuration),
            (89507, Configuration),
        ];
        for (code, class) in expected {
            assert_eq!(classify(code), class, "{code}");
            let info = explain(code).unwrap();
            assert!(
                !info.meaning_zh.is_empty() && !info.fix_zh.is_empty() && !info.fix_en.is_empty()
            );
        }
        assert_eq!(ERRCODES.len(), expected.len());
        assert_eq!(classify(99999), Transient);
    }

    #[test]
    fn a_failure_is_explained_by_the_platform_that_answered() {
        let failure = |platform, errcode| FetchFailure {
            class: Configuration,
            errcode: Some(errcode),
            errmsg: "invalid".into(),
            outcome_unknown: false,
            platform,
        };
        let wecom = refused(&failure(AppKind::Wecom, 40001), "token");
        assert!(
            wecom.starts_with("WeCom refused the token request: The Secret is wrong"),
            "{wecom}"
        );
        let corpid = refused(&failure(AppKind::Wecom, 40013), "ticket");
        assert!(corpid.starts_with("WeCom refused the ticket request: The corpid is wrong"));
        let wechat = refused(&failure(AppKind::Wechat, 40001), "token");
        assert!(wechat.starts_with("WeChat refused the token request: The AppSecret is wrong"));
        assert_eq!(
            refused(&failure(AppKind::Wecom, 99_999), "ticket"),
            "WeCom refused the ticket request: errcode 99999"
        );
        let e = explanation_for(AppKind::Wecom, Some(40013)).unwrap();
        assert!(e.meaning_zh.contains("CorpID"));
    }
}
