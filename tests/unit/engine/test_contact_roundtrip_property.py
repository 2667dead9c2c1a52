"""Round trip of contacts (property, Hypothesis): a QBO customer with any mix of names, e-mail,
phone and address (with the lines and state only QBO holds) reaches Re-Leased field by field under
the canonical mapping (docs/mapping.md), and a Re-Leased edit of its address comes back with what
only QBO holds kept."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.engine.world import World

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=12).map(str.strip)
TEXT = st.one_of(st.none(), WORD.filter(bool))
ADDRESS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "Line1": TEXT,
            "Line2": TEXT,
            "City": TEXT,
            "CountrySubDivisionCode": st.one_of(st.none(), st.sampled_from(["NY", "TX", "AKL"])),
            "PostalCode": st.one_of(st.none(), st.from_regex(r"\A[0-9]{4,5}\Z")),
            "Country": st.one_of(st.none(), st.sampled_from(["US", "NZ", "GB"])),
        }
    ),
)
CUSTOMER = st.fixed_dictionaries(
    {
        "GivenName": TEXT,
        "FamilyName": TEXT,
        "email": st.one_of(st.none(), st.from_regex(r"\A[a-z]{1,8}@[a-z]{1,8}\.example\Z")),
        "phone": st.one_of(st.none(), st.from_regex(r"\A0[0-9]{7,9}\Z")),
        "BillAddr": ADDRESS,
    }
)


def clean(address: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (address or {}).items() if v}


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(customer=CUSTOMER)
async def test_a_customer_survives_the_trip_both_ways(customer: dict[str, Any]) -> None:
    world = World()
    body: dict[str, Any] = {"DisplayName": "Tenant Q"}
    for key in ("GivenName", "FamilyName"):
        if customer[key]:
            body[key] = customer[key]
    if customer["email"]:
        body["PrimaryEmailAddr"] = {"Address": customer["email"]}
    if customer["phone"]:
        body["PrimaryPhone"] = {"FreeFormNumber": customer["phone"]}
    address = clean(customer["BillAddr"])
    if address:
        body["BillAddr"] = address
    made = world.qbo.seed("Customer", **body)
    result = await world.from_qbo("customer", made["Id"])
    assert result.outcome == "applied", result
    rl_id = str(result.target_id)
    contact = await world.released.get(f"/contacts/{rl_id}")
    assert (contact["firstName"], contact["lastName"]) == (
        customer["GivenName"] or None,
        customer["FamilyName"] or None,
    )
    assert contact.get("email") == customer["email"]
    assert [p["number"] for p in contact.get("phones") or []] == (
        [customer["phone"]] if customer["phone"] else []
    )
    shared = {"Line1": "line1", "City": "city", "PostalCode": "postalCode", "Country": "country"}
    wanted = {shared[k]: v for k, v in address.items() if k in shared}
    got = [{k: v for k, v in a.items() if k != "type"} for a in contact.get("addresses") or []]
    assert got == ([wanted] if wanted else [])
    # Re-Leased moves the tenant: a new first line and city; QBO keeps its second line and state.
    moved = {"type": "POSTAL", **wanted, "line1": "9 New Rd", "city": "Napier"}
    world.released.edit("/contacts", rl_id, addresses=[moved])
    back = await world.from_released("contact", rl_id)
    assert back.outcome == "applied", back
    after = world.qbo.objects["Customer"][made["Id"]]["BillAddr"]
    assert (after["Line1"], after["City"]) == ("9 New Rd", "Napier")
    for only_qbo in ("Line2", "CountrySubDivisionCode"):
        assert after.get(only_qbo) == address.get(only_qbo)
    again = await world.from_qbo("customer", made["Id"])
    assert again.outcome == "echo", again
