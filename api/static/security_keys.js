// postop: security keys and passkeys (WebAuthn). On the sign-in's second step, "Use your
// security key" asks the server for a challenge, lets the browser talk to the key and
// posts its answer in the form; on the account's security page, a key is registered the
// same way through the REST API. Shown only where the browser offers WebAuthn at an
// address the keys belong to; the code stays the fallback everywhere.
"use strict";

const b64u = {
  decode(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    let text = "";
    new Uint8Array(buffer).forEach((b) => { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

// the browser holds keys only on a secure page whose host is the RP id or under it
function keysUsable(rpId) {
  const host = location.hostname;
  return Boolean(window.PublicKeyCredential && navigator.credentials && window.isSecureContext)
    && (host === rpId || host.endsWith(`.${rpId}`));
}

const withIds = (list) => (list || []).map((c) => ({ ...c, id: b64u.decode(c.id) }));

function credentialJSON(cred) {
  const r = cred.response;
  const response = { clientDataJSON: b64u.encode(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = b64u.encode(r.attestationObject);
    response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
  }
  if (r.authenticatorData) {
    response.authenticatorData = b64u.encode(r.authenticatorData);
    response.signature = b64u.encode(r.signature);
    if (r.userHandle) response.userHandle = b64u.encode(r.userHandle);
  }
  return {
    id: cred.id,
    rawId: b64u.encode(cred.rawId),
    type: cred.type,
    response,
    clientExtensionResults: cred.getClientExtensionResults(),
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
  };
}

// the browser's refusal as a sentence of the page (cancelled, timed out, no such key)
function browserRefusal(form, err) {
  if (err && err.name === "InvalidStateError" && form.dataset.known) return form.dataset.known;
  return form.dataset.cancelled;
}

function setUpSignIn(form) {
  if (!keysUsable(form.dataset.rpId)) return;  // the code form alone, as before
  form.hidden = false;
  const error = form.querySelector(".error");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      const res = await fetch("/login/key/options", {
        method: "POST",
        body: new URLSearchParams({ csrf_token: form.elements.csrf_token.value }),
        headers: { Accept: "application/json", "Accept-Language": document.documentElement.lang },
        credentials: "same-origin",
      });
      const data = await res.json().catch(() => null);
      if (!res.ok) throw new Error((data && data.detail) || form.dataset.cancelled);
      const o = data.options;
      let cred;
      try {
        cred = await navigator.credentials.get({
          publicKey: { ...o, challenge: b64u.decode(o.challenge), allowCredentials: withIds(o.allowCredentials) },
        });
      } catch (err) {
        throw new Error(browserRefusal(form, err));
      }
      form.elements.credential.value = JSON.stringify(credentialJSON(cred));
      form.submit();  // the server answers with the app, or this page and its sentence
    } catch (err) {
      error.textContent = err.message;
      button.disabled = false;
    }
  });
}

function setUpRegistration(form) {
  const unsupported = document.getElementById("security-key-unsupported");
  if (!keysUsable(form.dataset.rpId)) return;
  form.hidden = false;
  if (unsupported) unsupported.hidden = true;
  const error = form.querySelector(".error");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      const { options: o } = await api("POST", "/api/v1/security-keys/options");
      let cred;
      try {
        cred = await navigator.credentials.create({
          publicKey: {
            ...o,
            challenge: b64u.decode(o.challenge),
            user: { ...o.user, id: b64u.decode(o.user.id) },
            excludeCredentials: withIds(o.excludeCredentials),
          },
        });
      } catch (err) {
        throw new Error(browserRefusal(form, err));
      }
      await api("POST", "/api/v1/security-keys", {
        name: form.elements.name.value, credential: credentialJSON(cred),
      });
      location.reload();
    } catch (err) {
      error.textContent = err.message;
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const signIn = document.getElementById("form-login-key");
  if (signIn) setUpSignIn(signIn);
  const register = document.getElementById("form-security-key");
  if (register) setUpRegistration(register);
});
