"""AddTagsToStream, RemoveTagsFromStream, ListTagsForStream; Increase/DecreaseStreamRetentionPeriod."""

from __future__ import annotations

from harness import arn, expect_error


def tags_of(client, name, **kw) -> dict[str, str]:
    out: dict[str, str] = {}
    r = client.list_tags_for_stream(StreamName=name, **kw)
    for t in r["Tags"]:
        out[t["Key"]] = t.get("Value", "")
    return out


def test_add_list_remove_tags(kinesis, new_stream):
    name = new_stream()
    r = kinesis.list_tags_for_stream(StreamName=name)
    assert r["Tags"] == [] and r["HasMoreTags"] is False
    kinesis.add_tags_to_stream(StreamName=name, Tags={"team": "data", "env": "test", "empty": ""})
    assert tags_of(kinesis, name) == {"team": "data", "env": "test", "empty": ""}
    # overwrite one, add one
    kinesis.add_tags_to_stream(StreamName=name, Tags={"env": "prod", "cost-center": "42"})
    assert tags_of(kinesis, name) == {"team": "data", "env": "prod", "empty": "", "cost-center": "42"}
    r = kinesis.list_tags_for_stream(StreamName=name)
    assert [t["Key"] for t in r["Tags"]] == sorted(t["Key"] for t in r["Tags"]), "tags not sorted by key"
    kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["team", "no-such-key"])
    assert tags_of(kinesis, name) == {"env": "prod", "empty": "", "cost-center": "42"}


def test_tags_by_arn(kinesis, new_stream):
    name = new_stream()
    kinesis.add_tags_to_stream(StreamARN=arn(name), Tags={"a": "1"})
    assert tags_of(kinesis, name) == {"a": "1"}
    r = kinesis.list_tags_for_stream(StreamARN=arn(name))
    assert r["Tags"] == [{"Key": "a", "Value": "1"}]
    kinesis.remove_tags_from_stream(StreamARN=arn(name), TagKeys=["a"])
    assert tags_of(kinesis, name) == {}


def test_list_tags_paging(kinesis, new_stream):
    name = new_stream()
    keys = [f"k{i:02d}" for i in range(10)]
    kinesis.add_tags_to_stream(StreamName=name, Tags={k: k.upper() for k in keys})
    r = kinesis.list_tags_for_stream(StreamName=name, Limit=3)
    assert [t["Key"] for t in r["Tags"]] == keys[:3]
    assert r["HasMoreTags"] is True
    seen = [t["Key"] for t in r["Tags"]]
    while r["HasMoreTags"]:
        r = kinesis.list_tags_for_stream(StreamName=name, Limit=3, ExclusiveStartTagKey=seen[-1])
        seen += [t["Key"] for t in r["Tags"]]
    assert seen == keys
    r = kinesis.list_tags_for_stream(StreamName=name, ExclusiveStartTagKey="k04")
    assert [t["Key"] for t in r["Tags"]] == keys[5:]


def test_tag_limits(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    # ten tags in one call are accepted
    for batch in range(5):
        kinesis.add_tags_to_stream(StreamName=name, Tags={f"t{batch}-{i}": "v" for i in range(10)})
    assert len(tags_of(kinesis, name, Limit=50)) == 50
    # overwriting existing keys at the 50-tag limit is fine
    kinesis.add_tags_to_stream(StreamName=name, Tags={"t0-0": "new"})
    # a 51st tag is not; AWS answers InvalidArgumentException ("a given stream cannot have more
    # than 50 tags"), LimitExceededException is accepted as well
    with expect_error("InvalidArgumentException", "LimitExceededException"):
        kinesis.add_tags_to_stream(StreamName=name, Tags={"one-too-many": "v"})
    assert len(tags_of(kinesis, name, Limit=50)) == 50
    # an empty tag map is refused
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.add_tags_to_stream(StreamName=name, Tags={})
    # removing makes room again
    kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["t4-9"])
    kinesis.add_tags_to_stream(StreamName=name, Tags={"one-more": "ok"})


def test_eleven_tags_in_one_call(raw_kinesis, new_stream):
    # Sluice's spec: at most 10 tags per AddTagsToStream call. (The current AWS model allows
    # a larger map; the per-stream limit of 50 is the one AWS documents.)
    name = new_stream()
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.add_tags_to_stream(StreamName=name, Tags={f"k{i}": "v" for i in range(11)})


def test_too_many_tags_in_one_call(raw_kinesis, new_stream):
    name = new_stream()
    with expect_error("ValidationException", "InvalidArgumentException", "LimitExceededException"):
        raw_kinesis.add_tags_to_stream(StreamName=name, Tags={f"k{i}": "v" for i in range(51)})


def test_tag_key_validation(raw_kinesis, new_stream):
    name = new_stream()
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.add_tags_to_stream(StreamName=name, Tags={"k" * 129: "v"})
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.add_tags_to_stream(StreamName=name, Tags={"k": "v" * 257})
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.add_tags_to_stream(StreamName=name, Tags={"": "v"})
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.list_tags_for_stream(StreamName=name, Limit=0)
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.list_tags_for_stream(StreamName=name, Limit=51)
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.remove_tags_from_stream(StreamName=name, TagKeys=[])


# -- retention -----------------------------------------------------------------------


def retention(client, name) -> int:
    return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"]


def test_retention_increase_decrease(kinesis, new_stream):
    name = new_stream()
    assert retention(kinesis, name) == 24
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    assert retention(kinesis, name) == 48
    assert kinesis.describe_stream(StreamName=name)["StreamDescription"]["RetentionPeriodHours"] == 48
    kinesis.increase_stream_retention_period(StreamARN=arn(name), RetentionPeriodHours=8760)  # upper bound
    assert retention(kinesis, name) == 8760
    kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=100)
    assert retention(kinesis, name) == 100
    kinesis.decrease_stream_retention_period(StreamARN=arn(name), RetentionPeriodHours=24)  # lower bound
    assert retention(kinesis, name) == 24


def test_retention_bounds(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    with expect_error("InvalidArgumentException"):
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=8761)
    with expect_error("InvalidArgumentException"):
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=23)
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    with expect_error("InvalidArgumentException"):
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=23)
    with expect_error("InvalidArgumentException"):
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=8761)
    # Increase to less than current, Decrease to more than current
    with expect_error("InvalidArgumentException"):
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    with expect_error("InvalidArgumentException"):
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=96)
    assert retention(kinesis, name) == 72
    with expect_error("ResourceNotFoundException"):
        kinesis.decrease_stream_retention_period(StreamName=name + "-missing", RetentionPeriodHours=24)
