/*
  Banner script, part 5: the opt-in tracker. It runs only while analytics is granted and recorded (applyChoice), and
  keeps its state in memory only: no cookie, no storage. Events go to POST /api/event: page views (with the referrer
  on the first), engaged time, custom events (assent.track, data-assent-event), outbound links and file downloads.
*/

let tracking = false;
/** The next page view is the first since tracking started: it carries the referrer. */
let firstPageview = false;
/** pageKey() of the last page view, so that a route change to the same page counts once. */
let lastPageKey = null;
/** The URL of the page the engaged time is counted for. */
let engagedUrl = null;
/** Engaged time not yet sent, in milliseconds. */
let engagedMs = 0;
/** Since when the page has been visible and focused (Date.now()), or 0 while it is not. */
let engagedSince = 0;

function startTracking() {
  if (tracking) return;
  tracking = firstPageview = true;
  updateEngagedTime();
  trackPageview();
}

function stopTracking() {
  tracking = false;
  engagedMs = engagedSince = 0;
  lastPageKey = engagedUrl = null;
}

/** Sends one event while tracking; `useBeacon` when the page is going away. */
function sendEvent(name, fields, useBeacon) {
  if (!tracking) return;
  const url = apiBase + '/api/event';
  const event = { site: config.site, consent_id: currentChoice.id, name, url: location.href };
  const body = JSON.stringify(Object.assign(event, fields));
  if (useBeacon && navigator.sendBeacon) navigator.sendBeacon(url, body);
  else post(url, body).catch(() => null);
}

/** A page is its path, plus the hash when that is a route (`#/...` or `#!/...`) rather than an anchor. */
function pageKey() {
  const hash = location.hash;
  return location.pathname + (/^#!?\//.test(hash) ? hash : '');
}

function trackPageview() {
  if (!tracking || pageKey() == lastPageKey) return;
  // The time spent on the previous page goes first.
  sendEngagedTime();
  lastPageKey = pageKey();
  engagedUrl = location.href;
  const fields = { screen_width: screen.width };
  if (firstPageview && document.referrer) fields.referrer = document.referrer;
  firstPageview = false;
  sendEvent('pageview', fields);
}

/** Adds the time since the last update if the page was engaged (visible and focused), and notes whether it is now. */
function updateEngagedTime() {
  const now = Date.now();
  if (engagedSince) engagedMs += now - engagedSince;
  engagedSince = tracking && !document.hidden && document.hasFocus() ? now : 0;
}

function sendEngagedTime(useBeacon) {
  updateEngagedTime();
  if (tracking && engagedUrl && engagedMs > 0) {
    sendEvent('engagement', { url: engagedUrl, engaged_ms: Math.round(engagedMs) }, useBeacon);
  }
  engagedMs = 0;
}

/** assent.track(name, props): a custom event; props must be flat (strings, numbers, booleans), the rest is dropped. */
function trackCustomEvent(name, props) {
  const flatProps = {};
  for (const key in props) {
    if (['string', 'number', 'boolean'].includes(typeof props[key])) flatProps[key] = props[key];
  }
  sendEvent(String(name), { props: flatProps });
}

addEventListener('focus', updateEngagedTime);
addEventListener('blur', updateEngagedTime);
addEventListener('pagehide', () => sendEngagedTime(true));
document.addEventListener('visibilitychange', () => (document.hidden ? sendEngagedTime(true) : updateEngagedTime()));

const PROP_ATTRIBUTE = 'data-assent-prop-';
const DOWNLOAD_PATH =
  /\.(pdf|docx?|xlsx?|pptx?|od[tsp]|csv|txt|zip|rar|7z|t?gz|dmg|exe|msi|apk|iso|epub|mp[34]|wav|mov|avi|webm)$/i;

// Clicks: declarative custom events (data-assent-event="Name", data-assent-prop-KEY="value"), then links that
// download a file or leave the site. Capturing, so that a page that stops the click's propagation is still seen.
document.addEventListener(
  'click',
  (event) => {
    if (!tracking) return;
    const custom = event.target.closest('[data-assent-event]');
    const link = event.target.closest('a[href]');
    if (custom) {
      const props = {};
      for (const attribute of custom.attributes) {
        if (attribute.name.startsWith(PROP_ATTRIBUTE)) props[attribute.name.slice(PROP_ATTRIBUTE.length)] = attribute.value;
      }
      sendEvent(custom.dataset.assentEvent, { props });
    }
    if (link && /^http/.test(link.protocol)) {
      if (siteOptions.file_downloads && DOWNLOAD_PATH.test(link.pathname)) {
        sendEvent('File Download', { props: { url: link.href } });
      } else if (siteOptions.outbound_links && link.host != location.host) {
        sendEvent('Outbound Link: Click', { props: { url: link.href } });
      }
    }
  },
  true,
);

// Single-page apps (site option spa): a route change through the history API, back/forward or a hash route is a
// page view.
if (siteOptions.spa) {
  ['pushState', 'replaceState'].forEach((method) => {
    const original = history[method];
    history[method] = function () {
      const result = original.apply(this, arguments);
      trackPageview();
      return result;
    };
  });
  addEventListener('popstate', trackPageview);
  addEventListener('hashchange', trackPageview);
}
