//! WeCom's (企业微信) errcodes of `gettoken` and its ticket calls: its own
//! table, since the same numbers mean other things at WeChat (40001 is a
//! wrong secret here, a rejected token there).

use super::{Errcode, ErrorClass, e};
use ErrorClass::{Bug, Configuration, Quota, Transient};

/// Every WeCom errcode of the token and ticket endpoints tokenvault knows.
pub const WECOM_ERRCODES: &[Errcode] = &[
    e(
        -1,
        Transient,
        "WeCom is busy.",
        "系统繁忙。",
        "Nothing to do: tokenvault retries with backoff.",
        "无需操作：tokenvault 会自动退避重试。",
    ),
    e(
        40001,
        Configuration,
        "The Secret is wrong (不合法的secret参数).",
        "不合法的 secret 参数。",
        "Copy the app's Secret again from the WeCom admin console (应用管理 → the app → Secret) and replace it here; each app has its own Secret.",
        "请在企业微信管理后台（应用管理 → 该应用 → Secret）重新复制 Secret 并在此替换；每个应用的 Secret 各不相同。",
    ),
    e(
        40013,
        Configuration,
        "The corpid is wrong (不合法的CorpID).",
        "不合法的 CorpID。",
        "Copy the corpid from the WeCom admin console (我的企业 → 企业信息 → 企业ID) and register the app again.",
        "请在企业微信管理后台（我的企业 → 企业信息 → 企业ID）复制 corpid 后重新注册该应用。",
    ),
    e(
        40014,
        Transient,
        "The access_token is not valid (it was replaced or ended early).",
        "不合法的 access_token（已被替换或提前失效）。",
        "Nothing to do: tokenvault fetches a new token and retries.",
        "无需操作：tokenvault 会获取新的 token 后重试。",
    ),
    e(
        40056,
        Configuration,
        "The AgentId is wrong (不合法的agentid).",
        "不合法的 agentid。",
        "Check the app's AgentId in the WeCom admin console (应用管理 → the app).",
        "请在企业微信管理后台（应用管理 → 该应用）核对 AgentId。",
    ),
    e(
        40091,
        Configuration,
        "The Secret is not valid (it may have been reset).",
        "secret 不合法（可能已被重置）。",
        "Copy the app's current Secret from the WeCom admin console and replace it here.",
        "请在企业微信管理后台复制该应用当前的 Secret 并在此替换。",
    ),
    e(
        41002,
        Bug,
        "The corpid parameter is missing.",
        "缺少 corpid 参数。",
        "A bug in tokenvault's request: report it.",
        "tokenvault 的请求有误，请报告此问题。",
    ),
    e(
        41004,
        Bug,
        "The corpsecret parameter is missing.",
        "缺少 secret 参数。",
        "A bug in tokenvault's request: report it.",
        "tokenvault 的请求有误，请报告此问题。",
    ),
    e(
        42001,
        Transient,
        "The access_token has expired.",
        "access_token 已过期。",
        "Nothing to do: tokenvault fetches a new token and retries.",
        "无需操作：tokenvault 会获取新的 token 后重试。",
    ),
    e(
        45009,
        Quota,
        "WeCom's call limit for this API is reached.",
        "接口调用超过限制。",
        "tokenvault waits before asking again. If something else fetches tokens with this Secret, stop it.",
        "tokenvault 会等待后再请求。如有其他系统也在用该 Secret 获取 token，请停用它。",
    ),
    e(
        48002,
        Configuration,
        "The app may not call this API (API接口无权限调用).",
        "API 接口无权限调用。",
        "Grant the app the permission in the WeCom admin console, or turn the ticket off.",
        "请在企业微信管理后台为该应用开通权限，或关闭该 ticket。",
    ),
    e(
        60020,
        Configuration,
        "tokenvault's address is not among the app's trusted IPs (不安全的访问IP).",
        "访问 IP 不在应用的可信 IP 列表中。",
        "Add tokenvault's outgoing IP addresses to the app's trusted IPs (应用管理 → the app → 企业可信IP).",
        "请将 tokenvault 的出口 IP 加入该应用的企业可信 IP（应用管理 → 该应用 → 企业可信IP）。",
    ),
];

/// What a WeCom errcode means, if tokenvault knows it.
pub fn explain(code: i64) -> Option<&'static Errcode> {
    WECOM_ERRCODES.iter().find(|e| e.code == code)
}

/// The class of a WeCom errcode; unknown codes are transient (retried with
/// backoff), as for WeChat.
pub fn classify(code: i64) -> ErrorClass {
    explain(code).map_or(Transient, |e| e.class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wecom_codes_are_its_own() {
        assert_eq!(classify(40001), Configuration);
        assert!(explain(40001).unwrap().meaning_en.contains("Secret"));
        assert_eq!(classify(60020), Configuration);
        assert_eq!(classify(42001), Transient);
        assert_eq!(classify(45009), Quota);
        assert_eq!(classify(123_456), Transient);
        let mut codes: Vec<i64> = WECOM_ERRCODES.iter().map(|e| e.code).collect();
        codes.dedup();
        assert_eq!(codes.len(), WECOM_ERRCODES.len(), "sorted, no duplicates");
    }
}
