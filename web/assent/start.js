/*
  Banner script, part 6: the public API (window.assent, described in docs/banner.md) and the start.
*/

function acceptAll() {
  return choose(() => true, 'accept_all');
}

function rejectAll() {
  return choose(() => false, 'reject_all');
}

window.assent = {
  open: () => openPreferences(),
  consent: consentCopy,
  acceptAll: acceptAll,
  rejectAll: rejectAll,
  track: trackCustomEvent,
  // Not public: web/rights.js calls it after an erasure (it has already deleted the cookie and tells the page). No
  // choice any more: the optional categories' cookies go and the banner shows again.
  _forget: () => {
    currentChoice = storedChoice = null;
    deleteRefusedCookies({});
    closePreferences();
    applyChoice();
    return showBanner();
  },
};

// Google Consent Mode: everything denied by default before Google's tags run (a dataLayer/gtag shim if the page has
// none yet), then the stored choice at once.
if (siteOptions.google_consent_mode) {
  window.dataLayer = window.dataLayer || [];
  window.gtag =
    window.gtag ||
    function () {
      window.dataLayer.push(arguments);
    };
  updateConsentMode('default', {});
}
storedChoice = readCookieChoice();
if (isInForce(storedChoice)) updateConsentMode('update', storedChoice.choices);

/**
 * A choice in force applies; otherwise gated content stays blocked and the banner shows, except under Global Privacy
 * Control (from the browser, or the Sec-GPC header the server saw), which is recorded as a refusal instead.
 * A prerendered page waits until it is shown, so nothing is recorded for a page nobody saw.
 */
function start() {
  if (document.prerendering) {
    document.addEventListener('prerenderingchange', start, { once: true });
    return;
  }
  if (isInForce(storedChoice)) {
    currentChoice = storedChoice;
    applyChoice();
  } else {
    releaseGatedContent();
    if (navigator.globalPrivacyControl === true || config.gpc) choose(() => false, 'gpc');
    else showBanner();
  }
}

documentReady.then(start);
