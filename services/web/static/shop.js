// The customer page. Every purchase carries an Idempotency-Key, kept until the server gives a definitive
// answer: a 503 or a lost connection means "outcome unknown", and the retry with the same key can only ever
// be that same purchase. Server text is shown with textContent only, never as HTML. With sign-in on
// (signin.js), every request carries the customer's bearer token, and the customer is the token's.
"use strict";

// How long the page keeps retrying an unknown outcome by itself (each wait as Retry-After says): long enough to ride
// out a broker's restart, which recovers its logs first; after that the customer's press of Buy retries the same.
const RETRY_FOR_MS = 120000;
let pending = null; // {key, body}: the purchase whose outcome is not known yet

// A random UUID (v4). crypto.randomUUID exists only in secure contexts (https or localhost); getRandomValues
// works on any origin, such as http://purchase.local behind the Ingress.
function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// A path segment for a user id: "." and ".." encoded too, or the browser would resolve them away.
function segment(text) {
  return encodeURIComponent(text).replace(/\./g, "%2E");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function say(text) {
  document.getElementById("status").textContent = text;
}

async function refresh(form) {
  if (signIn.required() && !signIn.session()) return;
  const res = await fetch(`/api/user/${segment(form.userId.value)}/purchases?limit=20`, { headers: signIn.headers() });
  const answer = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (res.status === 401 || res.status === 403) say(`Refused: ${answer.error_description || answer.error}`);
  const rows = res.ok ? answer : [];
  document.getElementById("history").replaceChildren(...rows.map((p) => {
    const tr = document.createElement("tr");
    for (const v of [new Date(p.timestamp).toLocaleString(), p.item, p.price.toFixed(2)]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
}

// One attempt: {done: true, ok, answer} for a definitive answer, {done: false, wait} when unknown.
async function attempt(purchase) {
  try {
    const res = await fetch("/api/buy", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": purchase.key, ...signIn.headers() },
      body: JSON.stringify(purchase.body),
    });
    const answer = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (res.status === 503 || res.status >= 500) {
      return { done: false, wait: 1000 * (Number(res.headers.get("Retry-After")) || 1), why: answer.error };
    }
    return { done: true, ok: res.ok, answer };
  } catch (err) {
    return { done: false, wait: 1000, why: "no answer from the server" };
  }
}

async function buy(form) {
  const body = { username: form.username.value, userId: form.userId.value, price: Number(form.price.value) };
  // The same purchase again (its outcome unknown): the same key. Anything else is a new purchase.
  if (!pending || JSON.stringify(pending.body) !== JSON.stringify(body)) {
    pending = { key: newKey(), body };
  }
  const purchase = pending;
  const giveUpAt = Date.now() + RETRY_FOR_MS;
  for (let n = 1; ; n++) {
    const result = await attempt(purchase);
    if (result.done) {
      if (pending === purchase) pending = null;
      say(result.ok ? `Bought a ${result.answer.purchase.item} (id ${result.answer.id})`
                    : `Refused: ${result.answer.error_description || result.answer.error}`);
      setTimeout(() => refresh(form), 300);
      return;
    }
    if (Date.now() + result.wait >= giveUpAt) break;
    say(`Not confirmed yet (${result.why}); retrying with the same key, attempt ${n + 1}…`);
    await sleep(result.wait);
  }
  say("Still not confirmed. Press Buy again to retry the same purchase: it cannot be bought twice.");
}

// The account bar: who is signed in, and the buttons to sign in or out.
function showAccount(form) {
  const session = signIn.session();
  document.getElementById("account").hidden = false;
  document.getElementById("who").textContent = session ? `Signed in as ${session.name}` : "Not signed in";
  document.getElementById("sign-in").hidden = Boolean(session);
  document.getElementById("sign-out").hidden = !session;
  form.querySelector("button").disabled = !session;
  if (session) {
    form.userId.value = session.customer; // the token's customer; another id is refused by the server
    form.username.value = session.name;
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const form = document.getElementById("buy");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    buy(form);
  });
  form.userId.addEventListener("change", () => refresh(form)); // another customer: their history
  try {
    await signIn.start();
  } catch (err) {
    say(`Sign-in failed: ${err.message}`);
  }
  if (signIn.required()) {
    document.getElementById("sign-in").addEventListener("click", () =>
      signIn.begin().catch((err) => say(`Sign-in failed: ${err.message}`)));
    document.getElementById("sign-out").addEventListener("click", () => {
      signIn.end();
      showAccount(form);
    });
    showAccount(form);
  }
  refresh(form);
});
