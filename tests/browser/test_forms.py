"""The embeddable pages in headless Chromium against the local stack: lead form, fundraiser form, campaign page."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests.browser.conftest import screenshot, sync_api
from tests.canaries import CANARY_EMAIL, CANARY_LASTNAME, CANARY_MSISDN, CANARY_PHONE
from tests.conftest import manage_token_from_sms

pytestmark = pytest.mark.e2e

expect = sync_api.expect


def fill_lead(page, *, email: str, campaign: str) -> None:
    page.get_by_label("First name").fill("Ann")
    page.get_by_label("Last name").fill(CANARY_LASTNAME)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Phone").fill(CANARY_PHONE)
    page.get_by_label("Project name").fill(campaign)
    page.get_by_label("Describe it").fill("Une miellerie collective")
    page.get_by_label("Lending").check()
    page.get_by_label("Total budget in euros").fill("15000")
    page.get_by_label("Publication").select_option("within_month")


def leads_named(sandbox, name):
    return [lead for lead in sandbox.leads if lead.get("project_name") == name]


def test_a_bad_email_is_shown_next_to_its_field_and_nothing_reaches_miimosa(site, page):
    name = f"bad-{uuid.uuid4().hex[:8]}"
    page.goto(f"{site.web_url}/lead.html")
    fill_lead(page, email="ann.bee@example", campaign=name)
    page.get_by_role("button", name="Send my project").click()

    email = page.get_by_label("E-mail")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#lead-email-error")).to_contain_text("e-mail address")
    # The error is the field's description for a screen reader, the focus is on it, and the count is announced.
    expect(email).to_have_accessible_description(re.compile("e-mail address"))
    expect(email).to_be_focused()
    expect(page.get_by_role("status")).to_have_text("1 field needs your attention.")
    expect(page.get_by_role("button", name="Send my project")).to_be_enabled()
    screenshot(page, "lead-form-bad-email")
    assert leads_named(site.sandboxes["miimosa"], name) == []


def test_a_good_lead_reaches_the_miimosa_sandbox_once_despite_a_double_click(site, page):
    name = f"good-{uuid.uuid4().hex[:8]}"
    page.goto(f"{site.web_url}/lead.html")
    fill_lead(page, email=CANARY_EMAIL, campaign=name)
    button = page.get_by_role("button", name="Send my project")
    button.dblclick()

    expect(page.get_by_role("status")).to_contain_text("reached MiiMOSA")
    expect(button).to_be_disabled()
    screenshot(page, "lead-form-sent")
    stored = leads_named(site.sandboxes["miimosa"], name)
    assert len(stored) == 1
    assert stored[0]["email"] == CANARY_EMAIL


def test_a_lead_miimosa_cannot_take_now_is_shown_as_accepted(site, page):
    sandbox = site.sandboxes["miimosa"]
    sandbox.faults.add("status", status=503, path_prefix="/leads")
    try:
        page.goto(f"{site.web_url}/lead.html")
        fill_lead(page, email=CANARY_EMAIL, campaign=f"later-{uuid.uuid4().hex[:8]}")
        page.get_by_role("button", name="Send my project").click()
        expect(page.locator("form")).to_have_attribute("data-hub-result", "202")
        expect(page.get_by_role("status")).to_contain_text("accepted and is being forwarded")
        screenshot(page, "lead-form-accepted")
    finally:
        sandbox.faults.clear()


def test_the_lead_form_posts_without_javascript(site, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        name = f"nojs-{uuid.uuid4().hex[:8]}"
        page.goto(f"{site.web_url}/lead.html")
        fill_lead(page, email=CANARY_EMAIL, campaign=name)
        with page.expect_navigation():
            page.get_by_role("button", name="Send my project").click()
        # The plain form post lands on the API's own answer.
        assert urlsplit(page.url).path == "/leads"
        assert '"status":"forwarded"' in page.content()
        assert len(leads_named(site.sandboxes["miimosa"], name)) == 1
    finally:
        context.close()


def test_a_fundraiser_is_created_and_its_page_shows_a_donation_raise_the_total(site, page):
    code = f"t{uuid.uuid4().hex[:10]}"
    page.goto(f"{site.web_url}/campaign-new.html")
    page.get_by_label("Service number").fill("1")
    page.get_by_label("Keyword").fill("hjerte")
    page.get_by_label("Your code").fill(code)
    page.get_by_label("Suggested donation in øre").fill("5000")
    page.get_by_label("Name of your fundraiser").fill("Annas løb")
    page.get_by_label("Your mobile number").fill(CANARY_MSISDN)
    page.get_by_role("button", name="Create my fundraiser").click()

    expect(page.get_by_role("heading", name="Your fundraiser is ready")).to_be_visible()
    expect(page.locator(".created-code")).to_have_text(code)
    # The page never shows the manage token: it is on the creator's phone, in the confirm SMS.
    expect(page.locator(".created-sms")).to_be_visible()
    umbrella = site.sandboxes["umbrella"]
    token = manage_token_from_sms(umbrella, CANARY_MSISDN)
    expect(page.locator("body")).not_to_contain_text(token)
    screenshot(page, "campaign-form-created")

    page.get_by_role("link", name="Open your campaign page").click()
    page.wait_for_url(re.compile(r"campaign\.html\?"))
    page.goto(page.url + "&every=500")
    total = page.locator(".campaign-total")
    expect(total).to_have_attribute("data-ore", "0")
    expect(page.locator(".campaign-code")).to_have_text(code)
    expect(page.locator(".campaign-keyword")).to_have_text("hjerte")

    answer = requests.post(
        f"{umbrella.url}/_sandbox/donate",
        json={"serviceId": 1, "route": "hjerte", "donationCode": code, "amount": 7500},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    expect(total).to_have_attribute("data-ore", "7500")
    expect(total).to_have_text(re.compile(r"75,00\s*kr"))
    expect(page.locator(".campaign-count")).to_have_text("from 1 donation")
    # Confirmed by Umbrella's list, so nothing is left waiting apart from the total.
    expect(page.locator(".campaign-pending")).to_have_attribute("data-ore", "0")
    expect(page.locator(".campaign-pending-count")).to_have_text("from 0 donations")
    screenshot(page, "campaign-page")

    # A callback Umbrella never made (someone holding the callback URL): shown as waiting, never in the total.
    [campaign] = [c for c in umbrella.campaigns if c["donationCode"] == code]
    forged = requests.post(campaign["callbackUrl"], json={"messageKey": f"forged-{code}", "amount": 900000}, timeout=10)
    assert forged.status_code == 200, forged.text
    expect(page.locator(".campaign-pending")).to_have_attribute("data-ore", "900000")
    expect(total).to_have_attribute("data-ore", "7500")
    screenshot(page, "campaign-page-pending")


def test_a_fundraiser_error_names_its_field(site, page):
    page.goto(f"{site.web_url}/campaign-new.html")
    page.get_by_label("Keyword").fill("hjerte")
    page.get_by_label("Your code").fill("x")
    page.get_by_label("Suggested donation in øre").fill("5000")
    page.get_by_label("Your mobile number").fill("12")
    page.get_by_role("button", name="Create my fundraiser").click()
    code = page.get_by_label("Your code")
    expect(code).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Your mobile number")).to_have_attribute("aria-invalid", "true")
    expect(code).to_be_focused()
    expect(page.get_by_role("status")).to_have_text("2 fields need your attention.")
    screenshot(page, "campaign-form-errors")


def test_swagger_ui_shows_the_document_the_api_serves(site, page):
    served = requests.get(f"{site.gateway_url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json()["info"]["title"] == "Partner hub HTTP API"
    page.goto(f"{site.web_url}/docs/")
    expect(page.get_by_role("heading", name=re.compile("Partner hub HTTP API"))).to_be_visible()
    expect(page.get_by_text("/leads", exact=True).first).to_be_visible()
    screenshot(page, "api-docs")
