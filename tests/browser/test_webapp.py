"""The reference web app in Chromium against a running stack: a phone and a TV, two browser
contexts of one user (docs/WEB_APP.md).

One module, one story, in order (each test builds on the state the previous left): the TV
signs in by device code approved on the phone; a typo finds a title; the watchlist and the
player follow the phone on the TV without a reload; progress moves on the phone; then the
widths, the keyboard, accessibility, the error pages, and no console error anywhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect

from tests.browser.conftest import AXE, Stack

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
TV = {"width": 1920, "height": 1080}
WAIT_MS = 20_000


@dataclass
class Tabs:
    phone: Page
    tv: Page
    user: str
    errors: list[str] = field(default_factory=list)


def by_design(method: str, url: str, status: int) -> bool:
    """The refusals of the normal flow: RFC 8628's device-code poll is answered 400
    `authorization_pending` until the phone approves; a read past the rate limit (a page of
    tiles reading its titles at once) is asked again after its Retry-After by the app."""
    if status == 400 and url.endswith("/api/v1/auth/token"):
        return True
    return status == 429 and method == "GET"


def watch(page: Page, name: str, errors: list[str]) -> None:
    """Every console error, uncaught exception and failed API answer of the page. Chromium
    logs each 4xx/5xx fetch as a console error "Failed to load resource": those are judged
    by their response instead (by_design), the rest of the console as it is."""

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(f"{name}: {message.text} ({message.location.get('url')})")

    def on_response(response: Response) -> None:
        if response.status >= 400 and not by_design(
            response.request.method, response.url, response.status
        ):
            errors.append(f"{name}: {response.status} from {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: errors.append(f"{name}: uncaught {error}"))


@pytest.fixture(scope="module")
def tabs(browser: Browser, stack: Stack) -> Iterator[Tabs]:
    phone_ctx = browser.new_context(base_url=stack.gateway, viewport=PHONE, has_touch=True)
    tv_ctx = browser.new_context(base_url=stack.gateway, viewport=TV)
    found = Tabs(phone_ctx.new_page(), tv_ctx.new_page(), stack.user())
    watch(found.phone, "phone", found.errors)
    watch(found.tv, "tv", found.errors)
    yield found
    phone_ctx.close()
    tv_ctx.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_tv_signs_in_by_a_code_the_phone_approves(tabs: Tabs) -> None:
    tabs.tv.goto("/app/#/tv")
    code = tabs.tv.locator("#user-code")
    expect(code).to_have_text(re.compile(r"^[A-Z]{4}-[A-Z]{4}$"), timeout=WAIT_MS)
    shot(tabs.tv, "tv-sign-in-1920")

    tabs.phone.goto("/app/")
    expect(tabs.phone.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(tabs.phone, "sign-in-390")
    tabs.phone.get_by_label("Your name").fill(tabs.user)
    tabs.phone.get_by_label("This browser is a").select_option("phone")
    tabs.phone.get_by_role("button", name="Sign in").click()
    expect(tabs.phone.get_by_role("heading", name=f"Hello, {tabs.user}")).to_be_visible()
    expect(tabs.phone.locator("#live")).to_have_text("Live", timeout=WAIT_MS)

    # The link the TV shows: the gateway's /activate hands the code to the app's page.
    tabs.phone.goto(tabs.tv.get_by_role("link").first.get_attribute("href") or "")
    expect(tabs.phone.get_by_label("The code the TV shows")).to_have_value(code.inner_text())
    shot(tabs.phone, "activate-390")
    tabs.phone.get_by_role("button", name="Approve").click()
    expect(tabs.phone.get_by_role("alert")).to_contain_text("signed in as you")

    # The TV polls every `interval` (5 s) as RFC 8628 says, then opens its socket.
    expect(tabs.tv.locator("#live")).to_have_text("Live", timeout=WAIT_MS)
    expect(tabs.tv.locator("#now-title")).to_contain_text("Nothing playing")
    tabs.tv.evaluate("window.__noReload = true")


def test_a_typo_finds_the_title_by_suggestion(tabs: Tabs) -> None:
    tabs.phone.goto("/app/#/search")
    box = tabs.phone.get_by_role("combobox")
    box.press_sequentially("grand budapset", delay=30)
    option = tabs.phone.get_by_role("option", name=re.compile("The Grand Budapest Hotel"))
    expect(option).to_be_visible(timeout=WAIT_MS)
    shot(tabs.phone, "search-suggest-390")
    box.press("ArrowDown")
    box.press("Enter")
    expect(tabs.phone.get_by_role("heading", name="The Grand Budapest Hotel")).to_be_visible()
    card = tabs.phone.locator("article")
    expect(card).to_contain_text("2014")
    expect(card).to_contain_text("comedy")
    expect(card).to_contain_text("1 h 39 min")
    expect(tabs.phone.get_by_role("heading", name="Where to watch in US")).to_be_visible()
    expect(
        card.get_by_role("row", name=re.compile("Netflix Subscription included"))
    ).to_be_visible()


def test_search_shows_the_intent_and_facets_filter(tabs: Tabs) -> None:
    tabs.phone.goto("/app/#/search?q=comedies%20from%20the%202000s")
    expect(tabs.phone.locator("#intent")).to_contain_text("Understood: comedy, 2000\u20132009")
    expect(tabs.phone.locator("#results")).to_contain_text("Shrek")
    genre = tabs.phone.get_by_role("button", name=re.compile(r"^animation \(1\)"))
    genre.click()
    expect(tabs.phone.get_by_role("button", name=re.compile(r"^animation"))).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(tabs.phone.locator("#results li")).to_have_count(1)
    shot(tabs.phone, "search-results-390")


def test_title_page_shows_price_and_until(tabs: Tabs, stack: Stack) -> None:
    tabs.phone.goto(f"/app/#/title/{stack.ids['padd2']}")
    row = tabs.phone.get_by_role("row", name=re.compile("Buy"))
    expect(row).to_contain_text("$9.99")
    expect(row).to_contain_text("2027")


def test_added_on_the_phone_shows_on_the_tv_without_reload(tabs: Tabs, stack: Stack) -> None:
    tabs.phone.goto(f"/app/#/title/{stack.ids['gbh']}")
    add = tabs.phone.get_by_role("button", name="Add to watchlist")
    expect(add).to_be_enabled(timeout=WAIT_MS)
    add.click()
    expect(tabs.tv.locator("#watchlist")).to_contain_text(
        "The Grand Budapest Hotel", timeout=WAIT_MS
    )
    expect(tabs.phone.get_by_role("button", name="Remove from watchlist")).to_be_visible(
        timeout=WAIT_MS
    )
    shot(tabs.phone, "title-390")
    assert tabs.tv.evaluate("window.__noReload") is True


def test_play_from_the_phone_plays_on_the_tv(tabs: Tabs) -> None:
    play = tabs.phone.get_by_role("button", name=re.compile(r"^Play on TV"))
    expect(play).to_be_visible(timeout=WAIT_MS)
    play.click()
    expect(tabs.tv.locator("#now-title")).to_have_text("The Grand Budapest Hotel", timeout=WAIT_MS)
    expect(tabs.tv.locator("#now-state")).to_contain_text("Playing")
    expect(tabs.phone.get_by_role("alert")).to_contain_text("Sent to TV (browser)")
    shot(tabs.tv, "tv-now-playing-1920")


def test_progress_moves_on_the_phone(tabs: Tabs) -> None:
    tabs.phone.goto("/app/#/")
    bar = tabs.phone.locator("#continue [role=progressbar]").first
    expect(bar).to_be_visible(timeout=WAIT_MS)
    first = bar.get_attribute("aria-valuetext")
    # The TV reports every 2 s; the phone's bar moves with the messages, never a reload.
    expect(bar).not_to_have_attribute("aria-valuetext", first or "", timeout=WAIT_MS)
    expect(tabs.phone.locator("#continue")).to_contain_text("The Grand Budapest Hotel")


def test_a_recommendation_appears_with_its_reasons(tabs: Tabs) -> None:
    recs = tabs.phone.locator("#recommendations li a")
    expect(recs.first).to_be_visible(timeout=WAIT_MS)
    reasons = tabs.phone.locator("#recommendations li .muted").first
    expect(reasons).not_to_be_empty()
    shot(tabs.phone, "home-390")


def test_the_remote_pauses_the_tv(tabs: Tabs) -> None:
    tabs.phone.goto("/app/#/devices")
    tv = tabs.phone.locator("li.device", has_text="TV (browser)")
    expect(tv.locator(".presence")).to_have_text("Online", timeout=WAIT_MS)
    tv.get_by_role("button", name="Pause").click()
    expect(tabs.tv.locator("#now-state")).to_contain_text("Paused", timeout=WAIT_MS)
    expect(tv.locator(".now-playing")).to_contain_text("Paused", timeout=WAIT_MS)
    shot(tabs.phone, "devices-390")


def test_tv_page_works_with_arrow_keys_and_enter(tabs: Tabs) -> None:
    page = tabs.tv
    page.locator("#now-playing button").first.focus()
    page.keyboard.press("ArrowDown")  # the controls -> the first row of tiles
    focused = page.evaluate("document.activeElement.closest('ul')?.id")
    assert focused == "continue"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('ul')?.id") == "watchlist"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('ul')?.id") == "recommendations"
    page.keyboard.press("ArrowRight")
    chosen = page.evaluate("document.activeElement.querySelector('.tile-title').textContent")
    page.keyboard.press("Enter")
    expect(page.locator("#now-title")).to_have_text(chosen)
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.closest('#now-playing') !== null")
    shot(page, "tv-1920")


PAGES = ["#/", "#/search?q=comedy", "#/devices", "#/activate"]


@pytest.mark.parametrize("width", [390, 1920])
def test_every_page_fits_the_width(tabs: Tabs, stack: Stack, width: int) -> None:
    page = tabs.phone
    page.set_viewport_size({"width": width, "height": 900})
    try:
        for route in [*PAGES, f"#/title/{stack.ids['shrek']}"]:
            page.goto(f"/app/{route}")
            expect(page.locator("main h1")).to_be_visible()
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{route} at {width} px scrolls sideways by {overflow} px"
            if width == 1920:
                name = route.strip("#/").split("?")[0].split("/")[0] or "home"
                shot(page, f"{name}-1920")
    finally:
        page.set_viewport_size(PHONE)
    tabs.tv.set_viewport_size({"width": 390, "height": 844})
    try:
        overflow = tabs.tv.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the TV page at 390 px scrolls sideways by {overflow} px"
        shot(tabs.tv, "tv-390")
    finally:
        tabs.tv.set_viewport_size(TV)


def axe_violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("axe.run(document).then(r => r.violations)")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_no_serious_accessibility_violation(tabs: Tabs, stack: Stack) -> None:
    problems: list[str] = []
    for route in [*PAGES, f"#/title/{stack.ids['padd2']}"]:
        tabs.phone.goto(f"/app/{route}")
        expect(tabs.phone.locator("main h1")).to_be_visible()
        tabs.phone.wait_for_load_state("networkidle")
        problems += [f"{route}: {p}" for p in axe_violations(tabs.phone)]
    problems += [f"tv: {p}" for p in axe_violations(tabs.tv)]
    assert not problems, "\n".join(problems)


def test_errors_are_said_in_words(tabs: Tabs, browser: Browser, stack: Stack) -> None:
    """Refusals provoked on purpose, in a context of their own (their 4xx are the point);
    uncaught exceptions still count."""
    context = browser.new_context(base_url=stack.gateway, viewport=PHONE)
    page = context.new_page()
    page.on("pageerror", lambda error: tabs.errors.append(f"errors: uncaught {error}"))
    page.set_viewport_size(TV)
    page.goto("/app/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "sign-in-1920")
    page.set_viewport_size(PHONE)
    page.get_by_label("Your name").fill(stack.user())
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#live")).to_have_text("Live", timeout=WAIT_MS)
    # A problem+json detail: a title that does not exist.
    page.goto("/app/#/title/00000000-0000-4000-8000-000000000000")
    expect(page.get_by_role("heading", name="Title not found")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("main")).to_contain_text("no content with id")
    # A 429 says how long to wait, and the button that caused it waits as long. The answer
    # is the gateway's own shape (docs/HTTP_CONTRACT.md), given by the browser's router.
    page.route(
        "**/api/v1/search?*",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "7", "Content-Type": "application/problem+json"},
            body='{"type":"/problems/rate_limited","title":"Too many requests","status":429,'
            '"detail":"rate limit exceeded","error":"rate_limited"}',
        ),
    )
    page.goto("/app/#/search?q=heat")
    expect(page.get_by_role("alert")).to_contain_text("Please wait 7 s")
    expect(page.get_by_role("button", name="Search")).to_be_disabled()
    page.unroute("**/api/v1/search?*")
    # An expired session that cannot be renewed: the app says so and asks to sign in again.
    page.evaluate(
        """() => {
          const s = JSON.parse(sessionStorage.getItem('mgw.session'));
          s.access_token = 'expired.' + s.access_token.split('.')[1] + '.x';
          s.refresh_token = 'revoked';
          sessionStorage.setItem('mgw.session', JSON.stringify(s));
        }"""
    )
    page.goto("/app/#/devices")
    expect(page.get_by_role("alert")).to_contain_text("Your session has ended")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()


def test_no_console_error_on_any_page(tabs: Tabs) -> None:
    assert not tabs.errors, "\n".join(tabs.errors)
