/*
  Banner script, part 2: the visitor's choice. It is kept in the first-party cookie `assent_consent`, recorded by the
  server (POST /api/consent), applied to the page (cookies, gated content, Google Consent Mode, tracker) and announced
  with the `assent:consent` event.
*/

/**
 * The choice in force, {id, revision, choices: {categoryId: bool}, expires_at}, or null before any choice.
 * Between a choice and the server's answer it has no expiry (expires_at null) and perhaps no id yet.
 */
let currentChoice = null;
/** The choice read from the cookie at load, in force or not: choosing again keeps its consent id. */
let storedChoice = null;

/** The choice in the cookie, or null when there is none or it is not one that this script wrote. */
function readCookieChoice() {
  const match = document.cookie.match(/(?:^|;) *assent_consent=([^;]*)/);
  let choice = null;
  try {
    choice = match && JSON.parse(decodeURIComponent(match[1]));
  } catch (notJson) {
    // Someone else's value under our name: as good as no choice.
  }
  return choice && choice.choices ? choice : null;
}

/** Whether a stored choice still holds: same policy revision as the site's, and not expired. */
function isInForce(choice) {
  return choice && choice.revision == config.revision && Date.parse(choice.expires_at) > Date.now();
}

/** What assent.consent() returns: a copy, so that the page cannot change the choice in force. */
function consentCopy() {
  return currentChoice && JSON.parse(JSON.stringify(currentChoice));
}

/**
 * Makes and records a choice. `isGranted(categoryId)` tells whether an optional category is granted; `action` is
 * what the server's log shows (accept_all, reject_all, custom, gpc), except that turning off every optional category
 * after a grant is logged as a withdrawal.
 *
 * The page follows the choice at once; the cookie is written once the server has recorded it (the server gives the
 * consent id and the expiry). If the server cannot be reached the choice holds for this page only. The promise
 * resolves to consent() once the `assent:consent` event has been dispatched.
 */
function choose(isGranted, action) {
  const previous = currentChoice;
  const consentId = (currentChoice || storedChoice || {}).id;
  const choices = {};
  categories.forEach((category) => {
    choices[category.id] = !!(category.required || isGranted(category.id));
  });
  const anyOptionalGranted = (granted) => optionalCategories.some((category) => granted[category.id]);
  if (previous && anyOptionalGranted(previous.choices) && !anyOptionalGranted(choices)) action = 'withdraw';

  currentChoice = { id: consentId || null, revision: config.revision, choices, expires_at: null };
  closePreferences();
  removeBanner();
  applyChoice();

  const record = { site: config.site, revision: config.revision, choices, action, language, url: location.pathname };
  if (consentId) record.consent_id = consentId;
  return post(apiBase + '/api/consent', JSON.stringify(record))
    .then((response) => (response.ok ? response.json() : null))
    .then(
      (recorded) => {
        if (recorded && recorded.consent_id) {
          currentChoice = {
            id: recorded.consent_id,
            revision: recorded.revision,
            choices: recorded.choices,
            expires_at: recorded.expires_at,
          };
          writeCookie(currentChoice);
          applyChoice();
        }
      },
      () => null,
    )
    .then(() => {
      document.dispatchEvent(new CustomEvent('assent:consent', { detail: consentCopy() }));
      return consentCopy();
    });
}

/** The cookie lives as long as the recorded choice, and at most 3.37e7 seconds (390 days, about 13 months). */
function writeCookie(choice) {
  const maxAgeSeconds = Math.min((Date.parse(choice.expires_at) - Date.now()) / 1000, 3.37e7) | 0;
  document.cookie =
    CONSENT_COOKIE +
    '=' +
    encodeURIComponent(JSON.stringify(choice)) +
    ';Max-Age=' +
    maxAgeSeconds +
    ';Path=/;SameSite=Lax' +
    (location.protocol == 'https:' ? ';Secure' : '');
}

/** Brings the page in line with the choice in force, or with no choice at all. */
function applyChoice() {
  const granted = currentChoice ? currentChoice.choices : {};
  if (currentChoice) deleteRefusedCookies(granted);
  releaseGatedContent();
  updateConsentMode('update', granted);
  // The tracker counts only on the site's own domains. It starts once the server has recorded the grant (the choice
  // then has an expiry), so no event goes out under a consent id that does not exist; a refusal stops it at once.
  if (!granted.analytics || !config.domains.some(isOwnDomain)) stopTracking();
  else if (currentChoice.expires_at) startTracking();
  if (currentChoice && siteOptions.floating_button) showFloatingButton();
}

function isOwnDomain(domain) {
  return location.hostname == domain || location.hostname.endsWith('.' + domain);
}

/**
 * Deletes the cookies of every category that is not granted, found by the name patterns of its services (`*` stands
 * for any characters). A cookie may have been set for this host or for any parent domain, so it is deleted for each:
 * without a Domain attribute, then for .a.b.c, .b.c and so on down to the last two labels.
 */
function deleteRefusedCookies(granted) {
  categories.forEach((category) => {
    if (granted[category.id] || category.required) return;
    (category.services || []).forEach((service) =>
      (service.cookies || []).forEach((pattern) => {
        const namePattern = new RegExp(
          '^' + pattern.replace(/[$.^|+]/g, '\\$&').replace(/\*/g, '.*') + '$',
        );
        document.cookie.split(';').forEach((pair) => {
          const name = pair.split('=')[0].trim();
          if (!name || name == CONSENT_COOKIE || !namePattern.test(name)) return;
          const labels = location.hostname.split('.');
          for (let i = 0; i < labels.length; i++) {
            const domain = i ? ';Domain=.' + labels.slice(i - 1).join('.') : '';
            document.cookie = name + '=;Max-Age=0;Path=/' + domain;
          }
        });
      }),
    );
  });
}

/** Google Consent Mode v2 (site option google_consent_mode): analytics → analytics_storage, marketing → ad_*. */
function updateConsentMode(command, granted) {
  if (!siteOptions.google_consent_mode) return;
  const analytics = granted.analytics ? 'granted' : 'denied';
  const ads = granted.marketing ? 'granted' : 'denied';
  window.gtag('consent', command, {
    analytics_storage: analytics,
    ad_storage: ads,
    ad_user_data: ads,
    ad_personalization: ads,
  });
}
