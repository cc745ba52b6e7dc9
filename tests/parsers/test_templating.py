import base64
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.templating import (
    _ID_MASK,
    EndpointTemplater,
    _classify,
    _decimal_from,
    _id_shape,
    _looks_like_token,
    _typed_placeholder,
)

NAMES = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "uma", "victor", "walter",
    "xavier", "yolanda", "zoe", "quentin", "laura",
]  # fmt: skip
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def template_one(path: str) -> str:
    return EndpointTemplater().template(path)


def test_spec_example_templates_id_and_uuid():
    path = "/api/v1/users/123/orders/550e8400-e29b-41d4-a716-446655440000"
    assert template_one(path) == "/api/v1/users/{id}/orders/{uuid}"


@pytest.mark.parametrize("value", ["0", "123", "007", "-7", "+42", "18446744073709551616", "20240131"])
def test_integers_signed_and_compact_dates_become_id(value):
    assert template_one(f"/users/{value}") == "/users/{id}"


@pytest.mark.parametrize(
    "value", ["550e8400-e29b-41d4-a716-446655440000", "550E8400-E29B-41D4-A716-446655440000"]
)
def test_uuid_in_any_case_becomes_uuid(value):
    assert template_one(f"/orders/{value}") == "/orders/{uuid}"


@pytest.mark.parametrize(
    "value", ["deadbeefcafebabe", "5F3A9C0D1E2B4A6C8D0E", "0xdeadbeefcafebabe01", "0X0123456789abcdef"]
)
def test_hex_of_16_or_more_digits_with_optional_0x_becomes_hex(value):
    assert template_one(f"/blobs/{value}") == "/blobs/{hex}"


def test_hex_of_15_digits_stays_literal():
    assert template_one("/blobs/deadbeefcafebab") == "/blobs/deadbeefcafebab"


def test_all_digit_hex_length_string_is_id_not_hex():
    assert template_one("/blobs/1234567890123456") == "/blobs/{id}"


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-31",
        "1999-12-01",
        "2024-01-31T10:00:00Z",
        "2024-01-31T10%3A00%3A00.123%2B01%3A00",
        "2024-02-29T23:59",
    ],
)
def test_iso_dates_and_datetimes_become_date(value):
    assert template_one(f"/reports/{value}") == "/reports/{date}"


@pytest.mark.parametrize("value", ["2024-13-01", "2024-00-10", "2024-01-32", "24-01-31"])
def test_date_with_impossible_month_or_day_is_not_date(value):
    assert template_one(f"/reports/{value}") == f"/reports/{value}"


@pytest.mark.parametrize("value", ["alice@example.com", "alice%40example.com", "a.b+tag@mail.example.co.uk"])
def test_emails_plain_or_percent_encoded_become_email(value):
    assert template_one(f"/users/{value}/profile") == "/users/{email}/profile"


def test_email_without_domain_dot_stays_literal():
    assert template_one("/users/alice@localhost") == "/users/alice@localhost"


@pytest.mark.parametrize(
    "value",
    [
        JWT,
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "dGhpcyBpcyBhIHRlc3Q0MTIz",
        "aZ3kQ9xP2mL7vB4nR8tY",
        "k3j5h6g7f8d9s0a1q2w3e4r5",
        "Zm9vYmFyMTIzNDU2Nzg5MA%3D%3D",
    ],
)
def test_long_random_strings_with_letters_and_digits_become_token(value):
    endpoint = template_one(f"/reset/{value}")
    assert endpoint == "/reset/{token}"


def test_random_base64url_tokens_of_43_chars_all_become_token():
    rng = random.Random(0)
    tokens = [base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=") for _ in range(1000)]
    templater = EndpointTemplater(learn_min_distinct=2000, max_values_per_position=2000)
    assert [token for token in tokens if templater.template(f"/reset/{token}") != "/reset/{token}"] == []


@pytest.mark.parametrize(
    "value",
    [
        "getUserProfileSettings2",
        "python-3-12-release-notes",
        "oauth2-authorization-callback",
        "sha256-checksum-verification",
        "Win32ApplicationManifest",
        "k8s-cluster-health-check",
        "top-10-products-of-2023",
        "list_all_invoices_for_account",
    ],
)
def test_long_word_built_segments_are_not_tokens(value):
    assert template_one(f"/docs/{value}") == f"/docs/{value}"


def test_short_mixed_segment_is_not_token():
    assert template_one("/docs/aZ3kQ9xP2mL7vB4n") == "/docs/aZ3kQ9xP2mL7vB4n"


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/orders/123.json", "/orders/{id}.json"),
        ("/orders/123.csv", "/orders/{id}.csv"),
        ("/files/550e8400-e29b-41d4-a716-446655440000.tar", "/files/{uuid}.tar"),
        ("/reports/2024-01-31.pdf", "/reports/{date}.pdf"),
        ("/blobs/deadbeefcafebabe.bin", "/blobs/{hex}.bin"),
    ],
)
def test_value_with_short_extension_keeps_the_extension(path, endpoint):
    assert template_one(path) == endpoint


@pytest.mark.parametrize("value", ["report.pdf", "1.5", "123.toolongext", "v1.2", "backup.2024"])
def test_other_dotted_segments_stay_literal(value):
    assert template_one(f"/files/{value}") == f"/files/{value}"


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("", "/"),
        ("/", "/"),
        ("/users/", "/users/"),
        ("/users/123/", "/users/{id}/"),
        ("users/123", "/users/{id}"),
        ("//users//123", "//users//{id}"),
        ("*", "*"),
    ],
)
def test_slashes_are_preserved_and_empty_path_is_root(path, endpoint):
    assert template_one(path) == endpoint


def test_query_string_is_dropped_so_its_values_never_reach_the_endpoint():
    assert template_one("/search?q=secret&page=2") == "/search"


def test_literal_keeps_its_percent_encoding_and_encoded_slash_does_not_split():
    assert template_one("/files/a%2Fb/caf%C3%A9") == "/files/a%2Fb/caf%C3%A9"


def test_twentieth_distinct_name_and_later_ones_become_param():
    templater = EndpointTemplater()
    endpoints = [templater.template(f"/users/{name}") for name in NAMES[:21]]
    assert endpoints[:19] == [f"/users/{name}" for name in NAMES[:19]]
    assert endpoints[19:] == ["/users/{param}", "/users/{param}"]
    assert templater.template("/users/alice") == "/users/{param}"
    assert templater.template("/users/someone-new/orders") == "/users/{param}/orders"


def test_nineteen_distinct_names_do_not_learn():
    templater = EndpointTemplater()
    for name in NAMES[:19]:
        templater.template(f"/users/{name}")
    assert templater.template("/users/alice") == "/users/alice"


def test_repeats_of_one_value_count_once():
    templater = EndpointTemplater()
    for _ in range(1000):
        templater.template("/api/health")
    for name in NAMES[:18]:
        templater.template(f"/api/{name}")
    assert templater.template("/api/health") == "/api/health"
    assert templater.template("/api/status") == "/api/{param}"


def test_learn_min_distinct_sets_the_threshold():
    templater = EndpointTemplater(learn_min_distinct=3)
    assert [templater.template(f"/users/{name}") for name in NAMES[:4]] == [
        "/users/alice",
        "/users/bob",
        "/users/{param}",
        "/users/{param}",
    ]


def test_values_under_different_prefixes_are_counted_apart():
    templater = EndpointTemplater()
    for name in NAMES[:10]:
        templater.template(f"/users/{name}")
        templater.template(f"/teams/{name}")
    assert templater.template("/users/alice") == "/users/alice"
    assert templater.template("/teams/alice") == "/teams/alice"


def test_first_segment_never_becomes_param():
    templater = EndpointTemplater()
    for name in NAMES:
        templater.template(f"/{name}")
    assert templater.template("/api") == "/api"
    assert templater.template("/wp-admin") == "/wp-admin"


def test_version_segments_never_become_param():
    templater = EndpointTemplater(learn_min_distinct=2)
    assert [templater.template(f"/api/{version}/users") for version in ["v1", "v2", "v3", "V10", "v2.1"]] == [
        "/api/v1/users",
        "/api/v2/users",
        "/api/v3/users",
        "/api/V10/users",
        "/api/v2.1/users",
    ]


def test_learning_deeper_positions_uses_the_templated_prefix():
    templater = EndpointTemplater()
    for user_id, name in enumerate(NAMES[:20]):
        templater.template(f"/users/{user_id}/repos/{name}")
    assert templater.template("/users/999/repos/anything") == "/users/{id}/repos/{param}"


def test_children_of_different_param_values_are_learned_together():
    templater = EndpointTemplater()
    for name in NAMES[:20]:
        templater.template(f"/users/{name}")
    endpoints = [templater.template(f"/users/{name}/files/notes-{name}") for name in NAMES[:20]]
    assert endpoints[18:] == ["/users/{param}/files/notes-victor", "/users/{param}/files/{param}"]


def test_placeholders_do_not_count_towards_learning():
    templater = EndpointTemplater()
    for user_id in range(100):
        templater.template(f"/users/{user_id}")
    assert templater.template("/users/me") == "/users/me"


def test_cached_path_is_retemplated_after_its_position_learns():
    templater = EndpointTemplater()
    assert templater.template("/users/alice/orders") == "/users/alice/orders"
    for name in NAMES[1:20]:
        templater.template(f"/users/{name}")
    assert templater.template("/users/alice/orders") == "/users/{param}/orders"


def test_new_prefixes_are_not_learned_once_prefix_table_is_full():
    templater = EndpointTemplater(max_tracked_prefixes=1)
    users = [templater.template(f"/users/{name}") for name in NAMES]
    teams = [templater.template(f"/teams/{name}") for name in NAMES]
    assert users[-1] == "/users/{param}"
    assert teams == [f"/teams/{name}" for name in NAMES]


def test_zero_tracked_prefixes_disables_learning():
    templater = EndpointTemplater(max_tracked_prefixes=0)
    assert [templater.template(f"/users/{name}") for name in NAMES][-1] == "/users/laura"


def test_learn_threshold_above_stored_values_is_rejected():
    with pytest.raises(ValueError, match="max_values_per_position"):
        EndpointTemplater(learn_min_distinct=65, max_values_per_position=64)


def test_learn_threshold_below_two_is_rejected():
    with pytest.raises(ValueError, match="learn_min_distinct"):
        EndpointTemplater(learn_min_distinct=1)


def _mixed_paths() -> list[str]:
    rng = random.Random(3)
    paths = []
    for _ in range(3000):
        name = rng.choice(NAMES)
        paths.append(
            rng.choice(
                [
                    f"/users/{name}",
                    f"/users/{name}/orders/{rng.randint(1, 50)}",
                    f"/teams/{name}/members/{rng.choice(NAMES)}",
                    f"/api/v1/items/{rng.randint(1, 10)}.json",
                    "/api/v1/health",
                ]
            )
        )
    return paths


def test_same_input_order_gives_same_output():
    paths = _mixed_paths()
    templater_a, templater_b = EndpointTemplater(), EndpointTemplater()
    assert [templater_a.template(path) for path in paths] == [templater_b.template(path) for path in paths]


@pytest.mark.parametrize("cache_size", [1, 7, 4096])
def test_cache_never_changes_the_output(cache_size):
    paths = _mixed_paths()
    uncached = EndpointTemplater(learn_min_distinct=5, cache_size=0)
    cached = EndpointTemplater(learn_min_distinct=5, cache_size=cache_size)
    assert [cached.template(path) for path in paths] == [uncached.template(path) for path in paths]


def test_parent_paths_remembered_give_the_same_endpoints_as_no_memory_at_all() -> None:
    """Paths that differ only in their last segment reuse their parent's templated segments; learning (which
    changes templates) must still show, in the same order, as in a templater that remembers nothing."""
    generator = random.Random(7)
    words = ["users", "orders", "items", "export", "v1", "api", "me", "search", "Users"]
    paths = []
    for number in range(3000):
        depth = generator.randint(1, 4)
        segments = [generator.choice(words) for _ in range(depth)]
        if generator.random() < 0.6:
            segments.append(generator.choice([str(number), f"sku-{number % 37}", f"name{number % 23}", "", "x.json"]))
        lead = "" if generator.random() < 0.05 else "/"
        paths.append(lead + "/".join(segments) + ("?q=1" if generator.random() < 0.1 else ""))
    remembering = EndpointTemplater(learn_min_distinct=5)
    forgetting = EndpointTemplater(learn_min_distinct=5, cache_size=0)
    assert [remembering.template(path) for path in paths] == [forgetting.template(path) for path in paths]
    assert any("{param}" in remembering.template(path) for path in paths)  # learning happened on the way


def test_paths_with_ids_anywhere_remembered_by_shape_give_the_same_endpoints_as_no_memory_at_all() -> None:
    """Paths that differ only in their all-digit segments share one endpoint, remembered by the path with those
    segments masked; learning must still show, in the same order, as in a templater that remembers nothing."""
    generator = random.Random(11)
    words = ["users", "orders", "items", "v1", "api", "export", "Items", "\x00", "٣٤", "-5", "7.json"]
    paths = []
    for number in range(4000):
        segments = []
        for _ in range(generator.randint(1, 5)):
            roll = generator.random()
            if roll < 0.35:
                segments.append(str(generator.randint(0, 10**6)))
            elif roll < 0.45:
                segments.append(f"w{number % 29}")  # enough distinct literals to learn
            else:
                segments.append(generator.choice(words))
        lead = "" if generator.random() < 0.05 else "/"
        trail = "/" if generator.random() < 0.1 else ""
        paths.append(lead + "/".join(segments) + trail)
    remembering = EndpointTemplater(learn_min_distinct=6)
    forgetting = EndpointTemplater(learn_min_distinct=6, cache_size=0)
    assert [remembering.template(path) for path in paths] == [forgetting.template(path) for path in paths]
    assert any("{param}" in remembering.template(path) for path in paths)
    assert len(remembering._shapes) > 0  # the shapes were used on the way


def test_paths_with_an_id_last_are_one_lookup_by_parent_and_learning_still_shows() -> None:
    """A path whose last segment is all digits takes its parent's id endpoint, remembered by the parent (not by
    the path, which the path cache no longer holds); a position that learns afterwards empties that table too."""
    templater = EndpointTemplater(learn_min_distinct=3)
    assert templater.template("/shop/red/1") == "/shop/red/{id}"
    assert templater.template("/shop/red/2") == "/shop/red/{id}"
    assert templater._id_endpoints.get("/shop/red") == "/shop/red/{id}" and len(templater._cache) == 0
    templater.template("/shop/green/1")
    assert templater.template("/shop/blue/1") == "/shop/{param}/{id}"  # the third distinct value: learned
    assert templater.template("/shop/red/3") == "/shop/{param}/{id}"
    assert templater.template("/shop/red/٣") == "/shop/{param}/{id}"  # any decimal digits, as the rules say
    assert templater.template("/shop/red/3?page=/4") == "/shop/{param}/{id}"  # the query is still dropped
    assert templater.template("/shop/red/3x") == "/shop/{param}/3x"


def test_paths_of_one_endpoint_share_one_endpoint_string_and_the_table_is_bounded() -> None:
    """The detectors code a batch's endpoints by dict lookups, which find a shared str by its address."""
    templater = EndpointTemplater(cache_size=4)
    first, second = templater.template("/api/v1/users/17"), templater.template("/api/v1/users/18")
    assert first == "/api/v1/users/{id}" and second is first
    for n in range(20):
        templater.template(f"/api/v{n}/orders")
    assert 0 < len(templater._endpoints) <= 4
    assert templater.template("/api/v1/users/19") == "/api/v1/users/{id}"


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("/0123456789ab.-_%\u0660\u0661\uff11\u00b2")), max_size=24))
def test_id_shape_masks_what_the_expression_masks(path: str) -> None:
    """Each whole segment of decimal digits after a "/" (Arabic-Indic and fullwidth digits too, not superscripts,
    which are digits but not decimal) is masked, exactly as the expression it replaced masks them."""
    assert _id_shape(path) == re.sub(r"(?<=/)\d+(?=/|\Z)", _ID_MASK, path)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789ab.+-%\u0660\u0661\uff11\u00b2")), max_size=24))
def test_a_segment_of_decimal_digits_takes_the_id_the_rules_give(segment: str) -> None:
    """`_classify` names a segment of decimal digits `{id}` before trying the rules (Arabic-Indic and fullwidth digits
    too, not superscripts): what the rules' expression, whose `\\d` is the decimal digits, gives it."""
    by_rules = _typed_placeholder(segment) or ("{token}" if _looks_like_token(segment) else None)
    if segment.isdecimal():
        assert _classify(segment) == by_rules == "{id}"
    elif "%" not in segment and "." not in segment:  # no decoding, no extension: the rules alone
        assert _classify(segment) == by_rules


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789/٣x ²", max_size=12), st.integers(0, 14))
def test_decimal_from_is_isdecimal_of_the_tail(text, start) -> None:
    assert _decimal_from(text, start) == text[start:].isdecimal()
