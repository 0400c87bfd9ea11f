"""Guessing passwords is slowed then refused, per username and per address, on the login page and the token API
alike (one rule: advisors.security), counted in the shared cache."""
import itertools
import os
import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from advisors import security

pytestmark = pytest.mark.django_db

TOKEN = "/api/auth/token"
LOGIN = "/accounts/login/"
_addresses = itertools.count(1)


def address() -> str:
    """An address no other test (nor an earlier run on the same Redis) used."""
    n = next(_addresses)
    return f"10.{os.getpid() % 250}.{int(time.time()) % 250}.{n % 250 + 1}"


@pytest.fixture(autouse=True)
def fresh_counts(demo):
    for username in demo.advisors:
        security.login_attempt_succeeded(username=username)  # counts outlive a test in the shared cache


def token_attempt(username: str, password: str, ip: str):
    return APIClient().post(TOKEN, {"username": username, "password": password}, format="json", REMOTE_ADDR=ip)


def page_attempt(username: str, password: str, ip: str):
    return Client().post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_wrong_passwords_are_slowed_then_the_right_one_works_after_the_wait(settings):
    settings.LOGIN_SLOW_AFTER = 2
    ip = address()
    assert token_attempt("alice", "wrong", ip).status_code == 400
    assert token_attempt("alice", "wrong", ip).status_code == 400
    # the next attempt, even with the right password, must wait: refused without checking it
    refused = token_attempt("alice", "demo1234", ip)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited" and refused.json()["retry_after"] == 1
    assert refused["Retry-After"] == "1"
    time.sleep(1.1)
    assert token_attempt("alice", "demo1234", ip).status_code == 200
    # a success clears the username's count: one more mistake is not slowed
    assert token_attempt("alice", "wrong", ip).status_code == 400
    assert token_attempt("alice", "demo1234", ip).status_code == 200


def test_a_username_is_refused_after_five_failures_from_any_addresses(settings):
    settings.LOGIN_SLOW_AFTER = 100  # the lock alone
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME):
        assert token_attempt("alice", "wrong", address()).status_code == 400
    refused = token_attempt("alice", "demo1234", address())
    assert refused.status_code == 429
    assert settings.LOGIN_FAILURE_WINDOW_S - 5 <= refused.json()["retry_after"] <= settings.LOGIN_FAILURE_WINDOW_S
    # the login page counts the same failures: it refuses too, with a clear message and 429
    page = page_attempt("alice", "demo1234", address())
    assert page.status_code == 429
    assert b"Too many failed sign-in attempts" in page.content
    # another username, from another address, signs in at once
    assert token_attempt("bob", "demo1234", address()).status_code == 200
    assert page_attempt("carol", "demo1234", address()).status_code == 302


def test_an_address_is_refused_after_twenty_failures_whatever_the_usernames(settings):
    settings.LOGIN_SLOW_AFTER = 100
    ip = address()
    for n in range(settings.LOGIN_FAILURES_PER_ADDRESS):
        attempt = token_attempt if n % 2 else page_attempt
        assert attempt(f"guess{n}", "wrong", ip).status_code in (400, 200)  # the page answers its form again
    assert token_attempt("alice", "demo1234", ip).status_code == 429
    assert page_attempt("alice", "demo1234", ip).status_code == 429
    # alice from her own address is not blocked by that address's guesses
    assert token_attempt("alice", "demo1234", address()).status_code == 200


def test_the_admin_login_counts_and_refuses_too(settings):
    settings.LOGIN_SLOW_AFTER = 100
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME):
        Client().post("/admin/login/", {"username": "admin", "password": "wrong"}, REMOTE_ADDR=address())
    response = page_attempt("admin", "demo1234", address())
    assert response.status_code == 429
    admin = Client().post("/admin/login/", {"username": "admin", "password": "demo1234"}, REMOTE_ADDR=address())
    assert admin.status_code == 200 and b"Too many failed sign-in attempts" in admin.content


def test_a_right_password_at_the_admin_without_staff_rights_is_no_failure(settings):
    settings.LOGIN_SLOW_AFTER = 100
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME + 1):
        Client().post("/admin/login/", {"username": "carol", "password": "demo1234"}, REMOTE_ADDR=address())
    assert page_attempt("carol", "demo1234", address()).status_code == 302
