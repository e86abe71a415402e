"""wechatpy's WeCom (企业微信) client, unmodified, against tokenvault.

The installed wechatpy (1.8.x) names its WeCom client
`wechatpy.enterprise.WeChatClient` (later versions: `wechatpy.work`). Its
token URL is fixed, so the token comes through its extension point
(fetch_access_token, the corpsecret being a tokenvault API key limited to the
one WeCom app); its JS-SDK ticket calls (`jsapi.get_jsapi_ticket()`, the
company's, and `jsapi.get_agent_jsapi_ticket()`, the app's) go to
tokenvault's WeCom-compatible endpoints with that token. Run by run.sh with
TOKENVAULT_URL, WECHAT_URL (the simulator, standing in for
qyapi.weixin.qq.com), CORP_ID, WECOM_APP, WECOM_KEY and API_KEY.
"""

import os
import sys

import requests
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

TOKENVAULT_URL = os.environ["TOKENVAULT_URL"]
WECOM_URL = os.environ["WECHAT_URL"]
CORP_ID = os.environ["CORP_ID"]
WECOM_APP = os.environ["WECOM_APP"]
WECOM_KEY = os.environ["WECOM_KEY"]
API_KEY = os.environ["API_KEY"]


class TokenvaultWorkClient(WeChatClient):
    """WeCom client whose token comes from tokenvault (corpsecret = API key)."""

    # In production leave API_BASE_URL alone (https://qyapi.weixin.qq.com/cgi-bin/);
    # here the simulator plays WeCom.
    API_BASE_URL = WECOM_URL + "/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=TOKENVAULT_URL + "/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )


class TokenvaultTicketClient(TokenvaultWorkClient):
    """The same, asking tokenvault for the JS-SDK tickets it keeps."""

    API_BASE_URL = TOKENVAULT_URL + "/cgi-bin/"


def rest(path):
    res = requests.get(TOKENVAULT_URL + path, headers={"Authorization": "Bearer " + API_KEY}, timeout=10)
    res.raise_for_status()
    return res.json()


def main():
    client = TokenvaultWorkClient(CORP_ID, WECOM_KEY)
    managed = rest(f"/api/v1/apps/{WECOM_APP}/token")["access_token"]
    assert client.access_token == managed, "the SDK got the managed token"
    print("wechatpy (WeCom): fetch_access_token -> got the managed token")

    # WeCom accepts it: the company ticket straight from "WeCom".
    direct = client.jsapi.get_ticket()
    assert direct["errcode"] == 0 and direct["ticket"], direct
    print("wechatpy (WeCom): jsapi.get_ticket() with that token -> WeCom accepted it")

    tickets = TokenvaultTicketClient(CORP_ID, WECOM_KEY)
    company = tickets.jsapi.get_jsapi_ticket()
    assert company == rest(f"/api/v1/apps/{WECOM_APP}/tickets/jsapi")["ticket"], "the kept company ticket"
    assert company == direct["ticket"], "WeCom's own company ticket"
    agent = tickets.jsapi.get_agent_jsapi_ticket()
    assert agent == rest(f"/api/v1/apps/{WECOM_APP}/tickets/agent_config")["ticket"], "the kept app ticket"
    assert agent != company
    print("wechatpy (WeCom): jsapi.get_jsapi_ticket() / get_agent_jsapi_ticket() -> tokenvault's tickets")

    # WeCom's error shape reaches the SDK's error handling.
    bad = TokenvaultWorkClient(CORP_ID, "tvk_notakey_" + "x" * 43)
    try:
        bad.fetch_access_token()
    except WeChatClientException as e:
        assert e.errcode == 40001, e.errcode
        print("wechatpy (WeCom): a bad key -> WeChatClientException 40001")
    else:
        raise AssertionError("a bad key must fail")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure and exit non-zero
        print(f"wechatpy (WeCom): FAIL: {e!r}", file=sys.stderr)
        raise
    print("wechatpy (WeCom): PASS")
