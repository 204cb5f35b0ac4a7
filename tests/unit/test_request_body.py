"""hub_core.request_body: a body's size and media type, and JSON or form fields decoded strictly."""

from __future__ import annotations

import base64
import json

import pytest

from hub_core.http_api import RequestRejected
from hub_core.request_body import is_form_post, submitted_fields

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def rejected(event: dict, headers: dict, max_bytes: int = 1024) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        submitted_fields(event, headers, max_bytes=max_bytes)
    return caught.value


@pytest.mark.parametrize(
    ("content_type", "form"),
    [
        ("application/json", False),
        ("Application/JSON; charset=utf-8", False),
        ("application/x-www-form-urlencoded;charset=UTF-8", True),
        (" application/x-www-form-urlencoded ", True),
        ("text/plain", None),
        ("multipart/form-data; boundary=x", None),
        ("", None),
    ],
)
def test_the_media_type_is_read_without_its_parameters_or_case(content_type, form):
    assert is_form_post({"content-type": content_type}) is form


def test_no_content_type_is_no_media_type():
    assert is_form_post({}) is None


def test_a_body_over_the_limit_is_a_413_counted_in_bytes_not_characters():
    body = json.dumps({"name": "ø" * 6})  # 6 characters, 12 bytes
    assert submitted_fields({"body": body}, JSON, max_bytes=len(body.encode()))["name"] == "ø" * 6
    error = rejected({"body": body}, JSON, max_bytes=len(body.encode()) - 1)
    assert (error.status, error.error) == (413, "payload_too_large")


def test_a_base64_body_is_measured_decoded():
    raw = json.dumps({"a": "b" * 40}).encode()
    event = {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    assert submitted_fields(event, JSON, max_bytes=len(raw)) == {"a": "b" * 40}


def test_another_media_type_is_a_415_naming_the_content_type_header():
    error = rejected({"body": "{}"}, {"content-type": "text/plain"})
    assert (error.status, error.error) == (415, "unsupported_media_type")
    assert [(p.field, p.rule) for p in error.problems] == [("Content-Type", "one_of")]


def test_size_is_checked_before_the_media_type():
    assert rejected({"body": "x" * 2000}, {"content-type": "text/plain"}).status == 413


def test_a_form_post_is_its_fields_with_blanks_kept_and_plus_as_space():
    event = {"body": "firstname=Ann+Bee&lastname=&note=a%26b%3Dc", "isBase64Encoded": False}
    assert submitted_fields(event, FORM, max_bytes=1024) == {"firstname": "Ann Bee", "lastname": "", "note": "a&b=c"}


def test_a_repeated_form_field_is_a_422_naming_each_in_order():
    error = rejected({"body": "b=1&a=1&b=2&a=2&c=3"}, FORM)
    assert (error.status, error.error) == (422, "validation_failed")
    assert [(p.field, p.rule) for p in error.problems] == [("a", "single_value"), ("b", "single_value")]


def test_a_form_in_a_json_body_is_not_json():
    error = rejected({"body": "a=1"}, JSON)
    assert [(p.field, p.rule) for p in error.problems] == [("body", "json")]


def test_an_empty_form_post_has_no_fields_and_no_body_at_all_is_not_json():
    assert submitted_fields({"body": ""}, FORM, max_bytes=10) == {}
    assert submitted_fields({}, FORM, max_bytes=10) == {}
    assert [(p.field, p.rule) for p in rejected({}, JSON).problems] == [("body", "json")]


def test_json_fields_keep_their_types():
    body = json.dumps({"amount": 5000, "ok": True, "none": None, "name": "Anna", "list": [1, "x"]})
    assert submitted_fields({"body": body}, JSON, max_bytes=1024) == json.loads(body)


@pytest.mark.parametrize("body", ['"just a string"', "42", "null", "true"])
def test_a_json_body_that_is_not_an_object_is_refused_as_such(body):
    error = rejected({"body": body}, JSON)
    assert (error.status, [(p.field, p.rule) for p in error.problems]) == (400, [("body", "object")])


def test_several_fields_out_of_range_are_each_named_sorted():
    error = rejected({"body": '{"z": 1e999, "a": NaN, "ok": 1}'}, JSON)
    assert [(p.field, p.rule) for p in error.problems] == [("a", "number_range"), ("z", "number_range")]


def test_a_field_without_a_name_out_of_range_is_the_bodys_problem():
    error = rejected({"body": '{"": Infinity}'}, JSON)
    assert [(p.field, p.rule) for p in error.problems] == [("body", "number_range")]


def test_a_utf8_form_post_with_invalid_bytes_is_malformed():
    event = {"body": base64.b64encode(b"name=\xc3").decode(), "isBase64Encoded": True}
    assert [(p.field, p.rule) for p in rejected(event, FORM).problems] == [("body", "utf8")]
