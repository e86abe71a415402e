// tokenvault web UI: live token countdowns and copy buttons. Everything
// else works without JavaScript.
"use strict";
(function () {
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".countdown[data-expires]").forEach(function (el) {
      var left = Math.floor(Number(el.dataset.expires) - now);
      el.textContent = left > 0 ? left + " " + el.dataset.suffix : el.dataset.expired;
    });
  }
  function copy(button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) {
      return;
    }
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = button.dataset.copied;
      setTimeout(function () { button.textContent = label; }, 2000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      b.addEventListener("click", function () { copy(b); });
    });
  });
})();
