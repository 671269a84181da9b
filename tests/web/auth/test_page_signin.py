"""The customer page signs in, in the real browser (headless Chromium) against the real provider (Keycloak):
the authorization code flow with PKCE, the token in the page's memory only, and sign-out.

The page is opened at http://127.0.0.1:PORT/, a secure context (PKCE's SHA-256 needs one; behind the chart's
Ingress that means https), and the provider's own login form is filled in as a customer would.
"""

from __future__ import annotations

import jwt
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from scripts.stack.waiting import until


def status(browser) -> str:
    return browser.find_element(By.ID, "status").text


def who(browser) -> str:
    return browser.find_element(By.ID, "who").text


def history_rows(browser) -> list[list[str]]:
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#history tr")]


def sign_in_at_the_provider(browser, username: str, password: str) -> None:
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "username"),
                                     message="the provider's login form")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "kc-login").click()


def test_a_customer_signs_in_buys_sees_the_purchase_and_not_another_customers_history(browser, signed_in):
    system = signed_in.system
    bob = signed_in.token("bob")
    bob_id = signed_in.customer_of(bob)
    # The page names the customer as web does: the token's name (its `name` claim, else preferred_username).
    alice_name = jwt.decode(signed_in.token("alice"), options={"verify_signature": False})["name"]
    assert requests.post(f"{system.web_url}/api/buy", json={"price": 3.0}, timeout=15,
                         headers={"Authorization": f"Bearer {bob}"}).status_code == 202

    browser.get(f"http://127.0.0.1:{system.web_port}/")
    WebDriverWait(browser, 15).until(lambda d: who(d) == "Not signed in")
    assert browser.find_element(By.CSS_SELECTOR, "#buy button").get_property("disabled")
    sign_in_at_the_provider(browser, "alice", "alice-password")
    WebDriverWait(browser, 20).until(lambda d: who(d) == f"Signed in as {alice_name}",
                                     message=f"back on the page: {browser.current_url} {status(browser)!r}")
    assert browser.current_url == f"http://127.0.0.1:{system.web_port}/"  # the code is gone from the URL
    # The token is held in memory only: nothing in either storage, no cookie of web's origin.
    assert browser.execute_script("return localStorage.length + sessionStorage.length") == 0
    assert browser.get_cookies() == []

    form = browser.find_element(By.ID, "buy")
    alice_id = form.find_element(By.NAME, "userId").get_property("value")
    assert alice_id and alice_id != bob_id
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 15).until(lambda d: status(d).startswith("Bought a "), message=status(browser))
    WebDriverWait(browser, 15).until(lambda d: len(history_rows(d)) == 1)
    stored = until(lambda: system.stored_ids_for(alice_id), 15, "alice's purchase stored")
    assert len(stored) == 1 and stored[0] in status(browser)

    # Asking the page for bob's history: the server refuses, and the page shows none of it.
    field = form.find_element(By.NAME, "userId")
    field.clear()
    field.send_keys(bob_id)
    browser.find_element(By.TAG_NAME, "h1").click()  # leaving the field fires its change event
    WebDriverWait(browser, 15).until(lambda d: status(d) == "Refused: you may only read your own purchases")
    assert history_rows(browser) == []

    browser.find_element(By.ID, "sign-out").click()
    WebDriverWait(browser, 20).until(lambda d: who(d) == "Not signed in" and d.current_url.startswith(
        f"http://127.0.0.1:{system.web_port}/"), message=f"after sign-out: {browser.current_url}")
    # The provider's session ended too: signing in asks for the password again.
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "username"),
                                     message="the provider's login form again")


def test_on_a_plain_http_origin_the_page_says_sign_in_needs_https(browser, signed_in):
    browser.get(f"http://purchase.local:{signed_in.system.web_port}/")
    WebDriverWait(browser, 15).until(lambda d: who(d) == "Not signed in")
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 15).until(lambda d: "needs https" in status(d))
    assert browser.current_url.startswith("http://purchase.local")
