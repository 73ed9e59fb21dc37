"""Roles, keys and object-level rules of the gateway, without HTTP."""
import pytest

from services.gateway import auth


class FakeRequest:
    def __init__(self, headers):
        self.headers = headers


@pytest.fixture
def accounts(mongo, config):
    return mongo[f"{config['DB_PREFIX']}gateway"]["accounts"]


def test_a_key_authenticates_its_account_and_only_a_hash_is_stored(accounts):
    key = auth.new_key(accounts, "天生街道值班", "unit", unit_id="street.tianshengjie")
    principal = auth.authenticate(accounts, key)
    assert principal.role == "unit" and principal.unit_id == "street.tianshengjie"
    stored = accounts.find_one({"_id": principal.key_id})
    assert key.split("_", 2)[2] not in str(stored)


@pytest.mark.parametrize("bad", [None, "", "nonsense", "dcg_abc_def", "dcg__"])
def test_missing_or_wrong_keys_are_refused(accounts, bad):
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(accounts, bad)


def test_a_revoked_or_tampered_key_is_refused(accounts):
    key = auth.new_key(accounts, "admin", "admin")
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(accounts, key[:-1] + ("A" if key[-1] != "A" else "B"))
    accounts.update_many({}, {"$set": {"revoked": True}})
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(accounts, key)


def test_key_is_read_from_bearer_or_x_api_key():
    assert auth.key_from_request(FakeRequest({"Authorization": "Bearer dcg_a_b"})) == "dcg_a_b"
    assert auth.key_from_request(FakeRequest({"X-API-Key": "dcg_c_d"})) == "dcg_c_d"
    assert auth.key_from_request(FakeRequest({})) is None


def test_roles_and_object_level_rules():
    unit = auth.Principal("k1", "天生街道", "unit", unit_id="street.tianshengjie")
    police = auth.Principal("k2", "公安", "partner", department="police")
    leader = auth.Principal("k3", "领导", "leader")
    assert auth.may_see_case(unit, "street.tianshengjie")
    assert not auth.may_see_case(unit, "street.beiquan")
    assert not auth.may_see_case(police, "street.tianshengjie")
    assert auth.may_see_case(leader, "street.beiquan")
    assert auth.may_see_operation(police, ["police", "environment"])
    assert not auth.may_see_operation(police, ["environment"])
    assert auth.may_see_operation(unit, ["police"], units=["street.tianshengjie"])
    assert not auth.may_see_operation(unit, ["police"], units=["street.beiquan"])
    with pytest.raises(auth.Forbidden):
        auth.require(leader, *auth.ACT_ON_CASES)


def test_accounts_need_their_unit_or_department(accounts):
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "unit")
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "partner")
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "superuser")


def test_rate_limiter_allows_bursts_then_refills():
    limiter = auth.RateLimiter(rate=2, burst=3)
    assert [limiter.allow("1.2.3.4", now=0)[0] for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("5.6.7.8", now=0)[0]                    # per client
    allowed, retry_after = limiter.allow("1.2.3.4", now=0.1)
    assert not allowed and retry_after == pytest.approx(0.4, abs=0.01)   # 0.2 tokens; 0.8 more at 2/s
    assert limiter.allow("1.2.3.4", now=0.6)[0]                  # refilled at 2/s
