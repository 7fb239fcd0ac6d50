// Assent dashboard: small enhancements over pages that work without it (tabs, auto-submitting selects,
// copying the snippet, realtime refresh, waiting for the first event). No framework, no build.
(function () {
  "use strict";
  var d = document;
  d.documentElement.classList.add("js");
  // Selects submit their form when chosen with a pointer. From the keyboard, arrows only change the
  // value (no page change while browsing the options) and Enter submits, as does the Apply button.
  d.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    var byKey = false;
    var send = function () {
      if (s.name === "period" && s.value === "custom") {
        var from = s.form.querySelector("input[name=from]");
        if (from) from.focus();
        return;
      }
      if (s.form.requestSubmit) s.form.requestSubmit(); else s.form.submit();
    };
    s.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); send(); return; }
      if (ev.key !== "Tab") byKey = true;
    });
    s.addEventListener("mousedown", function () { byKey = false; });
    s.addEventListener("change", function () {
      if (byKey) return;
      send();
    });
  });
  // The custom range's dates show only for the custom period.
  var period = d.querySelector("select[name=period]");
  if (period) {
    var dates = function () {
      d.querySelectorAll(".controls .custom").forEach(function (l) { l.hidden = period.value !== "custom"; });
    };
    period.addEventListener("change", dates);
    dates();
  }
  // Cards with several panels show one at a time, chosen by tab.
  d.querySelectorAll(".tabs").forEach(function (nav) {
    var links = nav.querySelectorAll("a[data-tab]");
    function show(id) {
      links.forEach(function (a) {
        var on = a.getAttribute("data-tab") === id;
        a.setAttribute("aria-selected", on ? "true" : "false");
        var p = d.getElementById(a.getAttribute("data-tab"));
        if (p) p.hidden = !on;
      });
      try { sessionStorage.setItem("tab:" + nav.getAttribute("aria-label"), id); } catch (e) { /* none */ }
    }
    links.forEach(function (a) {
      a.setAttribute("role", "tab");
      a.addEventListener("click", function (ev) { ev.preventDefault(); show(a.getAttribute("data-tab")); });
    });
    var saved = null;
    try { saved = sessionStorage.getItem("tab:" + nav.getAttribute("aria-label")); } catch (e) { /* none */ }
    var first = links[0] && links[0].getAttribute("data-tab");
    show(saved && d.getElementById(saved) ? saved : first);
  });
  // The embed snippet's copy button.
  d.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var done = function () { b.textContent = "Copied"; };
      // Without the clipboard API (plain http) or its permission: select the snippet, copy the old way.
      var select = function () {
        var code = b.parentNode.querySelector(".snippet code");
        if (!code) return;
        var range = d.createRange();
        range.selectNodeContents(code);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        try { if (d.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(b.getAttribute("data-copy")).then(done, select);
      } else {
        select();
      }
    });
  });
  // A new site reloads by itself until its first event arrives.
  if (d.querySelector("[data-waiting]")) setTimeout(function () { location.reload(); }, 15000);
  // Realtime: the count (and pages) refresh every 10 seconds.
  var rt = d.querySelector("[data-realtime]") || d.querySelector("[data-realtime-page]");
  if (rt) {
    var url = rt.getAttribute("data-realtime") || rt.getAttribute("data-realtime-page");
    var count = d.querySelector("[data-realtime-count]");
    var body = d.querySelector("[data-realtime-pages]");
    var label = rt.hasAttribute("data-realtime") ? rt : null;
    var tick = function () {
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (j) {
        if (!j) return;
        if (count) count.textContent = j.visitors;
        if (label) label.lastChild.textContent = " " + j.visitors + " current visitor" + (j.visitors === 1 ? "" : "s");
        if (body) {
          body.textContent = "";
          j.pages.forEach(function (p) {
            var tr = d.createElement("tr");
            [p.page, p.visitors, p.pageviews].forEach(function (v, i) {
              var td = d.createElement("td");
              td.className = i ? "num" : "name";
              td.textContent = v;
              tr.appendChild(td);
            });
            body.appendChild(tr);
          });
        }
      }).catch(function () { /* try again next time */ });
    };
    tick();
    setInterval(tick, 10000);
  }
})();
