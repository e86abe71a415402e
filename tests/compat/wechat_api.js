// The npm SDK `wechat-api` (node-webot), unmodified, getting tokenvault's
// managed token. Run by run.sh with:
//   TOKENVAULT_URL  tokenvault's base URL
//   WECHAT_URL      the WeChat simulator's base URL (stands in for api.weixin.qq.com)
//   APPID, API_KEY  the mini-program and a tokenvault API key
//   MANAGED_TOKEN   the token tokenvault's REST API handed out, for comparison
'use strict';

const assert = require('assert');
const API = require('wechat-api');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const TOKENVAULT_URL = env('TOKENVAULT_URL');
const WECHAT_URL = env('WECHAT_URL');
const APPID = env('APPID');
const API_KEY = env('API_KEY');
const MANAGED_TOKEN = env('MANAGED_TOKEN');

const call = (fn) => new Promise((resolve, reject) => {
  fn((err, result) => (err ? reject(err) : resolve(result)));
});

async function main() {
  // 1. Only `endpoint` changed: the SDK's own token request
  //    (GET {endpoint}/cgi-bin/token) goes to tokenvault.
  const api = new API(APPID, API_KEY);
  api.endpoint = TOKENVAULT_URL;
  const token = await call((cb) => api.getLatestToken(cb));
  assert.strictEqual(token.accessToken, MANAGED_TOKEN, 'the SDK got the managed token');
  assert.ok(token.isValid(), 'the SDK considers it valid');
  console.log('wechat-api: endpoint = tokenvault -> got the managed token');

  // wechat-api sends business calls to the same `endpoint`; here the
  // simulator plays WeChat, and the SDK uses the token it holds.
  api.endpoint = WECHAT_URL;
  const ips = await call((cb) => api.getIp(cb));
  assert.ok(Array.isArray(ips.ip_list) && ips.ip_list.length > 0, JSON.stringify(ips));
  console.log('wechat-api: getIp() with that token -> WeChat accepted it');

  // 2. The set-up the README recommends for production: business calls stay
  //    on WeChat, only the SDK's token fetch goes to tokenvault.
  const prod = new API(APPID, API_KEY);
  prod.endpoint = WECHAT_URL; // in production: leave the default (https://api.weixin.qq.com)
  const fetchToken = prod.getAccessToken;
  prod.getAccessToken = function (callback) {
    const endpoint = this.endpoint;
    this.endpoint = TOKENVAULT_URL; // the URL is built synchronously
    try {
      return fetchToken.call(this, callback);
    } finally {
      this.endpoint = endpoint;
    }
  };
  const ips2 = await call((cb) => prod.getIp(cb)); // fetches the token first, by itself
  assert.ok(Array.isArray(ips2.ip_list), JSON.stringify(ips2));
  assert.strictEqual(prod.token.accessToken, MANAGED_TOKEN);
  console.log('wechat-api: token hook -> getIp() fetched the managed token and WeChat accepted it');

  // 3. WeChat's error shape reaches the SDK's error handling: a bad key is
  //    WeChat's 40125, and the key is not echoed.
  const bad = new API(APPID, 'tvk_notakey_' + 'x'.repeat(43));
  bad.endpoint = TOKENVAULT_URL;
  await assert.rejects(call((cb) => bad.getLatestToken(cb)), (err) => {
    assert.strictEqual(err.name, 'WeChatAPIError');
    assert.strictEqual(err.code, 40125);
    assert.ok(!String(err.message).includes('xxxxxxxx'), err.message);
    return true;
  });
  console.log('wechat-api: a bad key -> WeChatAPIError 40125');
}

main().then(
  () => console.log('wechat-api: PASS'),
  (err) => {
    console.error('wechat-api: FAIL:', err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
