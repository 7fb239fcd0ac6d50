/*
  Assent: the "Your data" part of the preferences dialog: the consent id, "Download my data" (access, portability)
  and "Delete my data" (erasure), from the banner itself.

  The banner script loads it (/s/{site}/assent.js?rights=LANG) when the dialog opens for a visitor who has a consent
  id, so that the first load stays small. build.rs puts web/shared/elements.js before this file, inside one function,
  and minifies the whole; the same source rules as for web/assent/ apply (see web/assent/settings.js).
*/

/** {api, site, texts}: the server replaces this token with the texts of one language (src/http/script.rs). */
const params = __ASSENT_RIGHTS__;
const texts = params.texts;
const banner = window.assent;
const choice = banner && banner.consent();
const dialog = document.querySelector('#assent .assent-dlg');

// Nothing to add without a recorded choice or an open dialog, or if the dialog already has it.
if (!choice || !choice.id || !dialog || dialog.querySelector('.assent-data')) return;

const consentId = choice.id;
const visitorUrl = params.api + '/api/visitor/' + encodeURIComponent(consentId);
/** Where failures are announced (role=status). */
const status = element('p', { role: 'status' });
/** The two buttons; a confirmation takes their place before an erasure. */
const actions = element('div', { class: 'assent-row' }, [
  button(texts.download, download),
  button(texts.delete, askToDelete),
]);
let confirmation = null;

function say(text) {
  status.textContent = text;
}

/** "Download my data": the JSON of GET /api/visitor/{id}, saved as my-data-SITE.json. */
function download() {
  say('');
  fetch(visitorUrl)
    .then((response) => (response.ok ? response.blob() : Promise.reject(response)))
    .then(
      (blob) => {
        const href = URL.createObjectURL(blob);
        const link = element('a', { href, download: 'my-data-' + params.site + '.json', hidden: '' });
        document.body.append(link);
        link.click();
        link.remove();
        // Not at once: the download may still be reading it.
        setTimeout(() => URL.revokeObjectURL(href), 60000);
      },
      () => say(texts.failed),
    );
}

/** "Delete my data": a question in place of the two buttons, which the focused "Yes, delete" is described by. */
function askToDelete() {
  const yes = button(texts.confirm_yes, erase);
  const no = button(texts.cancel, cancelDeletion);
  yes.setAttribute('aria-describedby', 'assent-dq');
  confirmation = element('div', { role: 'group', 'aria-labelledby': 'assent-dq' }, [
    element('p', { id: 'assent-dq' }, [texts.confirm]),
    element('div', { class: 'assent-row' }, [yes, no]),
  ]);
  say('');
  actions.replaceWith(confirmation);
  yes.focus();
}

function cancelDeletion() {
  confirmation.replaceWith(actions);
  actions.lastChild.focus();
}

/**
 * DELETE /api/visitor/{id}. Once erased (or already gone: 404), the page forgets the choice as well: the cookie goes,
 * the page receives `assent:consent` with detail null, the dialog closes and the banner shows again with a message
 * that takes the focus.
 */
function erase() {
  fetch(visitorUrl, { method: 'DELETE' })
    .then((response) => {
      if (response.status != 204 && response.status != 404) throw response;
      document.cookie = 'assent_consent=;Max-Age=0;Path=/';
      const bannerShown = banner._forget();
      document.dispatchEvent(new CustomEvent('assent:consent', { detail: null }));
      return bannerShown;
    })
    .then(
      () => {
        const bannerSection = document.querySelector('#assent .assent-ban');
        const done = element('p', { role: 'status', tabindex: '-1', class: 'assent-done' }, [texts.deleted]);
        if (bannerSection) {
          bannerSection.prepend(done);
          done.focus();
        }
      },
      () => say(texts.failed),
    );
}

// Before the dialog's last row ("Accept all", "Reject all", "Save choices").
dialog.lastChild.before(
  element('section', { class: 'assent-cat assent-data', 'aria-labelledby': 'assent-dt' }, [
    element('h3', { id: 'assent-dt' }, [texts.your_data]),
    element('p', {}, [texts.description]),
    element('p', {}, [texts.consent_id + ': ', element('code', {}, [consentId])]),
    actions,
    status,
  ]),
);
