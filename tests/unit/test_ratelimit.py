"""Fixed-window rate limits on moto in-process: counts per window, refusals with Retry-After, keyed subjects."""

from __future__ import annotations

import boto3
import pytest

from hub_core.ratelimit import Limit, RateLimited, hit, hit_distinct, subject_key
from tests.conftest import create_hash_table, in_process_aws

TABLE = "RateLimit"


@pytest.fixture
def table(monkeypatch):
    with in_process_aws(monkeypatch):
        create_hash_table(TABLE, "id")
        yield TABLE


def items() -> list[dict]:
    return boto3.client("dynamodb").scan(TableName=TABLE)["Items"]


def test_a_window_is_fixed_and_the_next_one_starts_afresh(table):
    limit = Limit("unit", 2, 60)
    assert [hit(table, limit, "s", now=600), hit(table, limit, "s", now=630)] == [1, 2]
    with pytest.raises(RateLimited) as refused:
        hit(table, limit, "s", now=659.5)
    assert refused.value.retry_after == 1
    assert hit(table, limit, "s", now=660) == 1
    assert hit(table, Limit("unit", 0, 60), "s", now=660) == 0  # a count of 0 is no limit


def test_retry_after_is_whole_seconds_to_the_windows_end_and_names_the_scope(table):
    limit = Limit("confirm-msisdn", 1, 3600)
    hit(table, limit, "4512345678", now=7200)
    with pytest.raises(RateLimited) as refused:
        hit(table, limit, "4512345678", now=7200.2)
    assert refused.value.retry_after == 3600  # 3599.8 rounded up
    assert refused.value.scope == "confirm-msisdn"
    assert "4512345678" not in str(refused.value)


def test_a_refused_hit_is_not_counted(table):
    limit = Limit("unit", 1, 60)
    hit(table, limit, "s", now=0)
    for _ in range(3):
        with pytest.raises(RateLimited):
            hit(table, limit, "s", now=1)
    [item] = items()
    assert item["hits"] == {"N": "1"}


def test_subjects_and_scopes_count_apart(table):
    limit = Limit("a", 1, 60)
    assert hit(table, limit, "one", now=0) == 1
    assert hit(table, limit, "two", now=0) == 1
    assert hit(table, Limit("b", 1, 60), "one", now=0) == 1
    assert len(items()) == 3


def test_a_counter_holds_the_subjects_hash_and_expires_a_day_after_its_window(table):
    hit(table, Limit("ip", 5, 60), "198.51.100.7", now=125, key=b"k")
    [item] = items()
    assert item["id"] == {"S": f"ip#{subject_key('ip', '198.51.100.7', b'k')}#120"}
    assert "198.51.100.7" not in str(item)
    assert item["expires_at"] == {"N": str(180 + 86_400)}
    hit(table, Limit("ip", 5, 60), "198.51.100.7", now=170, key=b"k")
    assert items()[0]["expires_at"] == {"N": str(180 + 86_400)}  # set by the first hit, never moved


def test_a_keyed_subject_hash_is_neither_the_plain_hash_nor_another_keys():
    plain = subject_key("confirm-msisdn", "4512345678")
    keyed = subject_key("confirm-msisdn", "4512345678", b"one")
    assert len({plain, keyed, subject_key("confirm-msisdn", "4512345678", b"two")}) == 3
    assert subject_key("confirm-msisdn", "4512345678", b"one") == keyed  # stable: the counter is found again
    assert subject_key("ip", "4512345678") != plain  # the scope is part of what is hashed
    assert all(len(value) == 64 for value in (plain, keyed))


def test_a_window_shorter_than_a_second_is_one_second(table):
    limit = Limit("unit", 1, 0)
    hit(table, limit, "s", now=10.4)
    with pytest.raises(RateLimited) as refused:
        hit(table, limit, "s", now=10.9)
    assert refused.value.retry_after == 1
    assert hit(table, limit, "s", now=11) == 1


def test_distinct_items_count_once_each_and_a_repeat_passes(table):
    limit = Limit("member-actions", 2, 3600)
    hit_distinct(table, limit, "member-1", "action-a", now=0)
    hit_distinct(table, limit, "member-1", "action-a", now=1)  # a redelivery: not counted again
    hit_distinct(table, limit, "member-1", "action-b", now=2)
    with pytest.raises(RateLimited) as refused:
        hit_distinct(table, limit, "member-1", "action-c", now=3)
    assert refused.value.retry_after == 3597
    hit_distinct(table, limit, "member-1", "action-b", now=4)  # an item counted before still passes when full
    [item] = items()
    assert sorted(item["items"]["SS"]) == ["action-a", "action-b"]
    assert item["expires_at"] == {"N": str(3600 + 86_400)}


def test_distinct_items_start_afresh_in_the_next_window_and_per_subject(table):
    limit = Limit("member-actions", 1, 60)
    hit_distinct(table, limit, "member-1", "a", now=0)
    hit_distinct(table, limit, "member-2", "b", now=0)
    with pytest.raises(RateLimited):
        hit_distinct(table, limit, "member-1", "b", now=59)
    hit_distinct(table, limit, "member-1", "b", now=60)
    assert len(items()) == 3


def test_a_distinct_limit_of_zero_writes_nothing(table):
    hit_distinct(table, Limit("off", 0, 60), "member-1", "a", now=0)
    assert items() == []
