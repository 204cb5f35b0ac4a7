"""Nothing missed around a stop: the stop reconciles first; a campaign gone unreconciled raises ReconciliationGone."""

from __future__ import annotations

import json

from tests.integration.test_campaign_lifecycle import create
from tests.integration.test_donation_ingester import (
    ledger_item,
    real_donation,
    reconcile,
    ref_of,
    result_for,
    settle,
    stop,
    totals,
)


def emitted(capsys, name):
    """The values of an EMF metric the invocations printed."""
    values = []
    for line in capsys.readouterr().out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record and name in record:
            values += record[name] if isinstance(record[name], list) else [record[name]]
    return values


def test_a_stop_after_a_lost_callback_still_counts_the_donation(stack, umbrella, capsys):
    fields, created = create(stack)
    lost = real_donation(umbrella, fields, amount=7000)  # made at Umbrella; its callback never reaches us
    assert ledger_item(stack, lost["messageKey"]) is None
    stop(stack, fields, created)
    settle(stack)
    assert ledger_item(stack, lost["messageKey"]) is not None
    assert totals(stack, fields)["amount"] == 7000
    # Umbrella no longer answers for the campaign; the run that finds it gone knows the stop reconciled it.
    capsys.readouterr()
    result = result_for(reconcile(stack, ref_of(fields)), fields)
    assert result["status"] == "gone"
    assert result["possibly_unseen"] is False
    assert emitted(capsys, "ReconciliationGone") == []


def test_a_campaign_gone_without_a_reconcile_at_its_stop_raises_reconciliation_gone(
    stack, umbrella, capsys, monkeypatch
):
    from donation_ingester import reconcile as ingester  # noqa: PLC0415

    def unavailable(ref):
        raise ConnectionError("Umbrella out during the stop")

    monkeypatch.setattr(ingester, "reconcile_before_stop", unavailable)
    fields, created = create(stack)
    real_donation(umbrella, fields, amount=3000)  # its callback lost, and the stop could not reconcile
    stop(stack, fields, created)  # the owner's stop is made all the same
    monkeypatch.undo()
    capsys.readouterr()
    summary = reconcile(stack, ref_of(fields))
    result = result_for(summary, fields)
    assert result["status"] == "gone"
    assert result["possibly_unseen"] is True
    assert summary["gone"] == 1
    assert emitted(capsys, "ReconciliationGone") == [1.0]
