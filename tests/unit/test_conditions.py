"""components.conditions: the grammar, Azure's evaluation rules, and every refusal.

Examples are Microsoft's own (condition syntax page, Blob Storage examples, delegation
examples) wherever the pages give one, so a test failing means we read the page wrongly.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bootstrap.conditions import constrain_role_assignments
from components.conditions import (
    ConditionSyntaxError,
    RequestContext,
    parse_condition,
    validate_condition,
)
from components.errors import ConfigError
from components.roles import RoleCatalog

BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
CONTAINER_NAME = "Microsoft.Storage/storageAccounts/blobServices/containers:name"
BLOB_PATH = f"{BLOBS}:path"
TAGS = f"{BLOBS}/tags"
READ = f"{BLOBS}/read"
WRITE = f"{BLOBS}/write"
RA = "Microsoft.Authorization/roleAssignments"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"

ROLES = RoleCatalog.builtin()


def ev(text: str, **ctx: object) -> bool:
    ctx.setdefault("action", "Microsoft.Example/any/action")
    return parse_condition(text).evaluate(RequestContext(**ctx))  # type: ignore[arg-type]


def on(attribute: str, value: object, source: str = "resource") -> dict[str, object]:
    return {"action": READ, source: {attribute: value}}


# -- the shape of the API ------------------------------------------------------------------

CONTAINER_ONLY = (
    "(\n (\n  !(ActionMatches{'" + READ + "'} AND NOT SubOperationMatches{'Blob.List'})\n )\n"
    " OR\n (\n  @Resource[" + CONTAINER_NAME + "] StringEquals 'blobs-example-container'\n )\n)"
)


def test_attributes_and_actions_are_reported() -> None:
    cond = parse_condition(CONTAINER_ONLY)
    assert cond.attributes() == {("Resource", CONTAINER_NAME)}
    assert cond.actions() == {READ}
    assert cond.suboperations() == {"Blob.List"}


def test_simple_condition_targets_only_its_action() -> None:
    """Syntax page, "How a condition is evaluated"."""
    cond = parse_condition(CONTAINER_ONLY)
    inside = RequestContext(action=READ, resource={CONTAINER_NAME: "blobs-example-container"})
    outside = RequestContext(action=READ, resource={CONTAINER_NAME: "other"})
    assert cond.evaluate(inside) is True
    assert cond.evaluate(outside) is False
    # Another action is not targeted: !(ActionMatches) is true, so it is allowed.
    assert cond.evaluate(RequestContext(action=WRITE, resource={CONTAINER_NAME: "other"}))
    # List blobs is excluded by NOT SubOperationMatches{'Blob.List'}.
    assert cond.evaluate(RequestContext(action=READ, suboperation="Blob.List"))


# -- logical operators ---------------------------------------------------------------------


T = "{'a'} ForAnyOfAnyValues:StringEquals {'a'}"
F = "{'a'} ForAnyOfAnyValues:StringEquals {'x'}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{T} AND {T}", True),
        (f"{T} && {F}", False),
        (f"{F} OR {T}", True),
        (f"{F} || {F}", False),
        (f"NOT {T}", False),
        (f"!({F})", True),
        (f"({F} OR {T}) AND {T}", True),
        (f"{F} AND ({F} OR {T})", False),
    ],
)
def test_logical_operators(text: str, expected: bool) -> None:
    assert ev(text) is expected


def test_and_or_mixed_without_parentheses_is_a_syntax_error_at_the_second_connective() -> None:
    """Syntax page, "Grouping and precedence": a AND b OR c must be parenthesized."""
    text = (
        "@Resource[" + CONTAINER_NAME + "] StringEquals 'a'\nAND @Resource[" + BLOB_PATH + "]"
        " StringEquals 'b'\nOR @Resource[" + CONTAINER_NAME + "] StringEquals 'c'"
    )
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert (info.value.line, info.value.column) == (3, 1)
    assert "parentheses" in info.value.message


def test_action_matches_wildcard() -> None:
    """Syntax page, ActionMatches examples."""
    assert ev("ActionMatches{'Microsoft.Authorization/roleAssignments/*'}", action=f"{RA}/write")
    assert not ev(
        "ActionMatches{'Microsoft.Authorization/roleDefinitions/*'}", action=f"{RA}/write"
    )


def test_suboperation_matches_and_the_legacy_request_suboperation_form() -> None:
    new = f"!(ActionMatches{{'{READ}'}} AND SubOperationMatches{{'Blob.List'}})"
    old = (
        f"!(ActionMatches{{'{READ}'}} AND @Request[subOperation] "
        "ForAnyOfAnyValues:StringEqualsIgnoreCase {'Blob.List'})"
    )
    for text in (new, old):
        assert ev(text, action=READ, suboperation="Blob.List") is False
        assert ev(text, action=READ, suboperation=None) is True


def test_exists() -> None:
    """Syntax page, Exists / NOT Exists on the Request's version ID."""
    version = f"{BLOBS}:versionId"
    assert ev(
        f"Exists @Request[{version}]", action=READ, request={version: "2022-06-01T00:00:00.0Z"}
    )
    assert not ev(f"Exists @Request[{version}]", action=READ)
    assert ev(f"NOT Exists @Request[{version}]", action=READ)


# -- comparison families -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "pattern", "expected"),
    [
        ("StringEquals", "Cascade", "Cascade", True),
        ("StringEquals", "cascade", "Cascade", False),
        ("StringEqualsIgnoreCase", "cascade", "Cascade", True),
        ("StringNotEquals", "Baker", "Cascade", True),
        ("StringNotEqualsIgnoreCase", "CASCADE", "cascade", False),
        ("StringStartsWith", "readonly/a.txt", "readonly/", True),
        ("StringStartsWithIgnoreCase", "ReadOnly/a.txt", "readonly/", True),
        ("StringNotStartsWith", "readonly/a.txt", "readonly/", False),
        ("StringNotStartsWithIgnoreCase", "other/a.txt", "READONLY/", True),
        ("StringLike", "abcd", "a*c?", True),  # the page's examples
        ("StringLike", "abcd", "A*C?", False),
        ("StringLike", "abcd", "a*c", False),
        ("StringLikeIgnoreCase", "abcd", "A*C?", True),
        ("StringNotLike", "abcd", "a*c", True),
        ("StringNotLikeIgnoreCase", "abcd", "A*C?", False),
        ("StringLike", "a*b", "a\\*b", True),  # \* is a literal asterisk
        ("StringLike", "axb", "a\\*b", False),
    ],
)
def test_string_operators(operator: str, value: str, pattern: str, expected: bool) -> None:
    text = f"@Resource[{BLOB_PATH}] {operator} '{pattern}'"
    assert ev(text, **on(BLOB_PATH, value)) is expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("NumericEquals", 5, True),
        ("NumericNotEquals", 5, False),
        ("NumericLessThan", 4, True),
        ("NumericLessThanEquals", 5, True),
        ("NumericGreaterThan", 5, False),
        ("NumericGreaterThanEquals", 6, True),
    ],
)
def test_numeric_operators(operator: str, value: int, expected: bool) -> None:
    assert ev(f"@Resource[n] {operator} 5", resource={"n": value}) is expected


def test_numeric_literals_must_be_integers() -> None:
    with pytest.raises(ConditionSyntaxError, match="not an integer"):
        parse_condition("@Resource[n] NumericEquals '5.5'")


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("BoolEquals true", True, True),
        ("BoolEquals true", False, False),
        ("BoolNotEquals true", False, True),
        ("BoolEquals FALSE", False, True),
    ],
)
def test_boolean_operators(text: str, value: bool, expected: bool) -> None:
    hns = "Microsoft.Storage/storageAccounts:isHnsEnabled"
    assert ev(f"@Resource[{hns}] {text}", resource={hns: value}) is expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("DateTimeEquals", "2022-06-01T00:00:00.0Z", True),
        ("DateTimeEquals", "2022-06-01T00:00:00.0000001Z", False),  # full precision: 7 digits
        ("DateTimeNotEquals", "2022-06-01T00:00:00.0000001Z", True),
        ("DateTimeGreaterThan", "2022-06-01T00:00:00.0000001Z", True),
        ("DateTimeGreaterThanEquals", "2022-06-01T00:00:00.0Z", True),
        ("DateTimeLessThan", "2022-05-31T23:59:59.9999999Z", True),
        ("DateTimeLessThanEquals", "2022-06-01T00:00:01.0Z", False),
    ],
)
def test_datetime_operators(operator: str, value: str, expected: bool) -> None:
    version = f"{BLOBS}:versionId"
    text = f"@Request[{version}] {operator} '2022-06-01T00:00:00.0Z'"
    assert ev(text, action=READ, request={version: value}) is expected


def test_datetime_attribute_may_be_an_aware_datetime() -> None:
    now = datetime(2023, 3, 30, tzinfo=UTC)
    assert ev(
        "@Environment[UtcNow] DateTimeGreaterThan '2023-03-29T22:03:00.0Z'",
        environment={"UtcNow": now},
    )


def test_datetime_literal_format_is_checked() -> None:
    with pytest.raises(ConditionSyntaxError, match="yyyy-mm-ddThh:mm:ss"):
        parse_condition("@Environment[UtcNow] DateTimeGreaterThan '2023-03-29'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"GuidEquals {SECRETS_USER.upper()}", True),  # GUIDs compare without regard to case
        (f"GuidNotEquals {SECRETS_USER}", False),
        (f"GuidEquals '{OWNER}'", False),
        (f"ForAnyOfAnyValues:GuidEquals {{{OWNER}, {SECRETS_USER}}}", True),
        (f"ForAnyOfAnyValues:GuidNotEquals {{{SECRETS_USER}}}", False),
    ],
)
def test_guid_operators(text: str, expected: bool) -> None:
    attr = f"{RA}:RoleDefinitionId"
    assert ev(f"@Request[{attr}] {text}", request={attr: SECRETS_USER}) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # every row is an example on the syntax page
        ("{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'blue', 'green'}", True),
        ("{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'orange', 'green'}", False),
        ("{'red', 'blue'} ForAllOfAnyValues:StringEquals {'orange', 'red', 'blue'}", True),
        ("{'red', 'blue'} ForAllOfAnyValues:StringEquals {'red', 'green'}", False),
        ("{10, 20} ForAnyOfAllValues:NumericLessThan {15, 18}", True),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {5, 15, 18}", False),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {25, 30}", True),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {15, 25, 30}", False),
    ],
)
def test_cross_product_operators(text: str, expected: bool) -> None:
    assert ev(text) is expected


def test_blob_index_tags_values_and_keys() -> None:
    """Blob attributes page: tags:<key><$key_case_sensitive$> and tags&$keys$&."""
    value = f"@Resource[{TAGS}:Project<$key_case_sensitive$>] StringEquals 'Cascade'"
    keys = f"@Resource[{TAGS}&$keys$&] ForAllOfAnyValues:StringEquals {{'Project', 'Program'}}"
    assert ev(value, **on(TAGS, {"Project": "Cascade"}))
    assert not ev(value, **on(TAGS, {"project": "Cascade"}))  # the key is case-sensitive
    assert not ev(value, **on(TAGS, {}))  # a blob without the tag is not read
    assert ev(keys, **on(TAGS, {"Project": "x", "Program": "y"}))
    assert not ev(keys, **on(TAGS, {"Project": "x", "Mode": "Baker"}))  # example 3's refusal
    assert not ev(keys, **on(TAGS, {}))


def test_an_attribute_the_request_does_not_carry_fails_the_check_in_either_operand_order() -> None:
    """Blob attributes page: the operation "cannot evaluate this condition, and will fail"."""
    tag = f"@Request[{TAGS}:Project<$key_case_sensitive$>] StringEquals 'Cascade'"
    targeted = f"(!(ActionMatches{{'{WRITE}'}})) OR ({tag})"
    swapped = f"({tag}) OR (!(ActionMatches{{'{WRITE}'}}))"
    for text in (targeted, swapped):
        assert ev(text, action=WRITE) is False  # the write carries no tags: denied
        assert ev(text, action=READ) is True  # not targeted: allowed, attribute irrelevant
        assert ev(f"NOT ({text})", action=WRITE) is False  # unavailable is not flipped to true


def test_operator_names_are_case_insensitive_and_attribute_names_too() -> None:
    assert ev(
        f"@Resource[{CONTAINER_NAME.upper()}] stringEquals 'a'", resource={CONTAINER_NAME: "a"}
    )


# -- syntax errors carry line and column -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("@Resource[x] StringEqual 'a'", 1, 14, "did you mean StringEquals"),
        ("(\n  @Resource[x] StringEquals 'a'\n", 3, 1, "ends early"),
        ('@Resource[x] StringEquals "a"', 1, 27, "single quotes"),
        ("@Resource[x] StringEquals {'a', 'b'}", 1, 28, "ForAnyOfAnyValues:StringEquals"),
        ("@Resource[x] ForSomeValues:StringEquals {'a'}", 1, 14, "cross-product prefix"),
        ("@Resource[x] ForAnyOfAnyValues:BoolEquals {true}", 1, 14, "string, numeric and GUID"),
        ("@Resource[x] GuidEquals 'not-a-guid'", 1, 25, "not a GUID"),
        ("@Resource[x] BoolEquals 'yes'", 1, 25, "not a Boolean"),
        ("ActionMatches{'a'} AND", 1, 23, "ends early"),
        ("@Somewhere[x] StringEquals 'a'", 1, 1, "unexpected character"),
        ("", 1, 1, "empty"),
    ],
)
def test_syntax_errors(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert (info.value.line, info.value.column) == (line, column), info.value
    assert message in info.value.message


# -- validation: every refusal reason ----------------------------------------------------------

READER = ROLES.get("Storage Blob Data Reader")
QUEUE_READER = ROLES.get("Storage Queue Data Reader")
RBAC_ADMIN = ROLES.get("Role Based Access Control Administrator")


def test_valid_conditions_are_returned_parsed() -> None:
    assert validate_condition(READER, CONTAINER_ONLY, "2.0") is not None
    assert validate_condition(READER, CONTAINER_ONLY, None) is not None  # 2.0 is the default
    assert validate_condition(READER, None, None) is None
    queue = (
        "((!(ActionMatches{'Microsoft.Storage/storageAccounts/queueServices/queues/messages/read'}))"
        " OR (@Resource[Microsoft.Storage/storageAccounts/queueServices/queues:name]"
        " StringEquals 'q1'))"
    )
    assert validate_condition(QUEUE_READER, queue, "2.0") is not None


def test_the_bootstrap_delegation_condition_validates_on_rbac_administrator() -> None:
    text = constrain_role_assignments([SECRETS_USER, "21090545-7ca7-4776-b22c-e363652d74d2"])
    cond = validate_condition(RBAC_ADMIN, text, "2.0")
    assert cond is not None
    assert cond.actions() == {f"{RA}/write", f"{RA}/delete"}


def test_refuses_a_condition_on_a_key_vault_role_with_arms_reason() -> None:
    with pytest.raises(ConfigError) as info:
        validate_condition(
            ROLES.get("Key Vault Secrets User"), "@Resource[x] StringEquals 'a'", None
        )
    assert info.value.field == "condition"
    assert "The given role assignment condition is invalid" in info.value.problem
    assert "secret:<name>" in info.value.fix


def test_refuses_condition_version_other_than_2() -> None:
    with pytest.raises(ConfigError) as info:
        validate_condition(READER, CONTAINER_ONLY, "1.0")
    assert info.value.field == "condition_version"
    assert info.value.value == "1.0"
    with pytest.raises(ConfigError, match="without a condition"):
        validate_condition(READER, None, "2.0")


def test_refuses_syntax_errors_with_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        validate_condition(
            READER, "(\n @Resource[" + CONTAINER_NAME + "] StringEquals 'a' AND\n)", None
        )
    assert "line 3, column 1" in info.value.problem


def test_refuses_an_attribute_the_targeted_action_does_not_have() -> None:
    listing = (
        f"((!(ActionMatches{{'{READ}'}} AND SubOperationMatches{{'Blob.List'}}))"
        f" OR (@Resource[{BLOB_PATH}] StringLike 'readonly/*'))"
    )
    with pytest.raises(
        ConfigError, match=r"does not exist for .*blobs/read with suboperation Blob\.List"
    ):
        validate_condition(READER, listing, None)
    request_tags_on_read = (
        f"((!(ActionMatches{{'{READ}'}})) OR (@Request[{TAGS}:Project<$key_case_sensitive$>] "
        "StringEquals 'x'))"
    )
    with pytest.raises(ConfigError, match="does not exist for"):
        validate_condition(READER, request_tags_on_read, None)


def test_refuses_an_unknown_attribute_with_close_matches() -> None:
    text = (
        f"((!(ActionMatches{{'{READ}'}})) OR (@Resource[{CONTAINER_NAME[:-1]}] StringEquals 'a'))"
    )
    with pytest.raises(ConfigError, match=r"did you mean .*containers:name"):
        validate_condition(READER, text, None)


def test_refuses_an_operator_the_attribute_type_does_not_take() -> None:
    text = f"((!(ActionMatches{{'{READ}'}})) OR (@Resource[{CONTAINER_NAME}] NumericEquals 5))"
    with pytest.raises(ConfigError, match="of type String"):
        validate_condition(READER, text, None)
    with pytest.raises(ConfigError, match="supports only DateTimeGreaterThan"):
        validate_condition(
            READER, "@Environment[UtcNow] DateTimeEquals '2023-03-29T22:03:00.0Z'", None
        )


def test_refuses_an_action_target_no_condition_supports() -> None:
    text = (
        "((!(ActionMatches{'Microsoft.KeyVault/vaults/secrets/getSecret/action'})) OR "
        f"(@Resource[{CONTAINER_NAME}] StringEquals 'a'))"
    )
    with pytest.raises(ConfigError, match="no Blob, Queue or role-assignment condition supports"):
        validate_condition(READER, text, None)


def test_an_attribute_may_be_compared_with_another_attribute() -> None:
    """Microsoft's "Allow read access to blobs based on tags and custom security
    attributes": a blob tag compared with the principal's custom security attribute."""
    text = (
        f"((!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR "
        f"(@Resource[{TAGS}:Project<$key_case_sensitive$>] StringEquals "
        "@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project]))"
    )
    cond = validate_condition(READER, text, None)
    assert cond is not None
    attribute = "Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project"
    tags = {TAGS: {"Project": "Baker"}}
    assert cond.evaluate(RequestContext(READ, resource=tags, principal={attribute: "Baker"}))
    assert not cond.evaluate(RequestContext(READ, resource=tags, principal={attribute: "Cascade"}))
    assert not cond.evaluate(RequestContext(READ, resource=tags))  # no attribute: denied
