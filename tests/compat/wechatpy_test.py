"""The PyPI SDK `wechatpy`, unmodified, getting tokenvault's managed token.

wechatpy's token URL is fixed, so it is used through its extension point:
a subclass of WeChatClient overriding fetch_access_token (the README shows
the same few lines). Run by run.sh with the environment variables
TOKENVAULT_URL, WECHAT_URL (the simulator, standing in for
api.weixin.qq.com), APPID, API_KEY and MANAGED_TOKEN. The JS-SDK ticket call
goes to tokenvault's WeChat-compatible getticket with the managed token.
"""

import os
import sys

import requests

from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

TOKENVAULT_URL = os.environ["TOKENVAULT_URL"]
WECHAT_URL = os.environ["WECHAT_URL"]
APPID = os.environ["APPID"]
API_KEY = os.environ["API_KEY"]
MANAGED_TOKEN = os.environ["MANAGED_TOKEN"]


class TokenvaultClient(WeChatClient):
    """WeChatClient whose token comes from tokenvault (secret = API key)."""

    # In production leave API_BASE_URL alone (https://api.weixin.qq.com/cgi-bin/);
    # here the simulator plays WeChat.
    API_BASE_URL = WECHAT_URL + "/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=TOKENVAULT_URL + "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


class TokenvaultTicketClient(TokenvaultClient):
    """The same, asking tokenvault for the JS-SDK ticket it keeps."""

    API_BASE_URL = TOKENVAULT_URL + "/cgi-bin/"


def main():
    client = TokenvaultClient(APPID, API_KEY)
    assert client.access_token == MANAGED_TOKEN, "the SDK got the managed token"
    print("wechatpy: fetch_access_token -> got the managed token")

    ips = client.misc.get_wechat_ips()
    assert isinstance(ips, list) and ips, ips
    print("wechatpy: misc.get_wechat_ips() with that token -> WeChat accepted it")

    # The JS-SDK ticket call, unchanged, gets the ticket tokenvault keeps.
    ticket = TokenvaultTicketClient(APPID, API_KEY).jsapi.get_jsapi_ticket()
    kept = requests.get(
        f"{TOKENVAULT_URL}/api/v1/apps/{APPID}/tickets/jsapi",
        headers={"Authorization": "Bearer " + API_KEY},
        timeout=10,
    ).json()["ticket"]
    assert ticket == kept, "the SDK got the kept ticket"
    print("wechatpy: jsapi.get_jsapi_ticket() -> tokenvault's jsapi ticket")

    # WeChat's error shape reaches the SDK's error handling.
    bad_key = "tvk_notakey_" + "x" * 43
    bad = TokenvaultClient(APPID, bad_key)
    try:
        bad.fetch_access_token()
    except WeChatClientException as e:
        assert e.errcode == 40125, e.errcode
        assert "xxxxxxxx" not in str(e.errmsg), e.errmsg
        print("wechatpy: a bad key -> WeChatClientException 40125")
    else:
        raise AssertionError("a bad key must fail")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure and exit non-zero
        print(f"wechatpy: FAIL: {e!r}", file=sys.stderr)
        raise
    print("wechatpy: PASS")
