-- The one-round-trip admission, settlement and release of a common call (credits.services.holds_pg).
-- Each locks the account row first, so every later statement (a fresh snapshot in a VOLATILE
-- function) reads current data, and returns no row (or false), writing nothing, when the call is
-- not the common case: the ORM services then handle it. The rules come from rules.v1.pg.sql.

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
    -- Available is balance − held once no expiry is due (balance = grant remainders − debt).
    IF NOT FOUND OR o_balance - o_held < p_amount THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM credits_hold h WHERE h.request_id = p_request_id)
        OR solaris_grant_due(p_account, p_now) THEN
        RETURN;
    END IF;
    INSERT INTO credits_hold
        (account_id, request_id, model, amount, input_weight, output_weight, status, created_at)
        VALUES (p_account, p_request_id, p_model, p_amount, p_input_weight, p_output_weight,
                'open', p_now)
        RETURNING id INTO o_hold_id;
    o_held := o_held + p_amount;
    UPDATE credits_account a SET held = o_held WHERE a.user_id = p_account;
    IF p_totals THEN
        SELECT t.o_granted, t.o_left, t.o_expired_left INTO o_granted, o_left, o_expired_left
            FROM solaris_grant_totals(p_account, p_now) t;
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
    IF v_status <> 'open' OR solaris_grant_due(o_account, p_now) THEN
        RETURN;
    END IF;
    o_charge := solaris_call_cost(p_prompt, p_completion, o_input_weight, o_output_weight);
    IF o_charge > o_amount THEN
        RETURN;
    END IF;
    IF o_charge > 0 THEN
        IF (SELECT COALESCE(SUM(g.remaining), 0) FROM credits_grant g
            WHERE g.account_id = o_account AND g.remaining > 0) < o_charge THEN
            RETURN;
        END IF;
        PERFORM solaris_grants_draw(o_account, o_charge);
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
    UPDATE credits_hold h SET status = 'settled', closed_at = p_now WHERE h.id = o_hold_id;
    SELECT t.o_granted, t.o_left, t.o_expired_left INTO o_granted, o_left, o_expired_left
        FROM solaris_grant_totals(o_account, p_now) t;
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
    IF solaris_grant_due(v_account, p_now) THEN
        RETURN false;
    END IF;
    UPDATE credits_account a SET held = a.held - v_amount WHERE a.user_id = v_account;
    UPDATE credits_hold h SET status = 'released', closed_at = p_now WHERE h.id = v_hold;
    RETURN true;
END;
$$;
