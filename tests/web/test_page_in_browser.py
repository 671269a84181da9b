"""The customer page in a real browser: Debian's headless Chromium, driven through chromium-driver (selenium).

It is opened as http://purchase.local:PORT/, a plain-HTTP origin other than localhost (Chromium maps the name
to 127.0.0.1), which is not a secure context: the page must work there, as behind the chart's Ingress.
"""

import time
import uuid

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from scripts.stack.waiting import until


def open_page(browser, system, user: str):
    browser.get(f"http://purchase.local:{system.web_port}/")
    form = browser.find_element(By.ID, "buy")
    for name, value in (("userId", user), ("username", "ann"), ("price", "12.50")):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    return form


def status(browser) -> str:
    return browser.find_element(By.ID, "status").text


def history_rows(browser) -> list[list[str]]:
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#history tr")]


def test_the_page_is_served_from_a_plain_http_origin_that_is_not_a_secure_context(browser, running_system):
    open_page(browser, running_system, "probe")
    assert browser.execute_script("return window.isSecureContext") is False
    assert browser.execute_script("return typeof crypto.randomUUID") == "undefined"


def test_a_buy_from_the_page_shows_in_its_history(browser, running_system):
    user = f"page-{uuid.uuid4().hex[:8]}"
    form = open_page(browser, running_system, user)
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 15).until(lambda d: status(d).startswith("Bought a "))
    WebDriverWait(browser, 15).until(lambda d: len(history_rows(d)) == 1)
    (row,) = history_rows(browser)
    assert row[2] == "12.50" and row[1] in status(browser)
    assert len(running_system.stored_ids_for(user)) == 1


def test_a_refused_buy_shows_the_servers_error(browser, running_system):
    form = open_page(browser, running_system, f"page-{uuid.uuid4().hex[:8]}")
    form.find_element(By.NAME, "username").send_keys("\u202etxt")  # a bidi override: the server refuses it
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 15).until(lambda d: status(d).startswith("Refused: "))
    assert status(browser) == "Refused: 'username' must not contain bidirectional formatting characters"


def test_a_stored_img_onerror_item_renders_as_text_and_runs_nothing(browser, running_system):
    user = f"page-{uuid.uuid4().hex[:8]}"
    payload = '<img src=x onerror="window.__xss=1">'
    answer = requests.post(f"{running_system.web_url}/api/buy",
                           json={"username": "eve", "userId": user, "price": 1, "item": payload}, timeout=10)
    assert answer.status_code == 202
    until(lambda: running_system.stored_ids_for(user), 15, "the purchase to be stored")
    open_page(browser, running_system, user)  # typing another user id shows that user's history
    WebDriverWait(browser, 15).until(lambda d: [row[1] for row in history_rows(d)] == [payload],
                                     message=f"the history shows {history_rows(browser)}")
    assert browser.find_elements(By.CSS_SELECTOR, "#history img") == []
    time.sleep(0.5)
    assert browser.execute_script("return window.__xss") is None


def test_the_page_is_sent_with_a_csp_and_frame_protection(running_system):
    page = requests.get(f"{running_system.web_url}/", timeout=5)
    csp = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'" and csp["default-src"] == "'none'"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_when_kafka_is_down_the_page_retries_with_the_same_key_until_bought_once(browser, system):
    system.start_api()
    system.start_web()
    user = f"page-{uuid.uuid4().hex[:8]}"
    form = open_page(browser, system, user)
    system.kafka.kill()
    try:
        form.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 15).until(lambda d: "retrying with the same key" in status(d))
        print(f"\n[page, Kafka down] {status(browser)}")
    finally:
        system.kafka.start()
    # The page keeps retrying for two minutes; a broker killed late in a run recovers the logs of every topic the
    # session made before it listens again (seen: the page's old budget of 10 attempts, ~45 s, ran out).
    WebDriverWait(browser, 120).until(lambda d: status(d).startswith("Bought a "),
                                     message=f"the page says: {status(browser)!r}")
    until(lambda: system.stored_ids_for(user), 15, "the purchase to be stored")
    time.sleep(1)
    stored = system.stored_ids_for(user)
    assert len(stored) == 1 and stored[0] in status(browser)
