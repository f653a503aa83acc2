"""PostgreSQL functions for the one-round-trip admission, settlement and release of a call (the
fast path in credits.services). Each locks the account row first, so every later statement (a
fresh snapshot in a VOLATILE function) reads current data, and returns no row (or false) when the
call is not the common case: the ORM services then handle it. Nothing is created elsewhere."""

from django.db import migrations

TOTALS = """
        SELECT
            COALESCE(SUM(g.amount) FILTER (
                WHERE (g.expires_at IS NULL OR g.expires_at > p_now)
                  AND NOT (g.expires_at IS NULL AND g.remaining = 0)), 0)::bigint,
            COALESCE(SUM(g.remaining) FILTER (
                WHERE g.expires_at IS NULL OR g.expires_at > p_now), 0)::bigint,
            COALESCE(SUM(g.remaining) FILTER (WHERE g.expires_at <= p_now), 0)::bigint
        INTO o_granted, o_left, o_expired_left
        FROM credits_grant g WHERE g.account_id = {account};
"""

CREATE = (
    """
CREATE OR REPLACE FUNCTION solaris_hold_open(
    p_account bigint, p_request_id text, p_model text, p_amount bigint,
    p_input_weight numeric, p_output_weight numeric, p_now timestamptz, p_totals boolean
) RETURNS TABLE (
    o_hold_id bigint, o_balance bigint, o_held bigint, o_debt bigint, o_notified text,
    o_granted bigint, o_left bigint, o_expired_left bigint
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    SELECT a.balance, a.held, a.debt, a.notified_state
        INTO o_balance, o_held, o_debt, o_notified
        FROM credits_account a WHERE a.user_id = p_account FOR UPDATE;
    IF NOT FOUND OR o_balance - o_held < p_amount THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM credits_hold h WHERE h.request_id = p_request_id)
        OR EXISTS (SELECT 1 FROM credits_grant g WHERE g.account_id = p_account
                   AND g.expires_at <= p_now AND g.remaining > 0) THEN
        RETURN;
    END IF;
    INSERT INTO credits_hold
        (account_id, request_id, model, amount, input_weight, output_weight, status, created_at)
        VALUES (p_account, p_request_id, p_model, p_amount, p_input_weight, p_output_weight,
                'open', p_now)
        RETURNING id INTO o_hold_id;
    o_held := o_held + p_amount;
    UPDATE credits_account a SET held = o_held WHERE a.user_id = p_account;
    IF p_totals THEN"""
    + TOTALS.format(account="p_account")
    + """
    END IF;
    RETURN NEXT;
END;
$$;

CREATE OR REPLACE FUNCTION solaris_hold_settle(
    p_request_id text, p_prompt bigint, p_completion bigint, p_now timestamptz
) RETURNS TABLE (
    o_hold_id bigint, o_account bigint, o_model text, o_amount bigint,
    o_input_weight numeric, o_output_weight numeric, o_created_at timestamptz,
    o_charge bigint, o_entry_id bigint,
    o_balance bigint, o_held bigint, o_debt bigint, o_notified text,
    o_granted bigint, o_left bigint, o_expired_left bigint
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_status text;
    v_left bigint;
    v_take bigint;
    v_grant record;
BEGIN
    SELECT h.account_id INTO o_account FROM credits_hold h WHERE h.request_id = p_request_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT a.balance, a.held, a.debt, a.notified_state
        INTO o_balance, o_held, o_debt, o_notified
        FROM credits_account a WHERE a.user_id = o_account FOR UPDATE;
    -- Read after the lock: a concurrent settle or release of this hold has committed by now.
    SELECT h.id, h.model, h.amount, h.input_weight, h.output_weight, h.created_at, h.status
        INTO o_hold_id, o_model, o_amount, o_input_weight, o_output_weight, o_created_at, v_status
        FROM credits_hold h WHERE h.request_id = p_request_id;
    IF v_status <> 'open' OR EXISTS (
        SELECT 1 FROM credits_grant g WHERE g.account_id = o_account
        AND g.expires_at <= p_now AND g.remaining > 0
    ) THEN
        RETURN;
    END IF;
    -- Exact decimal arithmetic, rounded up: the same number as credits.pricing.cost.
    o_charge := ceil(p_prompt::numeric * o_input_weight
                     + p_completion::numeric * o_output_weight)::bigint;
    IF o_charge > o_amount THEN
        RETURN;
    END IF;
    IF o_charge > 0 THEN
        IF (SELECT COALESCE(SUM(g.remaining), 0) FROM credits_grant g
            WHERE g.account_id = o_account AND g.remaining > 0) < o_charge THEN
            RETURN;
        END IF;
        v_left := o_charge;
        FOR v_grant IN
            SELECT g.id, g.remaining FROM credits_grant g
            WHERE g.account_id = o_account AND g.remaining > 0
            ORDER BY g.expires_at ASC NULLS LAST, g.id
        LOOP
            v_take := LEAST(v_grant.remaining, v_left);
            UPDATE credits_grant g SET remaining = g.remaining - v_take WHERE g.id = v_grant.id;
            v_left := v_left - v_take;
            EXIT WHEN v_left = 0;
        END LOOP;
        o_balance := o_balance - o_charge;
        INSERT INTO credits_ledgerentry
            (account_id, kind, amount, balance_after, idempotency_key, flagged, reason,
             created_at, hold_id)
            VALUES (o_account, 'usage', -o_charge, o_balance, 'usage:' || p_request_id, false,
                    o_model, p_now, o_hold_id)
            RETURNING id INTO o_entry_id;
    END IF;
    o_held := o_held - o_amount;
    UPDATE credits_account a SET balance = o_balance, held = o_held WHERE a.user_id = o_account;
    UPDATE credits_hold h SET status = 'settled', closed_at = p_now WHERE h.id = o_hold_id;"""
    + TOTALS.format(account="o_account")
    + """
    RETURN NEXT;
END;
$$;

CREATE OR REPLACE FUNCTION solaris_hold_release(p_request_id text, p_now timestamptz)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_account bigint;
    v_hold bigint;
    v_amount bigint;
    v_status text;
BEGIN
    SELECT h.account_id INTO v_account FROM credits_hold h WHERE h.request_id = p_request_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM credits_account a WHERE a.user_id = v_account FOR UPDATE;
    SELECT h.id, h.amount, h.status INTO v_hold, v_amount, v_status
        FROM credits_hold h WHERE h.request_id = p_request_id;
    IF v_status <> 'open' THEN
        RETURN true;  -- released or settled already: nothing to do, as in hold_release
    END IF;
    IF EXISTS (SELECT 1 FROM credits_grant g WHERE g.account_id = v_account
               AND g.expires_at <= p_now AND g.remaining > 0) THEN
        RETURN false;
    END IF;
    UPDATE credits_account a SET held = a.held - v_amount WHERE a.user_id = v_account;
    UPDATE credits_hold h SET status = 'released', closed_at = p_now WHERE h.id = v_hold;
    RETURN true;
END;
$$;
"""
)

DROP = """
DROP FUNCTION IF EXISTS solaris_hold_open(
    bigint, text, text, bigint, numeric, numeric, timestamptz, boolean);
DROP FUNCTION IF EXISTS solaris_hold_settle(text, bigint, bigint, timestamptz);
DROP FUNCTION IF EXISTS solaris_hold_release(text, timestamptz);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("credits", "0002_ledger_append_only")]
    operations = [migrations.RunPython(forwards, backwards)]
