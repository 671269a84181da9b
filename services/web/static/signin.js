// Sign-in for the customer page when web runs with AUTH_MODE=oidc: OpenID Connect's authorization code flow
// with PKCE (S256), as a public client. The access token lives in this script's memory only: never in
// storage, never in the URL. Across the provider's redirect only the PKCE verifier and the state are kept, in
// sessionStorage, and removed as soon as the provider sends the code back. A reload signs in again (the
// provider's own session makes that a redirect, not a password prompt); Sign out ends that session too.
"use strict";

const signIn = (() => {
  let settings = { mode: "off" };
  let session = null; // {accessToken, idToken, customer, name}
  const FLOW = "oidc-flow";

  const base64url = (bytes) =>
    btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const random = (n) => base64url(crypto.getRandomValues(new Uint8Array(n)));
  const here = () => `${location.origin}/`;

  // The token's claims, for display and for the customer id to ask about; web verifies the token itself.
  function claims(token) {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  }

  async function begin() {
    if (!window.isSecureContext || !crypto.subtle) {
      throw new Error("signing in needs https (or localhost): the browser offers no SHA-256 here for PKCE");
    }
    const verifier = random(32);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    const state = random(16);
    sessionStorage.setItem(FLOW, JSON.stringify({ verifier, state }));
    const url = new URL(settings.authorizationEndpoint);
    url.search = new URLSearchParams({
      response_type: "code", client_id: settings.clientId, redirect_uri: here(), scope: "openid",
      state, code_challenge: base64url(new Uint8Array(digest)), code_challenge_method: "S256",
    }).toString();
    location.assign(url.toString());
  }

  // Back from the provider with ?code=...&state=...: trade the code (and the verifier) for tokens.
  async function finish(params) {
    const flow = JSON.parse(sessionStorage.getItem(FLOW) || "null");
    sessionStorage.removeItem(FLOW);
    history.replaceState(null, "", "/");
    if (params.get("error")) throw new Error(`the provider said: ${params.get("error")}`);
    if (!flow || flow.state !== params.get("state")) throw new Error("sign-in answer not expected (state)");
    const res = await fetch(settings.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code: params.get("code"), redirect_uri: here(),
        client_id: settings.clientId, code_verifier: flow.verifier,
      }),
    });
    const answer = await res.json();
    if (!res.ok) throw new Error(answer.error_description || answer.error || `HTTP ${res.status}`);
    const c = claims(answer.access_token);
    session = {
      accessToken: answer.access_token, idToken: answer.id_token,
      customer: String(c[settings.customerClaim]), name: c.name || c.preferred_username || c[settings.customerClaim],
    };
  }

  function end() {
    const idToken = session && session.idToken;
    session = null;
    if (settings.endSessionEndpoint) {
      const url = new URL(settings.endSessionEndpoint);
      url.search = new URLSearchParams({
        client_id: settings.clientId, post_logout_redirect_uri: here(), ...(idToken ? { id_token_hint: idToken } : {}),
      }).toString();
      location.assign(url.toString());
    }
  }

  return {
    // Reads web's settings; completes a sign-in the provider has just redirected back from.
    async start() {
      settings = await (await fetch("/auth/config")).json();
      const params = new URLSearchParams(location.search);
      if (settings.mode === "oidc" && (params.has("code") || params.has("error"))) await finish(params);
    },
    required: () => settings.mode === "oidc",
    session: () => session,
    begin,
    end,
    headers: () => (session ? { Authorization: `Bearer ${session.accessToken}` } : {}),
  };
})();
