// tokenvault web UI: live token countdowns. Everything else works without
// JavaScript; this file only updates "N s left" once a second.
"use strict";
(function () {
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".countdown[data-expires]").forEach(function (el) {
      var left = Math.floor(Number(el.dataset.expires) - now);
      el.textContent = left > 0 ? left + " " + el.dataset.suffix : el.dataset.expired;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
  });
})();
