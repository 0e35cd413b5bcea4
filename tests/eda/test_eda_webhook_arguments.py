"""monoz.link.webhook refuses bad arguments with a message naming the argument, before it listens."""

from __future__ import annotations

import pytest

from eda_support import HEADER_VALUE, PASSWORD, TOKEN, SourceRunner, assert_no_secret

BAD_ARGUMENTS = {
    "no authentication": ({}, "no authentication: set token, username/password or header_name/header_value"),
    "two authentications": ({"token": TOKEN, "header_name": "X-Key", "header_value": HEADER_VALUE},
                            "give one authentication, not token and header_name/header_value"),
    "username without password": ({"username": "u"}, "username and password go together"),
    "password without username": ({"password": PASSWORD}, "username and password go together"),
    "header_name without value": ({"header_name": "X-Key"}, "header_name and header_value go together"),
    "header_value without name": ({"header_value": HEADER_VALUE}, "header_name and header_value go together"),
    "insecure and a token": ({"token": TOKEN, "insecure_no_auth": True}, "insecure_no_auth is true but token is set"),
    "insecure not a bool": ({"insecure_no_auth": "maybe"}, "insecure_no_auth must be a boolean"),
    "empty token": ({"token": ""}, "token must be a non-empty string"),
    "token not a string": ({"token": 12345}, "token must be a non-empty string"),
    "bad header name": ({"header_name": "X Key:", "header_value": HEADER_VALUE}, "header_name is not a valid HTTP header name"),
    "port text": ({"token": TOKEN, "port": "http"}, "port must be a number from 0 to 65535"),
    "port too big": ({"token": TOKEN, "port": 70000}, "port must be from 0 to 65535, got 70000"),
    "port a bool": ({"token": TOKEN, "port": True}, "port must be a number"),
    "path relative": ({"token": TOKEN, "path": "hook"}, "path must start with /"),
    "body size tiny": ({"token": TOKEN, "max_body_size": 10}, "max_body_size must be from 1024"),
    "body timeout zero": ({"token": TOKEN, "body_timeout": 0}, "body_timeout must be from"),
    "keyfile alone": ({"token": TOKEN, "keyfile": "/nonexistent/key.pem"}, "keyfile needs certfile"),
    "certfile missing": ({"token": TOKEN, "certfile": "/nonexistent/cert.pem"}, "cannot load certfile/keyfile"),
    "typo": ({"token": TOKEN, "tokn": "x"}, "unknown argument(s) tokn"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_bad_arguments_stop_the_source_with_a_clear_message(webhook, case):
    args, expected = BAD_ARGUMENTS[case]
    runner = SourceRunner(webhook, {"host": "127.0.0.1", "port": 0, **args}, wait_listening=False)
    with runner:
        error = runner.wait_finished()
    assert isinstance(error, webhook.WebhookArgumentError), repr(error)
    message = str(error)
    assert message.startswith("monoz.link.webhook: ")
    assert expected in message
    assert_no_secret(message)
    assert runner.logs.port is None  # it never listened


def test_engine_arguments_and_unset_values_are_accepted(webhook):
    # ansible-rulebook adds eda_* keys; rulebooks template unused options to null
    settings = webhook.Settings({"token": TOKEN, "eda_feedback_queue": object(), "certfile": None,
                                 "username": None, "password": None, "port": "5001", "insecure_no_auth": "false"})
    assert (settings.host, settings.port, settings.path, settings.ssl_context) == ("0.0.0.0", 5001, "/", None)
    assert TOKEN not in repr(settings) and TOKEN not in str(vars(settings).get("challenge"))
