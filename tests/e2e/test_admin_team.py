"""The admin pages a team lives in (issue 14, items 4 and 11): inviting a collaborator by e-mail with a license and
sites, the invitation page in the login page's style, avatars as pictures, the advisors table at 1440 px, the
license quota read-only for the owner, and the flow editor."""
import io
import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_inbox import PASSWORD, Watch

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a-long-enough-pass-42"


def admin_login(page, server, username="admin"):
    page.goto(server.base + "/admin/login/?next=/admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))


def shell(server, code: str) -> str:
    out = server.manage("shell", "-c", code).strip()
    return out.splitlines()[-1] if out else ""  # Django's shell may first say how many objects it imported


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (300, 200), (37, 99, 235)).save(out, "PNG")
    return out.getvalue()


def loaded(locator) -> bool:
    return locator.evaluate("img => img.complete && img.naturalWidth > 0")


@pytest.fixture
def admin_page(live_server, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    admin_login(page, live_server)
    yield page, watch
    context.close()


def test_invite_a_collaborator_with_a_license_and_sites_who_joins_with_the_password_twice(
        live_server, admin_page, browser):
    page, watch = admin_page
    email = f"dan-{secrets.token_hex(3)}@x.example"
    username = email.split("@")[0]
    # given the advisors page: an invitation, not a list of every user
    page.goto(live_server.base + "/admin/advisors/advisor/")
    expect(page.locator(".object-tools")).not_to_contain_text("Add advisor")
    page.get_by_role("link", name="Invite a collaborator").click()
    # when the owner invites Dan with a license, for the shop only
    page.get_by_label("Email").fill(email)
    page.get_by_label("Display name").fill("Dan")
    page.get_by_label("Livechat Premium").check()
    page.get_by_label("Shop").check()
    screenshot(page, "admin-invite")
    page.locator("input[name=_save]").click()
    # then back on the advisors page, which says so and lists the pending invitation
    expect(page).to_have_url(re.compile(r"/admin/advisors/advisor/$"))
    expect(page.locator(".messagelist")).to_contain_text(f"Invitation sent to {email}")
    expect(page.locator(".pending-invitation", has_text=email)).to_be_visible()

    # the link of the e-mail (read from the database: the server's outbox is in its own process)
    path = shell(live_server, (
        "from advisors.models import Invitation; from advisors.services import invitation_token; "
        f"print('/invitations/' + invitation_token(Invitation.objects.get(email='{email}')))"))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        joiner = context.new_page()
        joiner_watch = Watch(joiner)
        joiner.goto(live_server.base + "/accounts/login/")
        login_style = joiner.locator(".auth-card").evaluate(
            "e => [getComputedStyle(e).borderRadius, getComputedStyle(e).maxWidth, getComputedStyle(document.body)"
            ".backgroundImage.slice(0, 40)]")
        joiner.goto(live_server.base + path)
        # the invitation page is the login page's card, and asks for the password twice
        expect(joiner.get_by_role("heading", name="Join Demo Company")).to_be_visible()
        assert joiner.locator(".auth-card").evaluate(
            "e => [getComputedStyle(e).borderRadius, getComputedStyle(e).maxWidth, getComputedStyle(document.body)"
            ".backgroundImage.slice(0, 40)]") == login_style
        expect(joiner.locator("input[type=password]")).to_have_count(2)
        screenshot(joiner, "invitation-accept")
        joiner.get_by_label("Username").fill(username)
        joiner.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
        joiner.get_by_label("Password again").fill(NEW_PASSWORD + "!")
        joiner.get_by_role("button", name="Join Demo Company").click()
        # a mismatch is said beside the second field, and nothing is created
        expect(joiner.locator("#password_again-error")).to_have_text("The two passwords differ.")
        expect(joiner.get_by_label("Password again")).to_have_attribute("aria-invalid", "true")
        joiner.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
        joiner.get_by_label("Password again").fill(NEW_PASSWORD)
        joiner.get_by_role("button", name="Join Demo Company").click()
        expect(joiner).to_have_url(re.compile(r"/inbox/"))
        me = joiner.evaluate("fetch('/api/inbox/me').then(r => r.json())")
        assert me["licensed"] is True and [s["key"] for s in me["sites"]] == ["demo-shop"]
        joiner_watch.assert_clean()
    finally:
        context.close()
        shell(live_server, f"from django.contrib.auth.models import User; User.objects.filter(username='{username}')"
                           ".delete()")
    watch.assert_clean()


def test_avatars_show_as_pictures_and_the_advisors_table_fits_1440_px(live_server, admin_page, tmp_path):
    page, watch = admin_page
    username = f"pic-{secrets.token_hex(3)}"
    shell(live_server, (
        "from advisors.models import Account, Site; from advisors.services import advisor_create; "
        f"advisor_create(account=Account.objects.get(name='Demo Company'), username='{username}', "
        f"email='{username}-with-a-rather-long-address@a-long-company-domain.example', "
        "display_name='Penelope Longname-Fitzgerald', password=None, "
        "sites=list(Site.objects.filter(key__in=['demo-shop', 'demo-blog'])))"))
    try:
        picture = tmp_path / "me.png"
        picture.write_bytes(png_bytes())
        page.goto(live_server.base + "/admin/advisors/advisor/?q=" + username)
        page.get_by_role("link", name="Penelope Longname-Fitzgerald").click()
        page.locator("input[name=avatar]").set_input_files(str(picture))
        page.locator("input[name=_continue]").click()
        expect(page.locator(".messagelist")).to_contain_text("changed successfully")
        # the change form shows the picture itself, not a file name
        preview = page.locator("img.avatar-preview")
        expect(preview).to_be_visible()
        assert loaded(preview)
        # and so does the list, at 1440 px, with every column on the screen
        page.goto(live_server.base + "/admin/advisors/advisor/")
        thumbnail = page.locator("#result_list tr", has_text=username).locator("img.avatar-thumbnail")
        expect(thumbnail).to_be_visible()
        assert loaded(thumbnail)
        expect(page.locator("#result_list .avatar-initial").first).to_be_visible()  # no picture yet: the initial
        screenshot(page, "admin-advisors-1440")
        # the table scrolls inside its box when too wide (Django's .results): nothing may be hidden there
        widths = page.evaluate("""() => { const box = document.querySelector('#changelist .results');
            const table = document.querySelector('#result_list').getBoundingClientRect();
            const filter = document.querySelector('#changelist-filter').getBoundingClientRect();
            return {page: document.documentElement.scrollWidth, window: window.innerWidth,
                    table: box.scrollWidth, box: box.clientWidth, right: table.right, filter: filter.left}; }""")
        assert widths["window"] == 1440
        assert widths["page"] <= 1440 and widths["table"] <= widths["box"] and widths["right"] <= widths["filter"], (
            widths)
        for header in ("Name", "Username / e-mail", "Avatar", "Last active", "Messages", "Premium", "Sites"):
            expect(page.locator("#result_list thead")).to_contain_text(header, ignore_case=True)
        watch.assert_clean()
    finally:
        shell(live_server, f"from django.contrib.auth.models import User; User.objects.filter(username='{username}')"
                           ".delete()")


def test_the_owner_reads_the_license_quota_but_cannot_edit_it(live_server, admin_page):
    page, watch = admin_page
    page.goto(live_server.base + "/admin/advisors/account/")
    page.get_by_role("link", name="Demo Company").click()
    expect(page.locator("input[name=license_quota]")).to_have_count(0)
    expect(page.locator(".field-license_quota .readonly")).to_have_text("5")
    watch.assert_clean()


def step_box(page, kind):
    return page.locator(".inline-related.dynamic-steps, .inline-related[id^=steps-]").filter(
        has=page.locator(f"select[name$='-kind'] option[value='{kind}']:checked"))


def shown(box, column) -> bool:
    return box.locator(f".field-{column}").first.is_visible()


def test_the_flow_editor_shows_each_steps_fields_offers_choices_and_puts_errors_beside_them(live_server, admin_page):
    page, watch = admin_page
    name = f"Editor bot {secrets.token_hex(3)}"
    chatbot_id = shell(live_server, (
        "import copy; from chatbots.demo import DEMO_FLOW; from chatbots.services import flow_import; "
        f"d = copy.deepcopy(DEMO_FLOW); d['name'] = '{name}'; print(flow_import(data=d).pk)"))
    try:
        page.goto(f"{live_server.base}/admin/chatbots/sequence/?chatbot__id__exact={chatbot_id}")
        page.get_by_role("link", name="human", exact=True).click()
        note, escalate = step_box(page, "note"), step_box(page, "escalate")
        # each step shows the fields of its kind only
        expect(escalate.locator(".field-assign_to")).to_be_visible()
        assert [shown(escalate, c) for c in ("text", "assign_to", "back_label", "return_to")] == [True] * 4
        assert [shown(escalate, c) for c in ("image_url", "variable", "input_type", "value", "target")] == [False] * 5
        expect(escalate.locator(".field-text label")).to_have_text("Message to the visitor:")
        assert shown(note, "text") and not shown(note, "target") and not shown(note, "assign_to")
        expect(page.locator("#buttons-group")).to_be_hidden()  # buttons belong to a buttons step; none here
        # sequences and advisors are choices, not free text
        return_to = escalate.locator("select[name$='-return_to']")
        assert return_to.locator("option").all_inner_texts() == [
            "---------", "welcome", "menu", "pricing", "human", "fallback"]
        expect(return_to).to_have_value("menu")
        assert "Alice (alice)" in escalate.locator("select[name$='-assign_to'] option").all_inner_texts()
        # a step whose kind changes shows the new kind's fields at once
        note.locator("select[name$='-kind']").select_option("goto")
        goto = step_box(page, "goto")
        assert shown(goto, "target") and not shown(goto, "text")
        goto.locator("select[name$='-kind']").select_option("note")
        # a new step shows nothing but its kind until one is chosen
        page.locator(".add-row a", has_text="Add another Step").click()
        new = page.locator(".inline-related.dynamic-steps").last
        assert not shown(new, "text") and not shown(new, "variable")
        new.locator("select[name$='-kind']").select_option("input")
        assert shown(new, "text") and shown(new, "variable") and shown(new, "input_type")
        expect(new.locator(".field-text label")).to_have_text("Question:")
        new.locator("select[name$='-kind']").select_option("buttons")
        expect(page.locator("#buttons-group")).to_be_visible()
        new.locator(".inline-deletelink").click()
        expect(page.locator("#buttons-group")).to_be_hidden()
        # an error stands beside what it is about: a way back without its sequence
        escalate = step_box(page, "escalate")
        escalate.locator("select[name$='-return_to']").select_option("")
        page.locator("input[name=_continue]").click()
        expect(page.locator(".errornote")).to_be_visible()
        escalate = step_box(page, "escalate")
        expect(escalate.locator(".errorlist")).to_contain_text("back_label and return_to go together")
        expect(step_box(page, "note").locator(".errorlist")).to_have_count(0)
        screenshot(page, "admin-flow-editor-error")
        page.goto(f"{live_server.base}/admin/chatbots/sequence/?chatbot__id__exact={chatbot_id}")
        page.get_by_role("link", name="menu", exact=True).click()
        expect(page.locator("#buttons-group")).to_be_visible()  # the menu ends with its buttons step
        assert page.locator("#buttons-group select[name$='-target']").first.input_value() == "pricing"

        # the pseudonym naming a variable no step captures: saved, with a warning beside the field
        page.goto(f"{live_server.base}/admin/chatbots/chatbot/{chatbot_id}/change/")
        welcome = page.locator("select[name=welcome_sequence]")
        expect(welcome).to_have_value("welcome")
        page.locator("input[name=pseudonym_template]").fill("{{PRENOM}} {{NOM}}")
        page.locator("input[name=_continue]").click()
        expect(page.locator(".messagelist .warning")).to_contain_text("{{NOM}}, which no step of the flow captures")
        expect(page.locator(".field-pseudonym_template")).to_contain_text("no step of the flow captures")
        watch.assert_clean()
    finally:
        shell(live_server, f"from chatbots.models import Chatbot; Chatbot.objects.filter(pk={chatbot_id}).delete()")

